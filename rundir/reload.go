package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/recipe"
)

// LoadRecipe reads the resolved recipe a run or stage directory saved
// (recipe.yaml), for tools that rebuild the run's model from it, such as
// hiddenlab codebook. Its family must be registered. The top directory of a
// staged run holds the staged recipe instead; name one of its stage
// directories (StageDirs lists them).
func LoadRecipe(dir string) (*experiment.Recipe, error) {
	path := filepath.Join(dir, RecipeFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: not a run directory (no %s)", dir, RecipeFile)
	}
	raw, err := recipe.Load(path, "", nil, nil)
	if err != nil {
		return nil, err
	}
	if stages := raw.Stages(); len(stages) > 0 {
		return nil, fmt.Errorf("%s: a staged run (stages %v); name one of its stage directories", dir, stages)
	}
	return experiment.NewRecipe(raw)
}

// StageDirs lists the stage directories of a staged run directory in stage
// order ("<dir>/0-<name>", …), those that exist; nil for an unstaged run.
func StageDirs(dir string) ([]string, error) {
	path := filepath.Join(dir, RecipeFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: not a run directory (no %s)", dir, RecipeFile)
	}
	raw, err := recipe.Load(path, "", nil, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, name := range raw.Stages() {
		sdir := filepath.Join(dir, fmt.Sprintf("%d-%s", i, name))
		if _, err := os.Stat(sdir); errors.Is(err, os.ErrNotExist) {
			continue
		}
		out = append(out, sdir)
	}
	return out, nil
}
