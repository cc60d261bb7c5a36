// Package runner is the training engine: it turns a recipe into a run. It
// asks the model family (through the experiment contract) for an
// experiment, trains it with the recipe's optimizer and schedule on the
// device goroutine, checkpoints and evaluates on the recipe's cadence, and
// writes the run directory (package rundir) through its metrics sinks.
//
// One loop serves every data-parallel rank; rank 0 alone writes (as
// nanoGPT's master_process). Runs are reproducible (same recipe, seed and
// thread count: identical metrics), resumable after SIGINT, SIGTERM or a
// kill, and a run owns its directory: an exclusive lock for the whole run.
// Errors are values: tensor failures are turned into errors at the one
// boundary (torch.Try) around the family's code.
package runner

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/dist"
)

// Options say what to run.
type Options struct {
	Recipe     string   // path or name in RecipesDir
	RecipesDir string   // default "recipes"
	ConfigsDir string   // default "configs"
	Overrides  []string // key.path=value
	Env        []string // environment (os.Environ())
	Resume     string   // a run directory to continue
	// Force lets a fresh run clear a directory that already holds a run
	// (without it, such a directory is refused: resume it or pick another).
	Force bool
	Log   func(format string, args ...any)
	// StopAfter stops the run as SIGINT would (checkpoint, status
	// interrupted) once this many steps are done; 0: never. For time-boxed
	// runs and tests.
	StopAfter int
}

// ErrInterrupted reports a run stopped by SIGINT or SIGTERM after saving a
// checkpoint; resume it with Options.Resume.
var ErrInterrupted = errors.New("interrupted (checkpoint saved; resume with RESUME=<run dir>)")

// stop is set by SIGINT/SIGTERM; the training loop checks it between steps.
var stop atomic.Bool

func (o *Options) defaults() {
	if o.RecipesDir == "" {
		o.RecipesDir = "recipes"
	}
	if o.ConfigsDir == "" {
		o.ConfigsDir = "configs"
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
}

// load reads the recipe of o: the saved one of a resumed run, or the named
// recipe with its bases, environment and overrides.
func (o *Options) load() (*recipe.Raw, string, error) {
	if o.Resume != "" {
		path := filepath.Join(o.Resume, rundir.RecipeFile)
		if _, err := os.Stat(path); err != nil {
			return nil, o.Resume, fmt.Errorf("resume %s: not a run directory (no %s)", o.Resume, rundir.RecipeFile)
		}
		raw, err := recipe.Load(path, o.ConfigsDir, o.Env, o.Overrides)
		return raw, o.Resume, err
	}
	path, err := recipe.Find(o.Recipe, o.RecipesDir)
	if err != nil {
		return nil, "", err
	}
	raw, err := recipe.Load(path, o.ConfigsDir, o.Env, o.Overrides)
	return raw, "", err
}

// Run runs a recipe (all its stages) and returns the run directory.
func Run(o Options) (string, error) {
	o.defaults()
	raw, dir, err := o.load()
	if err != nil {
		return dir, err
	}
	defer handleSignals(o.Log)()

	group, err := joinGroup(raw, o)
	if err != nil {
		return dir, err
	}
	defer group.Close()

	stages := raw.Stages()
	var recs []*experiment.Recipe
	if len(stages) == 0 {
		r, err := experiment.NewRecipe(raw)
		if err != nil {
			return dir, err
		}
		recs = append(recs, r)
	}
	for i := range stages {
		sraw, err := raw.WithStage(i)
		if err != nil {
			return dir, err
		}
		r, err := experiment.NewRecipe(sraw)
		if err != nil {
			return dir, fmt.Errorf("stage %q: %w", stages[i], err)
		}
		recs = append(recs, r)
	}
	if dir == "" {
		dir = runDir(recs[0].Name, recs[0].Output.Dir)
	}
	resume := o.Resume != ""
	if group.IsRoot() {
		unlock, err := claim(dir, resume, o.Force)
		if err != nil {
			return "", err // not this run's directory: nothing to report from it
		}
		defer unlock()
	}
	if len(stages) == 0 {
		return dir, runStage(recs[0], dir, resume, o, group)
	}

	// A staged run: one subdirectory per stage, each starting from the
	// previous stage's final weights when its init_from names that stage.
	if !resume && group.IsRoot() {
		b, err := recipe.Marshal(raw.Merged())
		if err != nil {
			return dir, err
		}
		head := fmt.Sprintf("# Staged recipe of this run (from %s, with overrides applied); each stage directory holds its resolved recipe.\n", raw.Path)
		if err := atomicio.WriteFile(filepath.Join(dir, rundir.RecipeFile), append([]byte(head), b...), 0o644); err != nil {
			return dir, err
		}
	}
	for i, r := range recs {
		sdir := filepath.Join(dir, fmt.Sprintf("%d-%s", i, stages[i]))
		if s, err := rundir.ReadSummary(sdir); err == nil && s.Status == rundir.StatusCompleted {
			o.Log("stage %s: already completed, skipping", stages[i])
			continue
		}
		_, statErr := os.Stat(filepath.Join(sdir, rundir.RecipeFile))
		for j := 0; j < i; j++ {
			if r.Train.InitFrom == stages[j] {
				r.Train.InitFrom = filepath.Join(dir, fmt.Sprintf("%d-%s", j, stages[j]))
			}
		}
		o.Log("stage %d/%d: %s", i+1, len(recs), stages[i])
		if err := runStage(r, sdir, statErr == nil, o, group); err != nil {
			return dir, fmt.Errorf("stage %s: %w", stages[i], err)
		}
	}
	if !group.IsRoot() {
		return dir, nil
	}
	return dir, writeStagedReport(dir, raw, stages)
}

// handleSignals makes the first SIGINT/SIGTERM stop the run after the step
// in progress (with a checkpoint) and a second one exit at once. It returns
// the function that stops handling.
func handleSignals(logf func(string, ...any)) func() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	stop.Store(false)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				if stop.Load() {
					// A second signal does not wait for the step (or an
					// evaluation or report in progress): the last checkpoint
					// stays the latest.
					logf("\nsecond signal: exiting now; resume from the last checkpoint")
					os.Exit(130)
				}
				logf("\nsignal received: finishing the step, saving a checkpoint and stopping (again to exit at once)")
				stop.Store(true)
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// RunDir is the directory a run of o would write: output.dir, or
// runs/<name>/<time>. Launchers use it to point every process at one place.
func RunDir(o Options) (string, error) {
	o.defaults()
	o.Resume = ""
	raw, _, err := o.load()
	if err != nil {
		return "", err
	}
	name, _ := raw.Merged()["name"].(string)
	if name == "" {
		name = experiment.NameOf(raw.Path)
	}
	var out experiment.Output
	if err := raw.Decode("output", &out); err != nil {
		return "", err
	}
	return runDir(name, out.Dir), nil
}

func runDir(name, dir string) string {
	if dir != "" {
		return dir
	}
	return filepath.Join("runs", name, time.Now().Format("20060102-150405"))
}

// runStage trains one recipe into dir (resuming from its checkpoint when
// asked) on the device goroutine.
func runStage(r *experiment.Recipe, dir string, resume bool, o Options, group *dist.Group) error {
	if group.IsRoot() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	device, err := parseDevice(r.Train.Device)
	if err != nil {
		return &recipe.SourceError{Source: r.Raw.SourceOf("train.device"), Err: &recipe.KeyError{Key: "train.device", Reason: err.Error()}}
	}
	if err := preflight(r); err != nil {
		return err
	}
	if err := torch.SetNumThreads(r.Train.Threads); err != nil {
		return err
	}
	if err := torch.SetTF32(r.Train.TF32); err != nil {
		return err
	}
	var runErr error
	torch.RunLocked(func() {
		runErr = train(r, dir, resume, device, o, group)
	})
	return runErr
}

func parseDevice(s string) (torch.Device, error) {
	if s == "auto" {
		if torch.CUDADeviceCount() > 0 {
			return torch.CUDA(0), nil
		}
		return torch.CPU, nil
	}
	return torch.ParseDevice(s)
}
