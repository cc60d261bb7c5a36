package runner_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/experiment"
	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// checksummed is the gpt family, whose experiments print a checksum of their
// parameters when they close (so the test can compare ranks), and which can
// kill rank 1 at a given step.
type checksummed struct{}

type checksumExp struct {
	*lm.Experiment
	rank int
}

func (checksummed) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	d, _, err := lm.LoadData(r, env.Dir, r.Train.Seed)
	if err != nil {
		return nil, err
	}
	m, err := gpt.Build(r, env, d)
	if err != nil {
		return nil, err
	}
	e, err := lm.NewExperiment(r, env, m, d)
	return &checksumExp{Experiment: e, rank: env.Rank}, err
}

func (e *checksumExp) Loss(step int) (*torch.Tensor, experiment.Logs) {
	if e.rank == 1 && step == 3 && os.Getenv("HL_DDP_KILL") != "" {
		os.Exit(3) // a rank that dies mid-run
	}
	return e.Experiment.Loss(step)
}

func (e *checksumExp) Close() {
	var sum float64
	torch.WithScope(func() {
		for _, p := range e.Store().Params() {
			for _, v := range p.T.Float64s() {
				sum += math.Abs(v) * 1e3
			}
		}
	})
	fmt.Printf("CHECKSUM rank=%d %.17g\n", e.rank, sum)
	e.Experiment.Close()
}

func init() { experiment.Register("test-checksum", checksummed{}) }

const ddpRecipe = `
name: ddp
model: {family: test-checksum, width: 32, layers: 2, heads: 2}
data:
  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 17, eval_seqs: 32}
train:
  steps: 12
  batch: 8
  optimizer: {name: adamw, lr: 3.0e-3}
  threads: 1
  eval_every: 6
  log_every: 1
eval: {samples: 0}
output: {progress: false}
`

// TestDataParallelChild is the body of a spawned rank (skipped otherwise).
func TestDataParallelChild(t *testing.T) {
	if os.Getenv("HL_DDP_RECIPE") == "" {
		t.Skip("runs only as a spawned rank")
	}
	_, err := runner.Run(runner.Options{Recipe: os.Getenv("HL_DDP_RECIPE"), Env: os.Environ(),
		Overrides: []string{"output.dir=" + os.Getenv("HL_DDP_DIR")}, Log: t.Logf})
	require.NoError(t, err)
}

func launch(t *testing.T, recipe, dir string, world int, extra ...string) ([]string, []error, time.Duration) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	outs := make([]strings.Builder, world)
	cmds := make([]*exec.Cmd, world)
	start := time.Now()
	for r := 0; r < world; r++ {
		cmds[r] = exec.Command(os.Args[0], "-test.run=TestDataParallelChild", "-test.v")
		cmds[r].Env = append(append(os.Environ(), "HL_DDP_RECIPE="+recipe, "HL_DDP_DIR="+dir,
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(world), "HIDDENLAB_DIST_TIMEOUT=30s"), extra...)
		cmds[r].Stdout, cmds[r].Stderr = &outs[r], &outs[r]
		require.NoError(t, cmds[r].Start())
	}
	errs := make([]error, world)
	texts := make([]string, world)
	for r := range cmds {
		errs[r] = cmds[r].Wait()
		texts[r] = outs[r].String()
	}
	return texts, errs, time.Since(start)
}

func trainLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	recs, err := rundir.ReadMetrics(dir)
	require.NoError(t, err)
	var out []float64
	for _, r := range recs {
		if r.Split == "train" {
			out = append(out, r.Values["loss"])
		}
	}
	return out
}

// TestDataParallelEqualsSingleProcess: two Gloo processes on loopback, each
// training half of the global batch, end with identical parameters and log
// the loss curve of one process training the whole batch.
func TestDataParallelEqualsSingleProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := writeFile(t, t.TempDir(), "ddp.yaml", ddpRecipe)
	single, err := run(t, p)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "ddp")
	outs, errs, _ := launch(t, p, dir, 2)
	for r, err := range errs {
		require.NoError(t, err, outs[r])
	}
	sums := make([]string, 2)
	for r, out := range outs {
		i := strings.Index(out, fmt.Sprintf("CHECKSUM rank=%d ", r))
		require.GreaterOrEqual(t, i, 0, out)
		sums[r] = strings.Fields(out[i:])[2]
	}
	require.Equal(t, sums[0], sums[1], "both ranks hold identical parameters")
	a, b := trainLosses(t, single), trainLosses(t, dir)
	require.Len(t, b, 12)
	maxDiff := 0.0
	for i := range a {
		maxDiff = math.Max(maxDiff, math.Abs(a[i]-b[i]))
	}
	t.Logf("2 processes vs 1: max |Δloss| over %d steps %.2e; parameter checksums %s / %s", len(a), maxDiff, sums[0], sums[1])
	require.Less(t, maxDiff, 1e-5)
	// Only rank 0 wrote the run directory, and its record is complete.
	s, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	var recs []json.RawMessage
	b2, _ := os.ReadFile(filepath.Join(dir, rundir.MetricsFile))
	for _, line := range strings.Split(strings.TrimSpace(string(b2)), "\n") {
		recs = append(recs, json.RawMessage(line))
	}
	require.Len(t, recs, 12+2, "one train record per step and two evaluations, written once")
}

// TestKilledRankStopsTheGroup: when rank 1 dies mid-run, rank 0 fails with a
// clear error within a bounded time instead of hanging.
func TestKilledRankStopsTheGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	p := writeFile(t, t.TempDir(), "ddp.yaml", ddpRecipe)
	dir := filepath.Join(t.TempDir(), "ddp")
	outs, errs, wall := launch(t, p, dir, 2, "HL_DDP_KILL=1")
	require.Error(t, errs[1])
	require.Error(t, errs[0], "rank 0 must not succeed")
	require.Less(t, wall, 60*time.Second)
	s, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusFailed, s.Status)
	require.Contains(t, s.Error, "rank 0: all-reduce")
	t.Logf("rank 0 after %.1f s: %s", wall.Seconds(), s.Error)
	_ = outs
}
