package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch/dist"
)

// runCmd is "hiddenlab run": train and evaluate one recipe.
func runCmd() *cobra.Command {
	var (
		resume, recipes, configs string
		noProgress, force        bool
		nproc                    int
	)
	c := &cobra.Command{
		Use:   "run <recipe> [key.path=value ...]",
		Short: "Train and evaluate one recipe into a run directory",
		Long: `Run trains and evaluates a recipe (a path, or a name in --recipes, ".yaml"
optional) into a run directory (output.dir, or runs/<name>/<time>), then
prints its final numbers and report. Arguments after the recipe override its
keys: key.path=value, values in YAML (8, 1e-3, true, [1, 2], text).

--resume continues an interrupted run from its last checkpoint, with the
recipe it saved (overrides still apply). A run owns its directory: a second
run into a directory in use fails at once, and a fresh run refuses a
directory that already holds a run unless --force (which clears it first).
--nproc N trains data-parallel in N
local processes (c10d over loopback), each with train.threads threads.`,
		Example: `  hiddenlab run codebook.yaml train.steps=200
  hiddenlab run -nproc 2 gpt-tinystories.yaml
  hiddenlab run -resume runs/codebook/20250101-120000`,
		Args: func(c *cobra.Command, args []string) error {
			if resume == "" && len(args) == 0 {
				return usagef("name a recipe (or --resume <run dir>)")
			}
			overrides := args
			if resume == "" {
				overrides = args[1:]
			}
			return checks(overrideArgs(overrides), intAtLeast(c, "nproc", 1))
		},
		RunE: func(c *cobra.Command, args []string) error {
			logf := logger(c)
			o := runner.Options{RecipesDir: recipes, ConfigsDir: configs, Env: environ(), Resume: resume, Force: force, Log: logf}
			if resume == "" {
				o.Recipe, args = args[0], args[1:]
			}
			o.Overrides = args
			if noProgress {
				o.Overrides = append(o.Overrides, "output.progress=false")
			}
			if nproc > 1 {
				return launchLocal(c, o, nproc)
			}
			dir, err := runner.Run(o)
			if dir != "" {
				printOutcome(c.OutOrStdout(), dir)
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&resume, "resume", "", "continue the interrupted run in this directory")
	f.StringVar(&recipes, "recipes", "recipes", "directory of recipes")
	f.StringVar(&configs, "configs", "configs", "directory of base configs")
	f.BoolVar(&noProgress, "no-progress", false, "no progress bar")
	f.BoolVar(&force, "force", false, "clear an existing run in the output directory and start over")
	f.IntVar(&nproc, "nproc", 1, "data-parallel processes on this machine (torchrun-style; each uses train.threads)")
	return c
}

// launchLocal runs the same command as nproc data-parallel processes on this
// machine over loopback (c10d Gloo), all writing through rank 0 into one run
// directory.
func launchLocal(c *cobra.Command, o runner.Options, nproc int) error {
	if _, set := os.LookupEnv("WORLD_SIZE"); set {
		return errors.New("run: --nproc inside a launched process (WORLD_SIZE is already set)")
	}
	dir := o.Resume
	if dir == "" {
		d, err := runner.RunDir(o)
		if err != nil {
			return err
		}
		dir = d
	}
	// Each process runs the same command line without --nproc.
	var childArgs []string
	c.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "nproc" {
			childArgs = append(childArgs, "--"+f.Name+"="+f.Value.String())
		}
	})
	childArgs = append(childArgs, c.Flags().Args()...)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	o.Log("launching %d data-parallel processes into %s", nproc, dir)
	env := []string{"HIDDENLAB_OUTPUT__DIR=" + dir}
	return dist.Launch(ctx, self, append([]string{"run"}, childArgs...), nproc, env, c.OutOrStdout(), c.ErrOrStderr())
}

// printOutcome prints where the run is, its final numbers and the model
// family's section of the report (e.g. the codebook state-code table).
func printOutcome(w io.Writer, dir string) {
	defer func() {
		if sec := rundir.FamilySection(dir); sec != "" {
			fmt.Fprintf(w, "\n%s\n\n", sec)
		}
	}()
	s, err := rundir.ReadSummary(dir)
	if err != nil {
		if _, err := os.Stat(filepath.Join(dir, rundir.ReportFile)); err == nil {
			fmt.Fprintf(w, "run directory: %s (report: %s)\n", dir, filepath.Join(dir, rundir.ReportFile))
		}
		return
	}
	fmt.Fprintf(w, "%s: %s after %d/%d steps in %.1f s\n", s.Name, s.Status, s.Steps, s.StepsPlan, s.WallS)
	keys := make([]string, 0, len(s.Eval))
	for k := range s.Eval {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  eval %-20s %.4f\n", k, s.Eval[k])
	}
	fmt.Fprintf(w, "run directory: %s\nreport: %s\n", dir, filepath.Join(dir, rundir.ReportFile))
}
