package hrpo

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/hf"
	"github.com/hiddenlab/hiddenlab/hfio"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// makeQwen2 writes a tiny random Qwen2-layout checkpoint with the PyTorch
// reference of package hf (hf/testdata/hf_reference.py, make mode) and
// hiddenlab's 4096-id BPE tokenizer as its tokenizer.json, and returns the
// Hugging Face model directory. It skips without PyTorch.
func makeQwen2(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch reference unavailable: %s cannot import torch: %v", python, err)
	}
	root := t.TempDir()
	cases := []map[string]any{{"name": "qwen2", "seed": 11, "variants": []string{"f32"}, "config": map[string]any{
		"model_type": "qwen2", "vocab_size": 4096, "hidden_size": 32, "intermediate_size": 48,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
		"max_position_embeddings": 128, "tie_word_embeddings": true, "rope_theta": 1000000}}}
	js, err := json.Marshal(cases)
	require.NoError(t, err)
	casesPath := filepath.Join(root, "cases.json")
	require.NoError(t, os.WriteFile(casesPath, js, 0o644))
	out, err := exec.Command(python, "../../hf/testdata/hf_reference.py", "make", casesPath, root).CombinedOutput()
	require.NoError(t, err, "reference make: %s", out)
	dir := filepath.Join(root, "qwen2", "f32")

	f, err := os.Open("../../data/tokenize/testdata/hf/hlbpe.tokenizer.json.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	tok, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644))
	return dir
}

// hfRecipe starts HRPO from an imported model without a warm-up: the
// model section and the tokenizer come from the imported run's base.yaml,
// as in recipes/hrpo-hf.yaml, at test size.
const hfRecipe = `base: base.yaml
name: tiny-hrpo-hf
model: {family: hrpo, arm: hrpo, tau: 0.7, gate: {r_min: 0.9, r_max: 0.99, lr: 1.0e-2, lambda_lr: 1.0e-1}}
data: {phase: rl, task: modchain, k: {min: 2, max: 3}, max_new: 14, group: 2}
train: {steps: 2, batch: 2, threads: 1, log_every: 1, eval_every: 2, init_from: runs/imported,
        optimizer: {name: adamw, lr: 1.0e-3, betas: [0.9, 0.99]}}
eval: {k: {min: 2, max: 3}, per_k: 2, final_per_k: 2, batch: 16, max_new: 14, pass_k: 0, pass_prompts: 0, samples: 1}
output: {progress: false}
`

// An imported Qwen2-layout checkpoint is an HRPO starting point: the
// hrpo model section composed from its base.yaml builds exactly the
// imported architecture, the tasks are tokenized with its tokenizer, and
// recipes/hrpo-hf.yaml (SFT warm-up → RL, at test size), RL directly (from
// hf:<dir>) and GSM8K SFT and RL run end to end.
func TestHRPOFromImportedQwen2(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	src := makeQwen2(t)
	recipeFile, err := filepath.Abs("../../recipes/hrpo-hf.yaml")
	require.NoError(t, err)
	t.Chdir(t.TempDir()) // the recipe's train.init_from is runs/imported
	imported := filepath.Join("runs", "imported")
	require.NoError(t, os.Mkdir("runs", 0o755))
	require.NoError(t, hfio.Import(src, imported, hfio.Options{}))
	single := "hrpo-hf-rl.yaml"
	require.NoError(t, os.WriteFile(single, []byte(hfRecipe), 0o644))

	// The model section expresses the imported architecture.
	want, _, err := hf.ReadConfig(src)
	require.NoError(t, err)
	raw, err := recipe.Load(recipeFile, imported, nil, nil)
	require.NoError(t, err)
	raw, err = raw.WithStage(1)
	require.NoError(t, err)
	r, err := experiment.NewRecipe(raw)
	require.NoError(t, err)
	x, err := Family{}.Build(r, experiment.Env{Device: torch.CPU})
	require.NoError(t, err)
	e := x.(*Experiment)
	got := e.M.GPT.Config
	e.Close()
	if len(got.Windows) == 0 && len(want.Windows) == 0 {
		got.Windows, want.Windows = nil, nil
	}
	require.Equal(t, want, got)
	require.NotNil(t, e.M.Text)
	require.Equal(t, 4096, e.M.Text.Tok.VocabSize())

	gsm := "gsm8k.jsonl" // short problems: the tiny model's context is 128
	require.NoError(t, os.WriteFile(gsm, []byte(`{"question": "Tom has 3 apples and buys 15 more. How many apples does he have?", "answer": "3 + 15 = <<3+15=18>>18\n#### 18"}
{"question": "A box holds 4 pens. How many pens are in 5 boxes?", "answer": "4 * 5 = <<4*5=20>>20\n#### 20"}
{"question": "Ann had 10 dollars and spent 4. How much is left?", "answer": "10 - 4 = <<10-4=6>>6\n#### 6"}
`), 0o644))
	gsmRun := []string{"data.task=gsm8k", "data.gsm8k.train=" + gsm, "data.gsm8k.test=" + gsm, "data.max_new=24", "eval.max_new=24"}

	for _, c := range []struct {
		name      string
		recipe    string
		overrides []string
		stage     string // the RL stage's directory in the run
		from      []string
	}{
		{"recipes/hrpo-hf.yaml at test size", recipeFile, []string{"train.steps=2", "train.batch=2", "train.threads=1",
			"data.group=2", "eval.k.max=3", "eval.per_k=1", "eval.final_per_k=1", "eval.batch=8", "eval.pass_k=0",
			"eval.samples=1", "output.progress=false"}, "1-rl",
			[]string{"initialised from " + imported + "/", "initialised from OUT/0-sft/"}},
		{"rl from hf:dir", single, []string{"data.phase=rl", "model.arm=grpo", "train.init_from=hf:" + src}, "",
			[]string{"initialised from the Hugging Face model in " + src}},
		{"gsm8k sft", single, append([]string{"data.phase=sft"}, gsmRun...), "", []string{"initialised from " + imported}},
		{"gsm8k rl", single, append([]string{"data.phase=rl", "model.arm=hrpo"}, gsmRun...), "", []string{"initialised from " + imported}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log strings.Builder
			out := filepath.Join(t.TempDir(), "run")
			_, err := runner.Run(runner.Options{Recipe: c.recipe, ConfigsDir: imported,
				Overrides: append([]string{"output.dir=" + out}, c.overrides...),
				Log:       func(f string, a ...any) { log.WriteString(strings.TrimSpace(fmt.Sprintf(f, a...)) + "\n") }})
			require.NoError(t, err)
			for _, f := range c.from {
				require.Contains(t, log.String(), strings.ReplaceAll(f, "OUT", out))
			}
			rl := filepath.Join(out, c.stage)
			s, err := rundir.ReadSummary(rl)
			require.NoError(t, err)
			require.Equal(t, rundir.StatusCompleted, s.Status)
			keys := []string{"reward", "kl", "length", "think_len", "format"} // RL
			if c.name == "gsm8k sft" {
				keys = []string{"loss", "tokens"}
			}
			for _, k := range keys {
				require.Contains(t, s.Train, k)
			}
			if strings.Contains(c.name, "gsm8k") {
				require.Contains(t, s.Eval, "acc_k0") // GSM8K problems have K = 0
			} else {
				require.Contains(t, s.Eval, "acc_k2")
			}
			// The rollouts ran on the tokenizer's ids: a step's tokens
			// count tokenizer ids of 2 groups × G = 2 completions.
			recs, err := rundir.ReadMetrics(rl)
			require.NoError(t, err)
			require.NotEmpty(t, recs)
		})
	}
}
