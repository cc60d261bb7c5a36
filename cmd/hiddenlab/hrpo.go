package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"hiddenlab/internal/atomicio"
	"hiddenlab/models/hrpo" // the hrpo family registers itself
	"hiddenlab/recipe"
	"hiddenlab/runner"
	"hiddenlab/sweep"
)

func init() { commands["hrpo"] = cmdHRPO }

// cmdHRPO runs the HRPO study (experiments/hrpo.yaml) end to end:
//
//	hiddenlab hrpo study [experiment.yaml]    SFT warm-up (unless done), the sweep, the paired tests
//	hiddenlab hrpo report [experiment.yaml]   the paired tests of the finished runs only
//
// The SFT checkpoint every RL run starts from is the experiment recipe's
// train.init_from (a checkpoint of runs/hrpo-sft); study trains that run
// first with the -sft recipe unless it is complete. The study table and
// tests go to <sweep dir>/study.md.
func cmdHRPO(args []string) error {
	if len(args) == 0 || (args[0] != "study" && args[0] != "report") {
		return errors.New("hrpo: want `hrpo study [experiment.yaml]` or `hrpo report [experiment.yaml]`")
	}
	action := args[0]
	fs := flag.NewFlagSet("hrpo "+action, flag.ContinueOnError)
	sft := fs.String("sft", "hrpo-sft.yaml", "recipe of the SFT warm-up that produces the starting checkpoint")
	workers := fs.Int("workers", 0, "parallel runs (default: the experiment's)")
	expDir := fs.String("experiments", "experiments", "directory of experiment files")
	recipes := fs.String("recipes", "recipes", "directory of recipes")
	configs := fs.String("configs", "configs", "directory of base configs")
	rest, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	name := "hrpo.yaml"
	if len(rest) == 1 {
		name = rest[0]
	} else if len(rest) > 1 {
		return errors.New("hrpo: name at most one experiment file")
	}
	e, err := loadExperiment(name, *expDir, *workers)
	if err != nil {
		return err
	}
	if action == "study" {
		init, err := initFrom(e, *recipes, *configs)
		if err != nil {
			return err
		}
		if err := ensureSFT(*sft, sftRunDir(init), *recipes, *configs); err != nil {
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
	var runs []hrpo.StudyRun
	for _, j := range e.Jobs() {
		runs = append(runs, hrpo.StudyRun{Config: j.Point.Name, Seed: j.Seed, Dir: j.Dir})
	}
	body, err := hrpo.Study(runs)
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
	out := filepath.Join(e.Dir, "study.md")
	if err := atomicio.WriteFile(out, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s\n(study: %s)\n", doc, out)
	return nil
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
	if filepath.Base(filepath.Dir(init)) == runner.CheckpointDir {
		return filepath.Dir(filepath.Dir(init))
	}
	return init
}

// ensureSFT trains (or resumes) the SFT recipe into dir unless dir holds a
// completed run.
func ensureSFT(sft, dir, recipes, configs string) error {
	if s, err := runner.ReadSummary(dir); err == nil && s.Status == runner.StatusCompleted {
		logf("hrpo study: SFT checkpoint %s is complete", dir)
		return nil
	}
	o := runner.Options{Recipe: sft, RecipesDir: recipes, ConfigsDir: configs, Env: os.Environ(), Log: logf,
		Overrides: []string{"output.dir=" + dir, "output.progress=false"}}
	if _, err := os.Stat(filepath.Join(dir, runner.RecipeFile)); err == nil {
		o = runner.Options{Resume: dir, ConfigsDir: configs, Env: os.Environ(), Log: logf}
		logf("hrpo study: resuming the SFT warm-up in %s", dir)
	} else {
		logf("hrpo study: training the SFT warm-up %s into %s", sft, dir)
	}
	_, err := runner.Run(o)
	return err
}
