package runner_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
)

// TestLoadRecipe: a run directory's resolved recipe decodes back into the
// recipe that ran, stage directories included; other directories are
// refused with a message naming them.
func TestLoadRecipe(t *testing.T) {
	body := tinyRecipe + `
stages:
  - name: pre
    train: {steps: 2}
  - name: fine
    train: {steps: 2, init_from: pre, batch: 4}
`
	p := writeFile(t, t.TempDir(), "staged.yaml", body)
	dir := filepath.Join(t.TempDir(), "run")
	_, err := runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir}})
	require.NoError(t, err)

	stages, err := rundir.StageDirs(dir)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, "0-pre"), filepath.Join(dir, "1-fine")}, stages)

	for _, c := range []struct {
		dir   string
		batch int
		err   string
	}{
		{stages[0], 8, ""},
		{stages[1], 4, ""},
		{dir, 0, "a staged run (stages [pre fine]); name one of its stage directories"},
		{t.TempDir(), 0, "not a run directory (no recipe.yaml)"},
	} {
		r, err := rundir.LoadRecipe(c.dir)
		if c.err != "" {
			require.ErrorContains(t, err, c.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, "gpt", r.Family)
		require.Equal(t, c.batch, r.Train.Batch)
		require.Equal(t, 2, r.Train.Steps)
	}

	unstaged, err := rundir.StageDirs(stages[0])
	require.NoError(t, err)
	require.Nil(t, unstaged)

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, rundir.RecipeFile), []byte("model: {family: gpt}\ntrain: {stpes: 1}\n"), 0o644))
	_, err = rundir.LoadRecipe(bad)
	require.ErrorContains(t, err, "train.stpes: unknown key")
}
