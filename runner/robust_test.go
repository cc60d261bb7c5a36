package runner_test

// Tests of what must hold whatever the input or the fault (issue 17): a run
// owns its directory, checkpoints verify and fall back, a kill inside a
// checkpoint write resumes exactly, and no recipe value crashes or hangs the
// process.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// fastRecipe is tinyRecipe without the samples (quicker evaluations).
var fastRecipe = strings.Replace(tinyRecipe, "eval: {samples: 1, sample_len: 8}", "eval: {samples: 0}", 1)

func stepDir(dir string, n int) string {
	return filepath.Join(dir, rundir.CheckpointDir, fmt.Sprintf("step-%09d", n))
}

func latestOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rundir.CheckpointDir, "latest"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func stepsIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, rundir.CheckpointDir))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "step-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// holdLock takes dir's run lock as another process would, recording pid.
func holdLock(t *testing.T, dir string, pid int) func() {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.OpenFile(filepath.Join(dir, runner.LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// TestRunDirectoryLock: a run owns its directory. A run or resume into a
// locked directory fails at once naming the holder; a fresh run refuses a
// directory that holds a run unless forced, which clears it.
func TestRunDirectoryLock(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	dir := filepath.Join(t.TempDir(), "run")

	release := holdLock(t, dir, 4242)
	start := time.Now()
	_, err := runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir}})
	require.ErrorIs(t, err, runner.ErrBusy)
	require.ErrorContains(t, err, "pid 4242")
	require.Less(t, time.Since(start), 5*time.Second, "fails fast, without waiting for the lock")
	release()
	require.NoFileExists(t, filepath.Join(dir, rundir.SummaryFile), "the refused run wrote nothing")

	// The lock is free again: the run goes ahead and releases it at the end.
	_, err = runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir}})
	require.NoError(t, err)
	release = holdLock(t, dir, 4343)
	_, err = runner.Run(runner.Options{Resume: dir})
	require.ErrorIs(t, err, runner.ErrBusy, "a resume takes the lock too")
	require.ErrorContains(t, err, "pid 4343")
	release()

	// A fresh run into a directory that holds a run: refused, untouched.
	for _, what := range []string{rundir.RecipeFile, rundir.CheckpointDir} {
		t.Run("refused with "+what, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "run")
			require.NoError(t, os.MkdirAll(d, 0o755))
			if what == rundir.CheckpointDir {
				require.NoError(t, os.MkdirAll(filepath.Join(d, what, "step-000000004"), 0o755))
			} else {
				writeFile(t, d, what, "name: old\n")
			}
			_, err := runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + d}})
			require.ErrorContains(t, err, fmt.Sprintf("%s already holds a run (%s): resume it with -resume %s, or start over with -force", d, what, d))
			_, err = os.Stat(filepath.Join(d, what))
			require.NoError(t, err, "left as it was")
			require.NoFileExists(t, filepath.Join(d, rundir.SummaryFile))
		})
	}
	// Forced: the old run is cleared first.
	writeFile(t, dir, "old-notes.txt", "from the run before")
	_, err = runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir, "train.steps=8"}, Force: true})
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(dir, "old-notes.txt"))
	s, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, 8, s.Steps)
	require.Equal(t, []string{"step-000000004", "step-000000008"}, stepsIn(t, dir))
}

// TestConcurrentRunsIntoOneDirectory: two runs started at once with the same
// output.dir (different seeds): exactly one runs, the other fails, and every
// file of the directory belongs to the one that ran.
func TestConcurrentRunsIntoOneDirectory(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	dir := filepath.Join(t.TempDir(), "run")
	errs := make([]error, 2)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, errs[i] = runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir, fmt.Sprintf("train.seed=%d", i+1)}})
		}()
	}
	close(gate)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "both runs completed")
			winner = i
			continue
		}
		busy := errors.Is(err, runner.ErrBusy) || strings.Contains(err.Error(), "already holds a run")
		require.True(t, busy, "the loser says why: %v", err)
	}
	require.NotEqual(t, -1, winner, "one of the runs must run: %v", errs)
	t.Logf("seed %d ran; the other: %v", winner+1, errs[1-winner])

	seed := winner + 1
	rec, err := os.ReadFile(filepath.Join(dir, rundir.RecipeFile))
	require.NoError(t, err)
	require.Contains(t, string(rec), fmt.Sprintf("seed: %d\n", seed))
	s, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	b, _ := os.ReadFile(filepath.Join(dir, rundir.MetricsFile))
	require.Equal(t, strings.Count(string(b), "\n"), strings.Count(string(b), `"run_id":"`+s.RunID+`"`), "every metrics line is the summary's run")
	env, _ := os.ReadFile(filepath.Join(dir, rundir.EnvFile))
	require.Contains(t, string(env), `"run_id": "`+s.RunID+`"`)
	// The weights and the metrics are those of a run of the winner's seed alone.
	ref, err := run(t, p, fmt.Sprintf("train.seed=%d", seed))
	require.NoError(t, err)
	require.Equal(t, withoutTiming(t, ref), withoutTiming(t, dir))
	requireSameWeights(t, stepDir(ref, 12), stepDir(dir, 12))
}

func requireSameWeights(t *testing.T, a, b string) {
	t.Helper()
	wa, err := os.ReadFile(filepath.Join(a, checkpoint.ModelFile))
	require.NoError(t, err)
	wb, err := os.ReadFile(filepath.Join(b, checkpoint.ModelFile))
	require.NoError(t, err)
	require.True(t, bytes.Equal(wa, wb), "weights %s and %s differ", a, b)
}

// TestLongThenShortRun: a 60-step run, then a 30-step run into the same
// directory: refused without -force; forced, the new run's checkpoints
// survive pruning and latest names one of them; resuming it works.
func TestLongThenShortRun(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", strings.Replace(fastRecipe, "eval_every: 4", "eval_every: 0", 1))
	dir := filepath.Join(t.TempDir(), "run")
	opts := func(steps int, force bool) runner.Options {
		return runner.Options{Recipe: p, Force: force, Overrides: []string{"output.dir=" + dir, "train.steps=" + strconv.Itoa(steps),
			"train.checkpoint_every=10", "train.log_every=10", "train.batch=2", "output.keep_checkpoints=2"}}
	}
	_, err := runner.Run(opts(60, false))
	require.NoError(t, err)
	require.Equal(t, []string{"step-000000050", "step-000000060"}, stepsIn(t, dir))
	_, err = runner.Run(opts(30, false))
	require.ErrorContains(t, err, "already holds a run")
	require.Equal(t, "step-000000060", latestOf(t, dir))
	_, err = runner.Run(opts(30, true))
	require.NoError(t, err)
	require.Equal(t, "step-000000030", latestOf(t, dir))
	require.Equal(t, []string{"step-000000020", "step-000000030"}, stepsIn(t, dir), "keep_checkpoints: 2")
	var logs []string
	_, err = runner.Run(runner.Options{Resume: dir, Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	require.NoError(t, err)
	require.Contains(t, strings.Join(logs, "\n"), "from step 30")
}

// flipBits flips bits in the tensor data of a safetensors file, leaving its
// header intact.
func flipBits(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(b[:8])
	require.Greater(t, uint64(len(b)), 8+n+16)
	for i := len(b) - 16; i < len(b); i++ {
		b[i] ^= 0xff
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode())
	}))
}

// TestResumeFallsBack: a run stopped at step 8 (checkpoints at 4 and 8),
// damaged in various ways, then resumed: it says what it passed over,
// resumes from the newest checkpoint that verifies (never "starting over"
// while step-* exist), and ends with the metrics and weights of a run that
// was never interrupted.
func TestResumeFallsBack(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	full, err := run(t, p)
	require.NoError(t, err)
	stopped := filepath.Join(t.TempDir(), "stopped")
	_, err = runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + stopped}, StopAfter: 8})
	require.ErrorIs(t, err, runner.ErrInterrupted)
	require.Equal(t, []string{"step-000000004", "step-000000008"}, stepsIn(t, stopped))

	ckpt := func(dir string) string { return filepath.Join(dir, rundir.CheckpointDir) }
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		from   int      // the step resumed from
		says   []string // in the log
		err    string   // the resume fails with this (nothing is lost)
	}{
		{"intact", func(*testing.T, string) {}, 8, nil, ""},
		{"bits flipped in step-8's weights", func(t *testing.T, dir string) {
			flipBits(t, filepath.Join(stepDir(dir, 8), checkpoint.ModelFile))
		}, 4, []string{"latest names step-000000008, which fails verification", "does not match", "falling back to step-000000004"}, ""},
		{"latest deleted", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(ckpt(dir), "latest")))
		}, 8, []string{"falling back to step-000000008"}, ""},
		{"latest outside the run", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(ckpt(dir), "latest"), []byte("../../../../etc\n"), 0o644))
		}, 8, []string{`"../../../../etc" is not a step name`, "falling back to step-000000008"}, ""},
		{"latest a path", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(ckpt(dir), "latest"), []byte("a/b\n"), 0o644))
		}, 8, []string{`"a/b" is not a step name`}, ""},
		{"latest dangling", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(ckpt(dir), "latest"), []byte("step-000000012\n"), 0o644))
		}, 8, []string{"latest names step-000000012, which fails verification"}, ""},
		{"stale temporaries and a torn metrics line", func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(ckpt(dir), ".step-000000012.tmp-31337"), 0o755))
			writeFile(t, ckpt(dir), ".step-000000012.tmp-31337/model.safetensors", "half a file")
			f, err := os.OpenFile(filepath.Join(dir, rundir.MetricsFile), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			f.WriteString(`{"step":9,"split":"tra`)
			f.Close()
		}, 8, []string{"dropped a torn last line"}, ""},
		{"every checkpoint damaged", func(t *testing.T, dir string) {
			flipBits(t, filepath.Join(stepDir(dir, 8), checkpoint.ModelFile))
			flipBits(t, filepath.Join(stepDir(dir, 4), checkpoint.ModelFile))
		}, 0, nil, "no checkpoint verifies"},
		{"a malformed metrics line", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, rundir.MetricsFile))
			lines := strings.SplitAfter(string(b), "\n")
			lines[1] = `{"step":"x","split":"train"}` + "\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.MetricsFile), []byte(strings.Join(lines, "")), 0o644))
		}, 0, nil, rundir.MetricsFile + `:2: step: want a non-negative integer, got "x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			copyDir(t, stopped, dir)
			c.damage(t, dir)
			before, _ := os.ReadFile(filepath.Join(dir, rundir.MetricsFile))
			var logs []string
			_, err := runner.Run(runner.Options{Resume: dir, Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
			log := strings.Join(logs, "\n")
			require.NotContains(t, log, "starting from step 0")
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				if c.name == "every checkpoint damaged" {
					after, _ := os.ReadFile(filepath.Join(dir, rundir.MetricsFile))
					require.Equal(t, string(before), string(after), "the metrics are not truncated")
					require.Len(t, stepsIn(t, dir), 2, "nothing is pruned")
				}
				return
			}
			require.NoError(t, err, log)
			require.Contains(t, log, fmt.Sprintf("resuming %s from step %d", dir, c.from))
			for _, s := range c.says {
				require.Contains(t, log, s)
			}
			require.Equal(t, withoutTiming(t, full), withoutTiming(t, dir), "as if never interrupted")
			requireSameWeights(t, stepDir(full, 12), stepDir(dir, 12))
			require.Equal(t, "step-000000012", latestOf(t, dir))
			entries, _ := os.ReadDir(ckpt(dir))
			for _, e := range entries {
				require.NotContains(t, e.Name(), ".tmp-", "stale temporaries are removed at start-up")
			}
		})
	}
}

// TestCheckpointWriteChild is the body of a spawned run that pauses inside
// a checkpoint write (skipped otherwise); the parent kills it there.
func TestCheckpointWriteChild(t *testing.T) {
	if os.Getenv("HL_CHILD_RECIPE") == "" {
		t.Skip("runs only as a spawned child")
	}
	if stage := os.Getenv("HL_CHILD_PAUSE_STAGE"); stage != "" {
		step := os.Getenv("HL_CHILD_PAUSE_STEP")
		checkpoint.SetTestHook(stage, func(dir string) {
			if filepath.Base(dir) == step {
				fmt.Printf("PAUSED %s %s\n", stage, dir)
				time.Sleep(time.Hour)
			}
		})
	}
	_, err := runner.Run(runner.Options{Recipe: os.Getenv("HL_CHILD_RECIPE"), Env: os.Environ(),
		Overrides: []string{"output.dir=" + os.Getenv("HL_CHILD_DIR")},
		Log:       func(f string, a ...any) { fmt.Printf(f+"\n", a...) }})
	fmt.Printf("RUN-ERROR: %v\n", err)
}

// syncBuffer is an io.Writer safe to read while a child writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child starts this test binary as TestCheckpointWriteChild with env.
func child(t *testing.T, env ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointWriteChild$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// waitFor waits until the child's output contains s.
func waitFor(t *testing.T, out *syncBuffer, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v; output:\n%s", s, within, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKillInsideCheckpointWrite: a run killed with SIGKILL inside a
// checkpoint write (its files written but not installed; installed but
// latest not switched) resumes to the metrics and weights of a run that was
// never interrupted, and the debris is cleaned up.
func TestKillInsideCheckpointWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	full, err := run(t, p)
	require.NoError(t, err)
	for _, c := range []struct {
		stage  string
		latest string // what latest names after the kill
		from   int
	}{
		{"before-install", "step-000000004", 4},
		{"after-install", "step-000000004", 4},
	} {
		t.Run(c.stage, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			cmd, out := child(t, "HL_CHILD_RECIPE="+p, "HL_CHILD_DIR="+dir,
				"HL_CHILD_PAUSE_STAGE="+c.stage, "HL_CHILD_PAUSE_STEP=step-000000008")
			waitFor(t, out, "PAUSED", 60*time.Second)
			require.NoError(t, cmd.Process.Kill()) // SIGKILL: no handler runs
			err := cmd.Wait()
			require.Error(t, err)
			require.Equal(t, c.latest, latestOf(t, dir))
			entries, _ := os.ReadDir(filepath.Join(dir, rundir.CheckpointDir))
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if c.stage == "before-install" {
				require.NotContains(t, names, "step-000000008")
				require.True(t, strings.Contains(strings.Join(names, " "), ".step-000000008.tmp-"), "the write's temporary is left: %v", names)
			} else {
				require.Contains(t, names, "step-000000008", "installed, but latest not switched")
			}
			s, err := rundir.ReadSummary(dir)
			require.NoError(t, err)
			require.Equal(t, rundir.StatusRunning, s.Status, "killed: no handler wrote a summary")

			var logs []string
			_, err = runner.Run(runner.Options{Resume: dir, Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
			require.NoError(t, err, strings.Join(logs, "\n"))
			require.Contains(t, strings.Join(logs, "\n"), fmt.Sprintf("from step %d", c.from))
			require.Equal(t, withoutTiming(t, full), withoutTiming(t, dir), "as if never interrupted")
			requireSameWeights(t, stepDir(full, 12), stepDir(dir, 12))
			entries, _ = os.ReadDir(filepath.Join(dir, rundir.CheckpointDir))
			for _, e := range entries {
				require.NotContains(t, e.Name(), ".tmp-")
			}
		})
	}
}

// TestPreflight: a recipe that needs far more memory than there is fails
// before anything is built, naming the key and where it was set.
func TestPreflight(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	baseline := torch.LiveTensors()
	for _, c := range []struct {
		name      string
		overrides []string
		want      []string
	}{
		{"huge batch", []string{"train.batch=100000000"}, []string{"command line: train.batch: the run would need about", "lower train.batch"}},
		{"huge width", []string{"model.width=1000000", "model.heads=1"}, []string{"command line: model.width: the run would need about", "parameters"}},
		{"below max_memory", []string{"train.max_memory=0.001"}, []string{"train.batch: the run would need about", "but train.max_memory is 1.0 MiB"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			start := time.Now()
			_, err := runner.Run(runner.Options{Recipe: p, Overrides: append(c.overrides, "output.dir="+dir)})
			require.Error(t, err)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
			require.Less(t, time.Since(start), 5*time.Second)
			require.NoFileExists(t, filepath.Join(dir, rundir.SummaryFile), "nothing was built")
			require.Equal(t, baseline, torch.LiveTensors())
		})
	}
	// train.max_memory raises the limit past the machine's: the estimate no
	// longer refuses (a small run goes ahead).
	_, err := run(t, p, "train.max_memory=100000", "train.steps=2")
	require.NoError(t, err)
	_, err = run(t, p, "train.max_memory=-1")
	require.ErrorContains(t, err, "command line: train.max_memory: must not be negative")
}

// hugeAlloc is a test family whose build allocates a tensor no machine has
// room for (256 TiB: more than the address space).
type hugeAlloc struct{}

func (hugeAlloc) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	var cfg struct {
		Family string `key:"family"`
	}
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	s := nn.NewStore()
	defer s.Close() // never reached with a store to return
	s.Root().Param("w", torch.Empty([]int{1 << 23, 1 << 23}))
	return nil, fmt.Errorf("unreachable")
}

func init() { experiment.Register("test-huge-alloc", hugeAlloc{}) }

// TestBuildAllocationFailure: an allocation failure while the family builds
// its model becomes a failed run with the error in its summary, not a panic.
func TestBuildAllocationFailure(t *testing.T) {
	p := writeFile(t, t.TempDir(), "r.yaml", "model: {family: test-huge-alloc}\ntrain: {steps: 4, threads: 1}\noutput: {progress: false}\n")
	dir, err := run(t, p)
	require.ErrorContains(t, err, "building the test-huge-alloc experiment")
	require.ErrorContains(t, err, "alloc")
	s, rerr := rundir.ReadSummary(dir)
	require.NoError(t, rerr)
	require.Equal(t, rundir.StatusFailed, s.Status)
	require.Contains(t, s.Error, "building the test-huge-alloc experiment")

	// The same through a real family, past the preflight (train.max_memory
	// set absurdly high): a 12 TB attention matrix. (With overcommit always
	// on, the allocation would succeed and filling it would exhaust memory.)
	if b, _ := os.ReadFile("/proc/sys/vm/overcommit_memory"); strings.TrimSpace(string(b)) == "1" {
		t.Skip("vm.overcommit_memory=1: a huge allocation does not fail")
	}
	p = writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	dir, err = run(t, p, "model.width=1000000", "model.heads=1", "train.max_memory=1e12")
	require.ErrorContains(t, err, "building the gpt experiment")
	s, rerr = rundir.ReadSummary(dir)
	require.NoError(t, rerr)
	require.Equal(t, rundir.StatusFailed, s.Status)
	require.Contains(t, s.Error, "alloc")
}

// foreignListener accepts connections and never answers.
func foreignListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestJoinBusyPort: a rank whose MASTER_PORT is held by a foreign program
// that accepts and never answers fails within HIDDENLAB_DIST_TIMEOUT (plus
// a little), naming the timeout; SIGTERM ends a joining rank at once; a bad
// HIDDENLAB_DIST_TIMEOUT is an error.
func TestJoinBusyPort(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	port := foreignListener(t)
	distEnv := func(rank int, timeout string) []string {
		return []string{"HL_CHILD_RECIPE=" + p, "HL_CHILD_DIR=" + filepath.Join(t.TempDir(), "run"),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port), "RANK=" + strconv.Itoa(rank),
			"WORLD_SIZE=2", "HIDDENLAB_DIST_TIMEOUT=" + timeout}
	}
	for _, rank := range []int{1, 0} {
		t.Run(fmt.Sprintf("rank %d", rank), func(t *testing.T) {
			cmd, out := child(t, distEnv(rank, "3s")...)
			waitFor(t, out, "data-parallel: rank", 30*time.Second)
			start := time.Now()
			waitFor(t, out, "RUN-ERROR:", 15*time.Second)
			wall := time.Since(start)
			cmd.Wait()
			t.Logf("rank %d failed after %.1f s: %s", rank, wall.Seconds(), lineWith(out.String(), "RUN-ERROR:"))
			require.Less(t, wall, 6*time.Second)
			msg := lineWith(out.String(), "RUN-ERROR:")
			if rank == 1 {
				require.Contains(t, msg, "3s")
			}
			require.NotContains(t, msg, "<nil>")
		})
	}
	t.Run("SIGTERM", func(t *testing.T) {
		cmd, out := child(t, distEnv(1, "60s")...)
		waitFor(t, out, "data-parallel: rank", 30*time.Second)
		time.Sleep(300 * time.Millisecond) // inside the join
		start := time.Now()
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		waitFor(t, out, "RUN-ERROR:", 5*time.Second)
		cmd.Wait()
		require.Less(t, time.Since(start), 3*time.Second)
		require.Contains(t, lineWith(out.String(), "RUN-ERROR:"), "terminated while joining the process group")
	})
	for _, v := range []string{"banana", "-5s", "0", "1e9"} {
		_, err := runner.Run(runner.Options{Recipe: p, Env: distEnv(1, v)[2:], Overrides: []string{"output.dir=" + filepath.Join(t.TempDir(), "run")}})
		require.ErrorContains(t, err, fmt.Sprintf("HIDDENLAB_DIST_TIMEOUT=%q", v))
	}
	// Without a process group as well: the setting is checked either way.
	_, err := runner.Run(runner.Options{Recipe: p, Env: []string{"HIDDENLAB_DIST_TIMEOUT=banana"}, Overrides: []string{"output.dir=" + filepath.Join(t.TempDir(), "run")}})
	require.ErrorContains(t, err, `HIDDENLAB_DIST_TIMEOUT="banana"`)
}

func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestRangeChecksAtLoad: every eval.* and data.* number out of range is an
// error naming the key and its source before a step is trained, for the LM
// families' shared sections and their own.
func TestRangeChecksAtLoad(t *testing.T) {
	gpt := writeFile(t, t.TempDir(), "tiny.yaml", fastRecipe)
	codebook := writeFile(t, t.TempDir(), "cb.yaml", strings.Replace(fastRecipe, "family: gpt, width: 32, layers: 1, heads: 2",
		"family: codebook, width: 16, layers: 1, heads: 2, codebook: {at: [attn_preproj], codes: 16, k: 2}", 1))
	mohd := writeFile(t, t.TempDir(), "mohd.yaml", strings.Replace(fastRecipe, "family: gpt, width: 32, layers: 1, heads: 2",
		"family: mohd, width: 32, layers: 2, heads: 2, head_dim: 8, ffn: 48, groups: 8, shared: 2, topk: 2", 1))
	text := writeFile(t, t.TempDir(), "text.yaml", strings.Replace(fastRecipe, `  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 17, eval_seqs: 32}`, "  kind: text\n  text: {train: corpus.txt, context: 16}", 1))
	writeFile(t, filepath.Dir(text), "corpus.txt", strings.Repeat("the quick brown fox jumps over the lazy dog\n", 40))
	cases := []struct {
		recipe   string
		override string
		want     string
	}{
		{gpt, "eval.batch=-1", "eval.batch: must not be negative"},
		{gpt, "eval.max_batches=-1", "eval.max_batches: must not be negative"},
		{gpt, "eval.samples=-2", "eval.samples: must not be negative"},
		{gpt, "eval.sample_len=-1", "eval.sample_len: must not be negative"},
		{gpt, "eval.temperature=-0.5", "eval.temperature: must be a finite number ≥ 0 (0: greedy), got -0.5"},
		{gpt, "eval.top_k=-1", "eval.top_k: must not be negative"},
		{gpt, "data.tokfsm.eval_seqs=0", "data.tokfsm.eval_seqs: must be positive"},
		{gpt, "data.tokfsm.seq_len=2", "data.tokfsm.seq_len: need at least 3"},
		{gpt, "data.tokfsm.edges=9", "data.tokfsm.edges: need 1 ≤ edges ≤ states = 8, got 9"},
		{text, "data.text.valid_tokens=-1", "data.text.valid_tokens: must not be negative"},
		{text, "data.text.context=0", "data.text.context: must be positive"},
		{text, "data.text.valid_fraction=1.5", "data.text.valid_fraction: want a number in (0, 1)"},
		{text, "data.text.vocab_size=-3", "data.text.vocab_size: must not be negative"},
		{codebook, "eval.top_k=-1", "eval.top_k: must not be negative"},
		{codebook, "eval.analysis.samples=-1", "eval.analysis.samples: must not be negative"},
		{mohd, "eval.temperature=-1", "eval.temperature: must be a finite number"},
		{mohd, "eval.recall_slots=-1", "eval.recall_slots: must not be negative"},
		{gpt, "train.threads=100000", "train.threads: 100000 is more than 4× this machine's"},
		{gpt, "train.checkpoint_every=-1", "train.checkpoint_every: must not be negative"},
		{gpt, "train.log_every=-1", "train.log_every: must not be negative"},
		{gpt, "train.optimizer.eps=-1e-8", "train.optimizer.eps: must not be negative"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.recipe)+"/"+c.override, func(t *testing.T) {
			dir, err := run(t, c.recipe, c.override)
			require.ErrorContains(t, err, "command line: "+c.want)
			if s, rerr := rundir.ReadSummary(dir); rerr == nil {
				require.Zero(t, s.Steps, "nothing trained")
			}
		})
	}
	// A run refused for a bad value leaves a directory the corrected run may
	// have (nothing was trained there).
	dir := filepath.Join(t.TempDir(), "run")
	_, err := runner.Run(runner.Options{Recipe: gpt, Overrides: []string{"output.dir=" + dir, "eval.batch=-1"}})
	require.ErrorContains(t, err, "eval.batch")
	_, err = runner.Run(runner.Options{Recipe: gpt, Overrides: []string{"output.dir=" + dir, "train.steps=2"}})
	require.NoError(t, err)

	// From the recipe file, the file is named.
	p := writeFile(t, t.TempDir(), "bad.yaml", strings.Replace(fastRecipe, "eval: {samples: 0}", "eval: {samples: 0, temperature: -1}", 1))
	_, err = run(t, p)
	require.ErrorContains(t, err, "bad.yaml: eval.temperature: must be a finite number")
	_, err = runner.Run(runner.Options{Recipe: gpt, Env: []string{"HIDDENLAB_EVAL__TOP_K=-4"}, Overrides: []string{"output.dir=" + filepath.Join(t.TempDir(), "run")}})
	require.ErrorContains(t, err, "HIDDENLAB_EVAL__TOP_K")
	require.ErrorContains(t, err, "eval.top_k: must not be negative")
}

// TestRecipeFileLimits: a recipe nested thousands of levels deep, one too
// large, or one that never ends fails at once with a clear error; a recipe
// whose text blocks hold brackets is not mistaken for a deep one.
func TestRecipeFileLimits(t *testing.T) {
	dir := t.TempDir()
	var block strings.Builder
	block.WriteString("model: {family: gpt, width: 32, layers: 1, heads: 2}\nx:\n")
	for i := 1; i < 3000; i++ {
		block.WriteString(strings.Repeat("  ", i) + "x:\n")
	}
	block.WriteString(strings.Repeat("  ", 3000) + "x: 1\n")
	flow := "model: {family: gpt}\nx: " + strings.Repeat("{x: ", 3000) + "1" + strings.Repeat("}", 3000) + "\n"
	huge := "# " + strings.Repeat("padding ", 17<<20/8) + "\n" + fastRecipe
	for _, c := range []struct {
		name, body, want string
	}{
		{"block", block.String(), "too deeply nested (more than 64 levels)"},
		{"flow", flow, "too deeply nested (more than 64 levels)"},
		{"huge", huge, "larger than 16 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, c.name+".yaml", c.body)
			start := time.Now()
			_, err := run(t, p)
			require.ErrorContains(t, err, p+": "+c.want)
			require.Less(t, time.Since(start), 3*time.Second)
			t.Logf("%d bytes: %v in %v", len(c.body), err, time.Since(start).Round(time.Millisecond))
		})
	}
	start := time.Now()
	_, err := runner.Run(runner.Options{Recipe: "/dev/zero", Overrides: []string{"output.dir=" + filepath.Join(t.TempDir(), "run")}})
	require.ErrorContains(t, err, "/dev/zero: larger than 16 MiB")
	require.Less(t, time.Since(start), 3*time.Second)

	// Brackets inside text blocks and quotes are text, not nesting.
	text := strings.Replace(fastRecipe, "eval: {samples: 0}", "eval:\n  samples: 0\n  prompts:\n    - |\n      "+
		strings.Repeat("{[", 80)+"\n    - '"+strings.Repeat("[", 80)+"'\n", 1)
	_, err = run(t, writeFile(t, dir, "text.yaml", text), "train.steps=2")
	require.NoError(t, err)

	// A corpus that never ends is refused, naming the file.
	_, err = run(t, writeFile(t, dir, "zero.yaml", strings.Replace(fastRecipe, `  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 17, eval_seqs: 32}`, "  kind: text\n  text: {train: /dev/zero}", 1)))
	require.ErrorContains(t, err, "corpus /dev/zero: more than 64 MiB without an end")
}

// evalFails is a test family whose evaluation fails at the last step.
type evalFails struct{ failing }

type evalFailsExp struct {
	*failingExp
	steps, step int
}

func (f evalFails) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	e, err := f.failing.Build(r, env)
	if err != nil {
		return nil, err
	}
	return &evalFailsExp{failingExp: e.(*failingExp), steps: r.Train.Steps}, nil
}

func (e *evalFailsExp) Loss(step int) (*torch.Tensor, experiment.Logs) {
	e.step = step + 1
	return e.failingExp.Loss(step)
}

func (e *evalFailsExp) Eval() experiment.Logs {
	if e.step == e.steps {
		panic(&torch.Error{Op: "eval", Msg: "the final evaluation broke"})
	}
	return experiment.Logs{"loss": 1}
}

func init() { experiment.Register("test-eval-fails", evalFails{failing{mode: "none"}}) }

// TestFinalEvalFailureKeepsTheCheckpoint: the last step is checkpointed
// before the final evaluation, so an evaluation that fails costs no work.
func TestFinalEvalFailureKeepsTheCheckpoint(t *testing.T) {
	p := writeFile(t, t.TempDir(), "r.yaml", "model: {family: test-eval-fails}\ntrain: {steps: 4, eval_every: 2, threads: 1}\noutput: {progress: false}\n")
	dir, err := run(t, p)
	require.ErrorContains(t, err, "eval at step 4")
	require.ErrorContains(t, err, "the final evaluation broke")
	require.Equal(t, "step-000000004", latestOf(t, dir), "the final weights are saved")
	s, rerr := rundir.ReadSummary(dir)
	require.NoError(t, rerr)
	require.Equal(t, rundir.StatusFailed, s.Status)
	require.Equal(t, 4, s.Steps)
}
