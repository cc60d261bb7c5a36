package sweep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"hiddenlab/runner"
)

// State is what a job's directory says about it.
type State int

// Job states.
const (
	Pending     State = iota // nothing ran yet
	Interrupted              // started, not completed: resume it
	Done                     // completed
	Failed                   // failed: rerun from scratch
)

// StateOf reads a job directory's summary.
func StateOf(dir string) State {
	s, err := runner.ReadSummary(dir)
	switch {
	case err != nil:
		if _, err := os.Stat(filepath.Join(dir, runner.RecipeFile)); err == nil {
			return Interrupted
		}
		return Pending
	case s.Status == runner.StatusCompleted:
		return Done
	case s.Status == runner.StatusFailed:
		return Failed
	}
	return Interrupted
}

// Options control a sweep execution.
type Options struct {
	Binary string // the hiddenlab binary that runs each job
	Log    func(format string, args ...any)
	// Cores caps workers × threads (default: the machine's cores).
	Cores int
}

// Result is how one job ended.
type Result struct {
	Job     Job
	Skipped bool
	Err     error
	Wall    time.Duration
}

// Run executes the sweep's pending and interrupted jobs with e.Workers
// parallel processes, then writes the tables and plots. Cancelling ctx
// (SIGINT) stops starting jobs; running ones are interrupted by the signal
// themselves and resume on the next Run.
func Run(ctx context.Context, e *Experiment, o Options) ([]Result, error) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	cores := o.Cores
	if cores == 0 {
		cores = runtime.NumCPU()
	}
	workers := e.Workers
	if workers*e.Threads > cores {
		workers = max(1, cores/e.Threads)
		o.Log("sweep: %d workers × %d threads exceeds %d cores (OpenMP slows down when oversubscribed); using %d workers",
			e.Workers, e.Threads, cores, workers)
	}
	jobs := e.Jobs()
	results := make([]Result, len(jobs))
	queue := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				r := runJob(ctx, e, jobs[i], o)
				mu.Lock()
				results[i] = r
				done++
				status := "done"
				switch {
				case r.Skipped:
					status = "already done"
				case r.Err != nil:
					status = "error: " + r.Err.Error()
				}
				o.Log("sweep: [%d/%d] %s seed %d: %s (%.0f s)", done, len(jobs), jobs[i].Point.Name, jobs[i].Seed, status, r.Wall.Seconds())
				mu.Unlock()
			}
		}()
	}
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		queue <- i
	}
	close(queue)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("sweep interrupted: rerun it to resume (%w)", err)
	}
	var failed []string
	for _, r := range results {
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s seed %d (%s)", r.Job.Point.Name, r.Job.Seed, filepath.Join(r.Job.Dir, "run.log")))
		}
	}
	if err := Tabulate(e); err != nil {
		return results, err
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("sweep: %d run(s) failed: %v", len(failed), failed)
	}
	return results, nil
}

// runJob runs, resumes or skips one job in its own process.
func runJob(ctx context.Context, e *Experiment, j Job, o Options) Result {
	start := time.Now()
	res := Result{Job: j}
	args := []string{"run"}
	switch StateOf(j.Dir) {
	case Done:
		res.Skipped = true
		return res
	case Interrupted:
		args = append(args, "-resume", j.Dir, "output.progress=false")
	case Failed:
		if err := os.RemoveAll(j.Dir); err != nil {
			res.Err = err
			return res
		}
		args = append(args, e.Args(j)...)
	default:
		args = append(args, e.Args(j)...)
	}
	if err := os.MkdirAll(j.Dir, 0o755); err != nil {
		res.Err = err
		return res
	}
	logFile, err := os.OpenFile(filepath.Join(j.Dir, "run.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		res.Err = err
		return res
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "$ %s %v\n", o.Binary, args)
	cmd := exec.CommandContext(ctx, o.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// On cancellation the child gets SIGINT (as from Ctrl-C): it finishes its
	// step, checkpoints and exits, so the next sweep resumes it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Minute
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 130 {
			err = runner.ErrInterrupted
		}
		res.Err = err
	}
	res.Wall = time.Since(start)
	return res
}
