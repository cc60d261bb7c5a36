package sae_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
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
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
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
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
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

// TestCompareRegexes: on a tiny text codebook run (a staged run, as
// codebook-tinystories), an SAE on the codebook's input (attn.hook_z of the
// codebook layer) reports the codes vs SAE latents vs neurons table per
// regex feature, writes its bar chart, and thresholds latents and neurons
// at each code's recall.
func TestCompareRegexes(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	tmp := t.TempDir()
	var b strings.Builder
	for i := 0; i < 80; i++ {
		b.WriteString([]string{"the cat sat on the mat in the sun.\n", "a dog ran to the park with a ball.\n",
			"the bird sang in the tall green tree.\n"}[i%3])
	}
	corpus := filepath.Join(tmp, "stories.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(b.String()), 0o644))
	src := run(t, tmp, "cb", `
name: cb
model: {family: gpt, width: 16, layers: 2, heads: 2}
data: {kind: text, text: {train: `+corpus+`, tokenizer: byte, context: 32, valid_fraction: 0.25}}
train: {steps: 5, batch: 4, threads: 1, log_every: 5}
eval: {samples: 0}
output: {progress: false, tensorboard: false}
stages:
  - name: pre
  - name: cb
    model: {family: codebook, codebook: {at: [attn_preproj], codes: 16, k: 2}}
    train: {init_from: pre}
`)
	dir := run(t, tmp, "sae", `
name: sae
model: {family: sae, source: `+src+`, site: blocks.1.attn.hook_z, latents: 32, k: 4}
train: {steps: 10, batch: 4, optimizer: {name: adamw, lr: 3.0e-3, weight_decay: 0}, threads: 1, log_every: 10}
eval:
  max_batches: 1
  compare:
    seqs: 8
    regexes:
      - {name: cat, regex: '\bcats?\b'}
      - {name: dog, regex: '\bdogs?\b'}
      - {name: tree, regex: '\btrees?\b'}
      - {name: none, regex: 'zebra'}
output: {progress: false, tensorboard: false}
`)
	sum, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	cmp, ok := sum.Extra["sae_compare_regex"].(map[string]any)
	require.True(t, ok, "summary extra: %v", sum.Extra)
	t.Logf("comparison: %v", cmp)
	require.Equal(t, 4.0, cmp["features"])
	require.Equal(t, 3.0, cmp["found"], "every regex but zebra matches and some code fires on it")
	for _, k := range []string{"code_precision", "code_recall", "latent_precision", "neuron_precision"} {
		require.GreaterOrEqual(t, cmp[k], 0.0, k)
		require.LessOrEqual(t, cmp[k], 1.0, k)
	}
	require.NotContains(t, sum.Extra, "sae_compare", "no per-state table on text")
	report, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	require.Contains(t, string(report), "Codes vs SAE latents vs neurons per regex feature")
	require.Contains(t, string(report), "blocks.1.attn_preproj[0], blocks.1.attn_preproj[1]", "only the SAE layer's codebooks")
	require.Contains(t, string(report), "compare_regex.png")
	for _, f := range []string{"compare_regex.png", "compare_regex.json"} {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
	}
	var rc sae.RegexComparison
	js, err := os.ReadFile(filepath.Join(dir, "compare_regex.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(js, &rc))
	require.Len(t, rc.Rows, 4)
	for _, r := range rc.Rows[:3] {
		require.True(t, r.Found, r.Name)
		require.Positive(t, r.Matched, r.Name)
		// The official rule counts ⌊recall·M⌋ hits: the latent's and the
		// neuron's recall is at most the code's.
		require.LessOrEqual(t, r.LatentRec, r.CodeRecall+1e-9, r.Name)
		require.LessOrEqual(t, r.NeuronRec, r.CodeRecall+1e-9, r.Name)
		require.Less(t, r.Neuron, 16, "neurons are the site's 16 dimensions")
		require.Less(t, r.Latent, 32)
	}
	require.False(t, rc.Rows[3].Found)
	require.Zero(t, rc.Rows[3].Matched)

	// A bad regex or pick fails when the run is built, before training.
	for i, c := range []struct{ bad, msg string }{
		{`{regexes: [{name: x, regex: '(('}]}`, "eval.compare.regexes[0] (x)"},
		{`{pick: best}`, `eval.compare.pick: want f1 or precision, got "best"`},
	} {
		bad, msg := c.bad, c.msg
		name := "bad" + string(rune('0'+i))
		path := filepath.Join(tmp, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(`
name: bad
model: {family: sae, source: `+src+`, site: blocks.1.attn.hook_z, latents: 32, k: 4}
train: {steps: 1, batch: 4, threads: 1}
eval: {compare: `+bad+`}
output: {progress: false, tensorboard: false}
`), 0o644))
		_, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(tmp, name)}})
		require.ErrorContains(t, err, msg)
	}
}
