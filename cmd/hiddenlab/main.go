// Command hiddenlab trains and evaluates recipes, runs sweeps, and analyses
// run directories.
//
//	hiddenlab run <recipe> [key.path=value ...]   train and evaluate one recipe
//	hiddenlab run -resume <run dir>               continue an interrupted run
//	hiddenlab sweep <experiment.yaml>             run a grid of recipes and tabulate it
//
// The Makefile wraps these: make run RECIPE=x.yaml ARGS="k=v", make sweep EXP=….
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	_ "hiddenlab/models/codebook" // model families register themselves
	_ "hiddenlab/models/gpt"
	"hiddenlab/recipe"
	"hiddenlab/runner"
	"hiddenlab/sweep"
	"hiddenlab/torch/dist"
)

// commands maps subcommand names to their implementations.
var commands = map[string]func(args []string) error{
	"run":   cmdRun,
	"sweep": cmdSweep,
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "hiddenlab: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "hiddenlab:", err)
		if errors.Is(err, runner.ErrInterrupted) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: hiddenlab <command> [arguments]\ncommands: %s\n", strings.Join(names, ", "))
}

// parseInterleaved parses flags that may appear anywhere among the
// positional arguments (recipe names and key=value overrides).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); f != nil && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	resume := fs.String("resume", "", "continue the run in this directory")
	recipes := fs.String("recipes", "recipes", "directory of recipes")
	configs := fs.String("configs", "configs", "directory of base configs")
	noProgress := fs.Bool("no-progress", false, "no progress bar")
	nproc := fs.Int("nproc", 1, "data-parallel processes on this machine (torchrun-style; each uses train.threads)")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	o := runner.Options{RecipesDir: *recipes, ConfigsDir: *configs, Env: os.Environ(), Resume: *resume, Log: logf}
	if *resume == "" {
		if len(rest) == 0 {
			return errors.New("run: name a recipe (or -resume <run dir>)")
		}
		o.Recipe, rest = rest[0], rest[1:]
	}
	o.Overrides = rest
	if *noProgress {
		o.Overrides = append(o.Overrides, "output.progress=false")
	}
	if *nproc > 1 {
		return launchLocal(o, args, *nproc)
	}
	dir, err := runner.Run(o)
	if dir != "" {
		printOutcome(dir)
	}
	return err
}

// launchLocal runs the same command as nproc data-parallel processes on this
// machine over loopback (c10d Gloo), all writing through rank 0 into one run
// directory.
func launchLocal(o runner.Options, args []string, nproc int) error {
	if _, set := os.LookupEnv("WORLD_SIZE"); set {
		return errors.New("run: -nproc inside a launched process (WORLD_SIZE is already set)")
	}
	dir := o.Resume
	if dir == "" {
		d, err := runner.RunDir(o)
		if err != nil {
			return err
		}
		dir = d
	}
	var childArgs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-nproc" || a == "--nproc":
			i++
		case strings.HasPrefix(a, "-nproc=") || strings.HasPrefix(a, "--nproc="):
		default:
			childArgs = append(childArgs, a)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	logf("launching %d data-parallel processes into %s", nproc, dir)
	env := []string{"HIDDENLAB_OUTPUT__DIR=" + dir}
	err = dist.Launch(ctx, self, append([]string{"run"}, childArgs...), nproc, env, os.Stdout, os.Stderr)
	return err
}

// printOutcome prints where the run is, its final numbers and the model
// family's section of the report (e.g. the codebook state-code table).
func printOutcome(dir string) {
	defer func() {
		if sec := runner.FamilySection(dir); sec != "" {
			fmt.Printf("\n%s\n\n", sec)
		}
	}()
	s, err := runner.ReadSummary(dir)
	if err != nil {
		if _, err := os.Stat(filepath.Join(dir, runner.ReportFile)); err == nil {
			fmt.Printf("run directory: %s (report: %s)\n", dir, filepath.Join(dir, runner.ReportFile))
		}
		return
	}
	fmt.Printf("%s: %s after %d/%d steps in %.1f s\n", s.Name, s.Status, s.Steps, s.StepsPlan, s.WallS)
	keys := make([]string, 0, len(s.Eval))
	for k := range s.Eval {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  eval %-20s %.4f\n", k, s.Eval[k])
	}
	fmt.Printf("run directory: %s\nreport: %s\n", dir, filepath.Join(dir, runner.ReportFile))
}

// loadExperiment finds the experiment file name (a path, or a file in dir)
// and loads it; workers > 0 overrides the file's worker count.
func loadExperiment(name, dir string, workers int) (*sweep.Experiment, error) {
	path, err := recipe.Find(name, dir)
	if err != nil {
		return nil, err
	}
	e, err := sweep.Load(path)
	if err != nil {
		return nil, err
	}
	if workers > 0 {
		e.Workers = workers
	}
	return e, nil
}

func cmdSweep(args []string) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	workers := fs.Int("workers", 0, "parallel runs (default: the experiment's, capped by cores/threads)")
	tabulate := fs.Bool("tabulate", false, "only rebuild the tables and plots from finished runs")
	dir := fs.String("experiments", "experiments", "directory of experiment files")
	emit := fs.String("emit", "", "write a cluster job instead of running: slurm (job array) or k8s (indexed Job)")
	image := fs.String("image", "hiddenlab:latest", "container image for -emit k8s (the repository at /work, bin/hiddenlab built)")
	claim := fs.String("claim", "hiddenlab-sweeps", "persistent volume claim holding the sweep directory, for -emit k8s")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("sweep: name one experiment file")
	}
	e, err := loadExperiment(rest[0], *dir, *workers)
	if err != nil {
		return err
	}
	if *emit != "" {
		if err := os.MkdirAll(e.Dir, 0o755); err != nil {
			return err
		}
		path, err := sweep.Emit(e, *emit, "./bin/hiddenlab", *image, *claim)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d runs (%d configurations × %d seeds)\n", path, len(e.Jobs()), len(e.Points()), len(e.Seeds))
		return nil
	}
	if *tabulate {
		err = sweep.Tabulate(e)
	} else {
		self, serr := os.Executable()
		if serr != nil {
			return serr
		}
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer cancel()
		logf("sweep %s: %d configuration(s) × %d seed(s), %d worker(s) × %d thread(s), into %s",
			e.Name, len(e.Points()), len(e.Seeds), e.Workers, e.Threads, e.Dir)
		_, err = sweep.Run(ctx, e, sweep.Options{Binary: self, Log: logf})
	}
	if b, rerr := os.ReadFile(filepath.Join(e.Dir, "results.md")); rerr == nil {
		fmt.Printf("%s\n(table: %s, %s)\n", b, filepath.Join(e.Dir, "results.md"), filepath.Join(e.Dir, "results.csv"))
	}
	return err
}
