package sae_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hiddenlab/hiddenlab/families" // registers the model families
	"github.com/hiddenlab/hiddenlab/models/sae"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// run writes recipe into tmp and runs it to completion, returning the run dir.
func run(t *testing.T, tmp, name, recipe string) string {
	t.Helper()
	path := filepath.Join(tmp, name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(recipe), 0o644))
	dir, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(tmp, name)}})
	require.NoError(t, err)
	return dir
}

// TestFamily trains a tiny GPT on TokFSM, then a TopK and a ReLU SAE on its
// residual stream for a few steps, and checks the metrics: TopK's L0 is at
// most k (k unless a kept pre-activation is negative), the normalised MSE is
// below 1, the CE loss recovered is at most 1, and the run reopens.
func TestFamily(t *testing.T) {
	tmp := t.TempDir()
	src := run(t, tmp, "src", `
name: src
model: {family: gpt, width: 32, layers: 2, heads: 2}
data:
  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 17, eval_seqs: 16}
train: {steps: 40, batch: 8, optimizer: {name: adamw, lr: 3.0e-3}, threads: 1, log_every: 20}
eval: {samples: 0}
output: {progress: false, tensorboard: false}
`)
	for _, c := range []struct {
		name, model string
	}{
		{"topk", `{family: sae, source: ` + src + `, site: blocks.0.hook_resid_post, kind: topk, latents: 64, k: 4, dead_tokens: 256}`},
		{"relu", `{family: sae, source: ` + src + `, site: blocks.1.mlp.hook_post, kind: relu, expansion: 2, l1: 0.5, dead_tokens: 256, resample_every: 10}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := run(t, tmp, c.name, `
name: `+c.name+`
model: `+c.model+`
train: {steps: 30, batch: 8, optimizer: {name: adamw, lr: 3.0e-3, weight_decay: 0}, threads: 1, log_every: 10, eval_every: 15}
eval: {max_batches: 2}
output: {progress: false, tensorboard: false}
`)
			sum, err := rundir.ReadSummary(dir)
			require.NoError(t, err)
			require.Equal(t, "completed", sum.Status)
			ev := sum.Eval
			t.Logf("%s: %v", c.name, ev)
			first, err := rundir.ReadMetrics(dir)
			require.NoError(t, err)
			require.Less(t, first[len(first)-1].Values["nmse"], first[0].Values["nmse"], "training lowers the loss")
			require.Less(t, ev["nmse"], 1.0)
			require.InDelta(t, 1-ev["nmse"], ev["explained_variance"], 0.1)
			require.LessOrEqual(t, ev["ce_recovered"], 1.0)
			require.False(t, math.IsNaN(ev["ce_recovered"]))
			require.Greater(t, ev["ce_zero"], ev["ce_clean"])
			require.GreaterOrEqual(t, ev["dead_fraction"], 0.0)
			require.LessOrEqual(t, ev["dense_fraction"], 1.0)
			if c.name == "topk" {
				require.LessOrEqual(t, ev["l0"], 4.0)
				require.Greater(t, ev["l0"], 3.0)
			} else {
				require.Greater(t, ev["l0"], 0.0)
			}
			report, err := os.ReadFile(filepath.Join(dir, "report.md"))
			require.NoError(t, err)
			require.Contains(t, string(report), "CE recovered")

			// The run reopens through the registry with the same metrics.
			torch.RunLocked(func() {
				r, err := rundir.Open(dir, rundir.OpenOptions{Device: torch.CPU})
				require.NoError(t, err)
				defer r.Close()
				e := r.Experiment.(*sae.Experiment)
				m := e.Evaluate()
				require.InDelta(t, ev["nmse"], m.NMSE, 1e-4)
				require.InDelta(t, ev["ce_recovered"], m.CERecovered, 1e-4)
				// Any LM model caches its sites; the SAE's streamed activations are those.
				torch.WithScope(func() {
					ids := torch.RandInt(0, 4, []int{2, 16})
					_, cache, err := sae.RunWithCache(e.Src.LM.M, ids, nn.SiteNames(e.Cfg.Site))
					require.NoError(t, err)
					defer cache.Close()
					got, err := cache.Lookup(e.Cfg.Site)
					require.NoError(t, err)
					require.Equal(t, 0.0, got.Reshape(-1, e.Src.DIn).Sub(e.Src.Acts(ids)).Abs().Amax().Item())
				})
			})
		})
	}
}

// TestCompare: on a TokFSM codebook source, the report holds the codes vs
// SAE latents vs neurons table, with precisions in [0, 1] and the latents
// and neurons thresholded at each code's recall.
func TestCompare(t *testing.T) {
	tmp := t.TempDir()
	src := run(t, tmp, "cb", `
name: cb
model:
  family: codebook
  width: 32
  layers: 1
  heads: 2
  codebook: {at: [mlp], codes: 32, k: 1}
data:
  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 17, eval_seqs: 16}
train: {steps: 30, batch: 8, optimizer: {name: adamw, lr: 3.0e-3}, threads: 1, log_every: 30}
eval: {samples: 0, analysis: {samples: 4, state_seqs: 16, interventions: 4}}
output: {progress: false, tensorboard: false}
`)
	dir := run(t, tmp, "sae", `
name: sae
model: {family: sae, source: `+src+`, site: blocks.0.hook_resid_mid, latents: 64, k: 4}
train: {steps: 20, batch: 8, optimizer: {name: adamw, lr: 3.0e-3, weight_decay: 0}, threads: 1, log_every: 10}
eval: {max_batches: 1, compare: {seqs: 32}}
output: {progress: false, tensorboard: false}
`)
	sum, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	cmp, ok := sum.Extra["sae_compare"].(map[string]any)
	require.True(t, ok, "summary extra: %v", sum.Extra)
	t.Logf("comparison: %v", cmp)
	require.Greater(t, cmp["states"], 0.0)
	for _, k := range []string{"code_precision", "code_recall", "latent_precision", "neuron_precision"} {
		require.GreaterOrEqual(t, cmp[k], 0.0, k)
		require.LessOrEqual(t, cmp[k], 1.0, k)
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	require.Contains(t, string(report), "Codes vs SAE latents vs neurons")
}
