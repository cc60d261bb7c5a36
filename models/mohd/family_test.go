package mohd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// tinyRecipe is a MoHD model on a small SynthStories corpus that trains in
// a few seconds.
const tinyRecipe = `
name: tiny-mohd
model: {family: mohd, width: 32, layers: 2, heads: 2, head_dim: 8, ffn: 48, groups: 8, shared: 2, topk: 2}
data:
  kind: synthstories
  synthstories: {train_chars: 30000, valid_chars: 6000, context: 32}
train:
  steps: 12
  batch: 8
  optimizer: {name: adamw, lr: 3.0e-3}
  schedule: {name: cosine, warmup: 2}
  threads: 1
  eval_every: 6
  checkpoint_every: 6
  log_every: 3
eval: {samples: 1, sample_len: 8, max_batches: 4, analysis_seqs: 4, recall_slots: 16}
output: {progress: false}
`

func runRecipe(t *testing.T, body string, overrides ...string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	out, err := runner.Run(runner.Options{Recipe: path, ConfigsDir: dir, Overrides: append(overrides, "output.dir="+filepath.Join(dir, "run"))})
	require.NoError(t, err)
	return out
}

// TestTrainingLoop trains MoHD on both paths through the runner: the loss
// falls, the report carries the parameter accounting and the analysis, the
// summary the extra fields, and no tensor handle outlives the run.
func TestTrainingLoop(t *testing.T) {
	for _, path := range []ExecPath{PathGathered, PathMasked} {
		t.Run(string(path), func(t *testing.T) {
			baseline := torch.LiveTensors()
			dir := runRecipe(t, tinyRecipe, "model.path="+string(path))
			require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the run")
			s, err := rundir.ReadSummary(dir)
			require.NoError(t, err)
			require.Equal(t, rundir.StatusCompleted, s.Status, s.Error)
			recs, err := rundir.ReadMetrics(dir)
			require.NoError(t, err)
			var first, last float64
			for _, r := range recs {
				if r.Split == "train" {
					if first == 0 {
						first = r.Values["ce"]
					}
					last = r.Values["ce"]
					require.Contains(t, r.Values, "balance")
				}
			}
			require.Less(t, last, first, "training lowers the cross-entropy")
			for _, k := range []string{"params_total", "params_active", "step_ms", "router_entropy_min", "recall_accuracy", "flow_q50"} {
				require.Contains(t, s.Extra, k)
			}
			cfg := small()
			cfg.Vocab, cfg.Context, cfg.FFN, cfg.TopK = 58, 32, 48, 2
			require.EqualValues(t, cfg.TotalParams().NonEmbedding(), s.Extra["params_total"])
			require.EqualValues(t, cfg.ActiveParams().NonEmbedding(), s.Extra["params_active"])
			require.Contains(t, s.Eval, "recall_accuracy")
			report, err := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
			require.NoError(t, err)
			for _, want := range []string{"### Parameters (brief §2.3", "### Activation flow", "### Router health", "mohd_router_load.png"} {
				require.Contains(t, string(report), want)
			}
			for _, f := range []string{"mohd_flow_concentration.png", "mohd_flow_persistence.png", "mohd_flow_frequency.png", "mohd_router_load.png", "mohd_router_health.png"} {
				require.FileExists(t, filepath.Join(dir, rundir.PlotsDir, f))
			}
		})
	}
}

// TestAnalyzeRunDirectories: the analysis rebuilds a MoHD run and a gpt run
// from their directories and writes its files there.
func TestAnalyzeRunDirectories(t *testing.T) {
	mohdDir := runRecipe(t, tinyRecipe, "eval.analysis_seqs=0", "train.steps=6")
	gpt := strings.NewReplacer("{family: mohd, width: 32, layers: 2, heads: 2, head_dim: 8, ffn: 48, groups: 8, shared: 2, topk: 2}",
		"{family: gpt, width: 32, layers: 2, heads: 2, norm: rmsnorm, positions: rotary}", ", analysis_seqs: 4, recall_slots: 16", "")
	gptDir := runRecipe(t, gpt.Replace(tinyRecipe), "train.steps=6")
	for _, c := range []struct {
		dir     string
		routers int
	}{{mohdDir, 4}, {gptDir, 0}} {
		baseline := torch.LiveTensors()
		a, err := AnalyzeRun(c.dir, 4, 1)
		require.NoError(t, err)
		require.Equal(t, baseline, torch.LiveTensors())
		require.Len(t, a.Sites, 3*2, "attn.u, ffn.u and x per layer")
		require.Len(t, a.Routers, c.routers)
		for _, s := range a.Sites {
			require.True(t, s.Q50 > 0 && s.Q50 < 1, "q50 %v", s.Q50)
		}
		require.FileExists(t, filepath.Join(c.dir, "mohd_analysis.md"))
		require.FileExists(t, filepath.Join(c.dir, "mohd_analysis.json"))
		require.FileExists(t, filepath.Join(c.dir, rundir.PlotsDir, "mohd_flow_concentration.png"))
	}
	_, err := AnalyzeRun(t.TempDir(), 4, 1)
	require.ErrorContains(t, err, "recipe.yaml")
}
