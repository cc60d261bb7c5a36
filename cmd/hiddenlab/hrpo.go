package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/models/hrpo"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/sweep"
)

// hrpoOptions are the flags of hrpo study and hrpo report.
type hrpoOptions struct {
	sft, expDir, recipes, configs string
	workers                       int
}

// hrpoCmd is "hiddenlab hrpo": the HRPO study (experiments/hrpo.yaml) end
// to end. The SFT checkpoint every RL run starts from is the experiment
// recipe's train.init_from (a checkpoint of runs/hrpo-sft); study trains that
// run first with the --sft recipe unless it is complete. The study table and
// tests go to <sweep dir>/study.md.
func hrpoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:                        "hrpo <verb> [experiment.yaml]",
		Short:                      "The HRPO study: study, report",
		Args:                       subcommandArgs("verb"),
		RunE:                       unreachable,
		SuggestionsMinimumDistance: 2,
	}
	verb := func(name, short, long string, study bool) *cobra.Command {
		var o hrpoOptions
		v := &cobra.Command{
			Use:   name + " [experiment.yaml]",
			Short: short,
			Long:  long,
			Args: func(c *cobra.Command, args []string) error {
				if len(args) > 1 {
					return usagef("name at most one experiment file (got %d arguments)", len(args))
				}
				return intAtLeast(c, "workers", 0)
			},
			RunE: func(c *cobra.Command, args []string) error {
				name := "hrpo.yaml"
				if len(args) == 1 {
					name = args[0]
				}
				return hrpoStudy(c.OutOrStdout(), logger(c), name, o, study)
			},
		}
		f := v.Flags()
		f.StringVar(&o.sft, "sft", "hrpo-sft.yaml", "recipe of the SFT warm-up that produces the starting checkpoint")
		f.IntVar(&o.workers, "workers", 0, "parallel runs (0: the experiment's)")
		f.StringVar(&o.expDir, "experiments", "experiments", "directory of experiment files")
		f.StringVar(&o.recipes, "recipes", "recipes", "directory of recipes")
		f.StringVar(&o.configs, "configs", "configs", "directory of base configs")
		return v
	}
	c.AddCommand(
		verb("study", "SFT warm-up (unless done), the sweep, then the paired tests",
			`Study trains the SFT warm-up (--sft) into the RL recipe's train.init_from
unless that run is complete, runs the experiment's sweep (default
experiments/hrpo.yaml), then writes the paired tests over prompts to
<sweep dir>/study.md.`, true),
		verb("report", "The paired tests of the finished runs only",
			`Report writes the paired tests over prompts of the experiment's finished
runs (default experiments/hrpo.yaml) to <sweep dir>/study.md.`, false),
	)
	return c
}

// hrpoStudy runs the study (SFT warm-up, sweep) when study is set, then
// writes the study report.
func hrpoStudy(w io.Writer, logf func(string, ...any), name string, o hrpoOptions, study bool) error {
	e, err := loadExperiment(name, o.expDir, o.workers)
	if err != nil {
		return err
	}
	if study {
		init, err := initFrom(e, o.recipes, o.configs)
		if err != nil {
			return err
		}
		if err := ensureSFT(logf, o.sft, sftRunDir(init), o.recipes, o.configs); err != nil {
			return err
		}
		if _, err := os.Stat(init); err != nil {
			return fmt.Errorf("hrpo study: the SFT run does not provide the RL recipe's train.init_from: %w", err)
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer cancel()
		logf("hrpo study: sweep %s, %d configuration(s) × %d seed(s), into %s", e.Name, len(e.Points()), len(e.Seeds), e.Dir)
		if _, err := sweep.Run(ctx, e, sweep.Options{Binary: self, Log: logf}); err != nil {
			return err
		}
	}
	body, err := hrpo.Study(e.StudyRuns())
	if err != nil {
		return err
	}
	var figs []string
	for _, c := range e.Curves {
		rel := "curve_" + strings.NewReplacer(".", "_", "/", "_").Replace(c) + ".png"
		if _, err := os.Stat(filepath.Join(e.Dir, rel)); err == nil {
			figs = append(figs, fmt.Sprintf("![%s](%s)", c, rel))
		}
	}
	doc := fmt.Sprintf("# HRPO study %s\n\nRuns of `%s` (seeds %v) from one SFT checkpoint; the sweep's own table is `results.md`.\n\n%s\n## Curves (mean ± std over seeds)\n\n%s\n",
		e.Name, e.Recipe, e.Seeds, body, strings.Join(figs, "\n"))
	return writeStudy(w, e, doc)
}

// initFrom reads train.init_from of the experiment's recipe (with its
// overrides): the SFT checkpoint the RL runs start from.
func initFrom(e *sweep.Experiment, recipes, configs string) (string, error) {
	path, err := recipe.Find(e.Recipe, recipes)
	if err != nil {
		return "", err
	}
	raw, err := recipe.Load(path, configs, nil, e.Overrides)
	if err != nil {
		return "", err
	}
	dir, _ := raw.Section("train")["init_from"].(string)
	if dir == "" {
		return "", fmt.Errorf("%s: train.init_from: the study's RL recipe must start from an SFT run directory", path)
	}
	return dir, nil
}

// sftRunDir is the run directory of init_from: init_from itself, or the
// run holding it when it names one checkpoint (<run>/checkpoints/step-N).
func sftRunDir(init string) string {
	if filepath.Base(filepath.Dir(init)) == rundir.CheckpointDir {
		return filepath.Dir(filepath.Dir(init))
	}
	return init
}

// ensureSFT trains (or resumes) the SFT recipe into dir unless dir holds a
// completed run.
func ensureSFT(logf func(string, ...any), sft, dir, recipes, configs string) error {
	if s, err := rundir.ReadSummary(dir); err == nil && s.Status == rundir.StatusCompleted {
		logf("hrpo study: SFT checkpoint %s is complete", dir)
		return nil
	}
	o := runner.Options{Recipe: sft, RecipesDir: recipes, ConfigsDir: configs, Env: environ(), Log: logf,
		Overrides: []string{"output.dir=" + dir, "output.progress=false"}}
	if _, err := os.Stat(filepath.Join(dir, rundir.RecipeFile)); err == nil {
		o = runner.Options{Resume: dir, ConfigsDir: configs, Env: environ(), Log: logf}
		logf("hrpo study: resuming the SFT warm-up in %s", dir)
	} else {
		logf("hrpo study: training the SFT warm-up %s into %s", sft, dir)
	}
	_, err := runner.Run(o)
	return err
}
