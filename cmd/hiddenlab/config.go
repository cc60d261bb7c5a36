package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/recipe"
)

// sectionOrder is the order of a recipe's top-level keys in printouts.
var sectionOrder = []string{"name", "model", "data", "train", "eval", "output", "stages"}

// configCmd is "hiddenlab config": print the resolved recipe with each
// value's source, and exit (Hydra's --cfg job).
func configCmd() *cobra.Command {
	var recipes, configs, stage string
	c := &cobra.Command{
		Use:   "config <recipe> [key.path=value ...]",
		Short: "Print the resolved recipe with the source of every value",
		Long: `Config composes a recipe as run would (base files, the recipe, its stage,
HIDDENLAB_<SECTION>__<KEY> environment variables, key.path=value arguments),
checks it, and prints it as YAML with each value's source as a comment: a
file, a stage ("<file> stage \"<name>\""), an environment variable, "command
line", or "default" for the train and output defaults filled in when none of
them sets a key. The model family fills in the defaults of its own sections
(model, data, eval) when it builds the run; a run directory's recipe.yaml
holds them. A staged recipe prints one document per stage (--stage: one).
Nothing is built or trained.`,
		Example: `  hiddenlab config codebook.yaml train.steps=5
  HIDDENLAB_TRAIN__BATCH=8 hiddenlab config gpt-tinystories.yaml
  hiddenlab config codebook-tinystories.yaml --stage 1`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("name a recipe")
			}
			return overrideArgs(args[1:])
		},
		RunE: func(c *cobra.Command, args []string) error {
			path, err := recipe.Find(args[0], recipes)
			if err != nil {
				return err
			}
			raw, err := recipe.Load(path, configs, environ(), args[1:])
			if err != nil {
				return err
			}
			var b bytes.Buffer // printed only when the whole recipe checks out
			if err := printConfig(&b, raw, stage); err != nil {
				return err
			}
			_, err = b.WriteTo(c.OutOrStdout())
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&recipes, "recipes", "recipes", "directory of recipes")
	f.StringVar(&configs, "configs", "configs", "directory of base configs")
	f.StringVar(&stage, "stage", "", "of a staged recipe, print only this stage (its name or index)")
	return c
}

// printConfig writes the resolved recipe (each stage's, for a staged recipe)
// with the sources of its values.
func printConfig(w io.Writer, raw *recipe.Raw, stage string) error {
	stages := raw.Stages()
	pick := -1
	if stage != "" {
		for i, name := range stages {
			if name == stage || strconv.Itoa(i) == stage {
				pick = i
			}
		}
		if len(stages) == 0 {
			return usagef("--stage %s: %s has no stages", stage, raw.Path)
		}
		if pick < 0 {
			return usagef("--stage %s: %s has stages %s (by name or index 0-%d)", stage, raw.Path, strings.Join(stages, ", "), len(stages)-1)
		}
	}
	fmt.Fprintf(w, "# %s resolved; layers, lowest precedence first:\n#   %s\n", raw.Path, strings.Join(raw.Layers(), "\n#   "))
	fmt.Fprintf(w, "# (default: train and output defaults; the model family fills in its own sections' defaults when it builds the run)\n")
	if len(stages) == 0 {
		return printResolved(w, raw)
	}
	for i, name := range stages {
		if pick >= 0 && i != pick {
			continue
		}
		sraw, err := raw.WithStage(i)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "---\n# stage %d of %d: %s\n", i, len(stages), name)
		if err := printResolved(w, sraw); err != nil {
			return fmt.Errorf("stage %q: %w", name, err)
		}
	}
	return nil
}

// printResolved checks raw as a run would (top level, family, train and
// output sections) and prints the merge with train and output's defaults.
func printResolved(w io.Writer, raw *recipe.Raw) error {
	r, err := experiment.NewRecipe(raw)
	if err != nil {
		return err
	}
	m := map[string]any{}
	for k, v := range raw.Merged() {
		if k != "stages" {
			m[k] = v
		}
	}
	for k, v := range r.Resolved() {
		m[k] = v
	}
	return recipe.WriteAnnotated(w, m, sectionOrder, raw.SourceOf)
}
