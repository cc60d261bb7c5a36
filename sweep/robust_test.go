package sweep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
)

// loadExperiment writes an experiment of one point and the given seeds
// whose runs go under dir.
func loadExperiment(t *testing.T, dir string, seeds string, curves bool) *Experiment {
	t.Helper()
	body := fmt.Sprintf("name: robust\nrecipe: tiny.yaml\nseeds: %s\nworkers: 2\nthreads: 1\nmetrics: [eval.loss]\ndir: %s\n", seeds, dir)
	if curves {
		body += "curves: [eval.loss]\n"
	}
	p := filepath.Join(t.TempDir(), "robust.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	e, err := Load(p)
	require.NoError(t, err)
	return e
}

func writeRun(t *testing.T, dir, summary, metrics string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.SummaryFile), []byte(summary), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.MetricsFile), []byte(metrics), 0o644))
}

// TestTabulateReportsDamagedRuns: a malformed metrics.jsonl line or
// summary.json does not crash sweep -tabulate; the run is left out and the
// table says which file and line is damaged.
func TestTabulateReportsDamagedRuns(t *testing.T) {
	e := loadExperiment(t, t.TempDir(), "[1, 2, 3, 4]", true)
	jobs := e.Jobs()
	good := `{"name":"tiny","status":"completed","steps":4,"eval":{"loss":1.5}}`
	metrics := `{"step":2,"split":"eval","loss":1.7}` + "\n" + `{"step":4,"split":"eval","loss":1.5}` + "\n"
	writeRun(t, jobs[0].Dir, good, metrics)
	writeRun(t, jobs[1].Dir, good, `{"step":2,"split":"eval","loss":1.7}`+"\n"+`{"step":"x","split":"eval"}`+"\n"+`null`+"\n")
	writeRun(t, jobs[2].Dir, `{"status": "completed", "steps": "four"}`, metrics)
	writeRun(t, jobs[3].Dir, good, metrics+`{"step":6,"split":"ev`) // torn: fine
	require.NoError(t, Tabulate(e))
	md, err := os.ReadFile(filepath.Join(e.Dir, "results.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "Not tabulated (damaged run files):")
	require.Contains(t, string(md), filepath.Join(jobs[1].Dir, rundir.MetricsFile)+`:2: step: want a non-negative integer, got "x"`)
	require.Contains(t, string(md), filepath.Join(jobs[2].Dir, rundir.SummaryFile))
	require.NotContains(t, string(md), jobs[3].Dir)
	require.Len(t, Unreadable(e), 2)
	rows := Rows(e)
	require.Equal(t, []int{1, 2, 4}, rows[0].Seeds, "a run with a damaged summary is left out")
}

// holdLock takes dir's run lock as a live run would, recording pid.
func holdLock(t *testing.T, dir string, pid int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.OpenFile(filepath.Join(dir, runner.LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	f.WriteString(strconv.Itoa(pid) + "\n")
	t.Cleanup(func() { f.Close() })
}

// TestBusyJobsAreSkipped: a job whose directory a live process holds (a
// worker of an earlier sweep, say) is reported and left alone, not resumed
// alongside, removed or counted as failed.
func TestBusyJobsAreSkipped(t *testing.T) {
	e := loadExperiment(t, t.TempDir(), "[1, 2]", false)
	jobs := e.Jobs()
	// Seed 1: a run in progress elsewhere. Seed 2: a failed run held by a
	// process (the sweep would otherwise remove it and start over).
	writeRun(t, jobs[0].Dir, `{"status":"running"}`, "")
	writeRun(t, jobs[1].Dir, `{"status":"failed"}`, "")
	holdLock(t, jobs[0].Dir, 5151)
	holdLock(t, jobs[1].Dir, 5252)
	var logs []string
	results, err := Run(context.Background(), e, Options{Binary: "/nonexistent/hiddenlab", Cores: 2,
		Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	require.ErrorIs(t, err, runner.ErrBusy)
	require.ErrorContains(t, err, "2 run(s) skipped, still running in another process")
	require.NotContains(t, err.Error(), "failed")
	for i, r := range results {
		require.True(t, r.Busy, "job %d", i)
		require.ErrorContains(t, r.Err, fmt.Sprintf("pid %d", 5151+101*i))
		require.NoFileExists(t, filepath.Join(r.Job.Dir, "run.log"), "nothing was started there")
		require.FileExists(t, filepath.Join(r.Job.Dir, rundir.SummaryFile), "nor removed")
	}
	require.Contains(t, strings.Join(logs, "\n"), "skipped: "+jobs[0].Dir+": run directory in use by pid 5151")
}

// workerScript is a stand-in for the hiddenlab binary: it records its pid
// and that of a child of its own, and waits.
const workerScript = `#!/bin/sh
dir=$(dirname "$0")
sleep 1000 &
echo $! > "$dir/grandchild.pid"
echo $$ > "$dir/worker.pid"
wait
`

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has died; it waits only for its (new) parent to reap it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func readPid(t *testing.T, path string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(path)
		if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s within %v", path, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func requireDies(t *testing.T, pid int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s (pid %d) still alive after %v", what, pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSweepParentChild is the body of a spawned sweep process (skipped
// otherwise): it runs one job with the worker script as the binary.
func TestSweepParentChild(t *testing.T) {
	if os.Getenv("HL_SWEEP_DIR") == "" {
		t.Skip("runs only as a spawned sweep")
	}
	e := loadExperiment(t, os.Getenv("HL_SWEEP_DIR"), "[1]", false)
	_, err := Run(context.Background(), e, Options{Binary: os.Getenv("HL_SWEEP_BIN"), Cores: 1})
	fmt.Println("SWEEP-ERROR:", err)
}

// TestWorkersDieWithTheSweep: a sweep killed with SIGKILL takes its worker
// with it (no orphan trains on); a cancelled sweep leaves no process of its
// worker's group behind.
func TestWorkersDieWithTheSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	binDir := t.TempDir()
	bin := filepath.Join(binDir, "hiddenlab")
	require.NoError(t, os.WriteFile(bin, []byte(workerScript), 0o755))

	t.Run("kill -9 of the sweep", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSweepParentChild$")
		cmd.Env = append(os.Environ(), "HL_SWEEP_DIR="+t.TempDir(), "HL_SWEEP_BIN="+bin)
		require.NoError(t, cmd.Start())
		worker := readPid(t, filepath.Join(binDir, "worker.pid"), 30*time.Second)
		grandchild := readPid(t, filepath.Join(binDir, "grandchild.pid"), time.Second)
		defer syscall.Kill(grandchild, syscall.SIGKILL) // started by the script, not by the sweep
		require.True(t, alive(worker))
		require.NoError(t, cmd.Process.Kill())
		cmd.Wait()
		requireDies(t, worker, 5*time.Second, "the worker of a killed sweep")
		os.Remove(filepath.Join(binDir, "worker.pid"))
		os.Remove(filepath.Join(binDir, "grandchild.pid"))
	})

	t.Run("cancelled sweep", func(t *testing.T) {
		e := loadExperiment(t, t.TempDir(), "[1]", false)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := Run(ctx, e, Options{Binary: bin, Cores: 1})
			done <- err
		}()
		worker := readPid(t, filepath.Join(binDir, "worker.pid"), 30*time.Second)
		grandchild := readPid(t, filepath.Join(binDir, "grandchild.pid"), time.Second)
		cancel()
		select {
		case err := <-done:
			require.True(t, errors.Is(err, context.Canceled), "%v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the sweep did not return after cancellation")
		}
		requireDies(t, worker, 5*time.Second, "the worker")
		requireDies(t, grandchild, 5*time.Second, "a process the worker started (its group)")
	})
}
