package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
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
	s, err := rundir.ReadSummary(dir)
	switch {
	case err != nil:
		if _, err := os.Stat(filepath.Join(dir, rundir.RecipeFile)); err == nil {
			return Interrupted
		}
		return Pending
	case s.Status == rundir.StatusCompleted:
		return Done
	case s.Status == rundir.StatusFailed:
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
	// Busy: another process (a run, or a worker of another sweep) holds the
	// job's directory; the job was left alone (Err says who holds it).
	Busy bool
	Err  error
	Wall time.Duration
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
				case r.Busy:
					status = "skipped: " + r.Err.Error()
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
	var failed, busy []string
	for _, r := range results {
		switch {
		case r.Busy:
			busy = append(busy, fmt.Sprintf("%s seed %d (%s)", r.Job.Point.Name, r.Job.Seed, r.Job.Dir))
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("%s seed %d (%s)", r.Job.Point.Name, r.Job.Seed, filepath.Join(r.Job.Dir, "run.log")))
		}
	}
	if err := Tabulate(e); err != nil {
		return results, err
	}
	var errs []error
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("sweep: %d run(s) failed: %v", len(failed), failed))
	}
	if len(busy) > 0 {
		errs = append(errs, fmt.Errorf("sweep: %d run(s) skipped, still running in another process (another sweep, or its workers): %v; rerun the sweep once they finish: %w", len(busy), busy, runner.ErrBusy))
	}
	return results, errors.Join(errs...)
}

// workerGrace is how long a worker may take to checkpoint and exit after
// the sweep is cancelled before its process group is killed.
var workerGrace = 10 * time.Minute

// runJob runs, resumes or skips one job in its own process. A job whose
// directory another live process holds (a worker of an earlier sweep that
// outlived it, a run started by hand) is left alone: reported busy, never
// resumed alongside nor removed.
func runJob(ctx context.Context, e *Experiment, j Job, o Options) Result {
	start := time.Now()
	res := Result{Job: j}
	if err := runner.CheckFree(j.Dir); err != nil {
		res.Busy, res.Err = true, err
		return res
	}
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
	// The worker and its own children (data-parallel ranks) form a process
	// group that dies with the sweep: SIGKILL when the sweep process dies
	// (even by kill -9), so no worker trains on as an orphan. The parent-death
	// signal follows the thread that started the worker, so the thread stays
	// with this goroutine until the worker is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// On cancellation the group gets SIGINT (as from Ctrl-C): the worker
	// finishes its step, checkpoints and exits, so the next sweep resumes it;
	// a group still there after workerGrace is killed.
	var mu sync.Mutex
	var kill *time.Timer
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		mu.Lock()
		kill = time.AfterFunc(workerGrace, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		mu.Unlock()
		return syscall.Kill(-pgid, syscall.SIGINT)
	}
	cmd.WaitDelay = workerGrace + time.Minute
	err = cmd.Run()
	mu.Lock()
	if kill != nil {
		kill.Stop()
	}
	mu.Unlock()
	if cmd.Process != nil {
		// The worker is gone; nothing it started may train on without it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() == 130:
			err = runner.ErrInterrupted
		case logSays(logFile.Name(), runner.ErrBusy.Error()):
			// Another process took the directory between the check and the start.
			res.Busy = true
			err = fmt.Errorf("%s: %w (see %s)", j.Dir, runner.ErrBusy, logFile.Name())
		}
		res.Err = err
	}
	res.Wall = time.Since(start)
	return res
}

// logSays reports whether the last lines of a worker's log contain s.
func logSays(path, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	const tail = 4096
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		f.Seek(fi.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, tail))
	return strings.Contains(string(b), s)
}
