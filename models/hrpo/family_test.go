package hrpo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// tinyRecipe is a staged recipe at test size: an SFT stage, then an RL
// stage of the hrpo arm started from it.
const tinyRecipe = `name: tiny-hrpo
model: {family: hrpo, width: 32, layers: 1, heads: 2, context: 48, arm: hrpo,
        gate: {r_min: 0.9, r_max: 0.99, lr: 1.0e-2, lambda_lr: 1.0e-1}}
data: {phase: sft, k: {min: 2, max: 4}, max_new: 8, group: 4}
train: {steps: 3, batch: 8, threads: 1, log_every: 1, eval_every: 2,
        optimizer: {name: adamw, lr: 1.0e-3, betas: [0.9, 0.99]}}
eval: {k: {min: 2, max: 5}, per_k: 3, final_per_k: 4, batch: 64, max_new: 8, pass_k: 2, pass_prompts: 1, samples: 1}
output: {progress: false}
stages:
  - name: sft
  - name: rl
    data: {phase: rl}
    train: {steps: 4, batch: 3, init_from: sft}
`

func writeRecipe(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

// runMetrics reads a stage's metrics without the timing fields.
func runMetrics(t *testing.T, dir string) []rundir.Record {
	t.Helper()
	recs, err := rundir.ReadMetrics(dir)
	require.NoError(t, err)
	for i := range recs {
		for _, k := range rundir.TimingKeys {
			delete(recs[i].Values, k)
		}
		recs[i].At = 0
		recs[i].Time = time.Time{} // wall clock
	}
	return recs
}

// A staged SFT → RL run trains, evaluates and reports; no tensor handle
// outlives it; and an RL stage interrupted after two steps and resumed
// (reference weights, optimizer state and RNG from the checkpoint) logs
// exactly what an uninterrupted one does.
func TestStagedRunNoLeakAndResume(t *testing.T) {
	path := writeRecipe(t, tinyRecipe)
	baseline := torch.LiveTensors()
	full := filepath.Join(t.TempDir(), "full")
	_, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + full}})
	require.NoError(t, err)
	require.Equal(t, baseline, torch.LiveTensors(), "tensor handles left after the run")

	rl := filepath.Join(full, "1-rl")
	s, err := rundir.ReadSummary(rl)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	require.Equal(t, "hrpo", s.Extra["arm"])
	for _, k := range []string{"reward", "zero_var", "kl", "kl_tokens", "entropy", "length", "think_len", "format", "hidden_ratio", "embeds_ratio", "hidden_q50", "decay_q50", "gate_r", "gate_i", "norm_ratio"} {
		require.Contains(t, s.Train, k)
	}
	for _, k := range []string{"acc_k2", "acc_k5", "off_acc_k5", "length", "off_length"} {
		require.Contains(t, s.Eval, k)
	}
	require.InDelta(t, 0.95, s.Train["decay_q50"], 0.05, "σ(Λ)^c starts in [r_min, r_max]")
	for _, f := range []string{PromptsFile, "plots/reward.png", "plots/hidden_ratio.png", "plots/eval_acc_by_k.png", "report.md"} {
		_, err := os.Stat(filepath.Join(rl, f))
		require.NoError(t, err, f)
	}
	pr, err := ReadPromptResults(rl)
	require.NoError(t, err)
	require.Len(t, pr.Correct, 4*4)
	require.Len(t, pr.CorrectOff, 4*4)

	// Interrupt each stage after 2 steps: SFT (3 steps) stops, resumes and
	// completes; RL then stops after 2 of 4 steps and resumes.
	part := filepath.Join(t.TempDir(), "part")
	_, err = runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + part}, StopAfter: 2})
	require.True(t, errors.Is(err, runner.ErrInterrupted), "%v", err)
	_, err = runner.Run(runner.Options{Resume: part, StopAfter: 2})
	require.True(t, errors.Is(err, runner.ErrInterrupted), "%v", err)
	_, err = runner.Run(runner.Options{Resume: part})
	require.NoError(t, err)
	require.Equal(t, runMetrics(t, rl), runMetrics(t, filepath.Join(part, "1-rl")))
	require.Equal(t, baseline, torch.LiveTensors())
}

// Recipe errors name the key and the reason before anything trains.
func TestRecipeErrors(t *testing.T) {
	path := writeRecipe(t, tinyRecipe)
	for _, c := range []struct {
		override, want string
	}{
		{"model.arm=gpro", `model.arm: unknown arm "gpro"`},
		{"data.phase=pretrain", `data.phase: want sft or rl, got "pretrain"`},
		{"data.group=1", "data.group: G must be at least 2"},
		{"model.gate.r_max=1", "model.gate.r_max: must be below 1"},
		{"model.gate.r_min=0.999", "model.gate.r_min: need 0 < r_min ≤ r_max"},
		{"model.tau=0", "model.tau: τ must be positive"},
		{"model.loss_temperature=0", "model.loss_temperature: must be positive"},
		{"model.top_k=-1", "model.top_k: must not be negative"},
		{"model.gate.init=xavier", `model.gate.init: want normal or uniform, got "xavier"`},
		{"model.context=20", "model.context: 20 is too short"},
		{"data.task=gsm8k", `data.task: want modchain or hopchain, got "gsm8k"`},
		{"data.task=hopchain", "data.sft.hop_share: is 0"},
		{"eval.per_k=0", "eval.per_k"},
		{"model.gate.lr_lambda=1", "model.gate.lr_lambda: unknown key"},
	} {
		t.Run(c.override, func(t *testing.T) {
			_, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{c.override, "output.dir=" + t.TempDir()}})
			require.ErrorContains(t, err, c.want)
		})
	}
}

// Optimizer groups: policy (decay), policy biases and gains (no decay),
// gate linears and Λ with their own LRs and weight decay; a frozen gate
// trains nothing of the gate.
func TestGroups(t *testing.T) {
	o := experiment.Optimizer{Name: "adamw", LR: 5e-5, WeightDecay: 0.1, Betas: []float64{0.9, 0.99}}
	for _, c := range []struct {
		arm   Arm
		names []string
	}{
		{GRPO, []string{"policy", "policy_no_decay"}},
		{HRPO, []string{"policy", "policy_no_decay", "gate", "lambda"}},
		{InterpOnly, []string{"policy", "policy_no_decay"}},
		{RawHidden, []string{"policy", "policy_no_decay"}},
		{FrozenGate, []string{"policy", "policy_no_decay"}},
	} {
		t.Run(string(c.arm), func(t *testing.T) {
			m := tinyModel(t, c.arm, 0.99, 0.999)
			e := &Experiment{M: m, model: tinyConfig(), store: m.GPT.Store}
			var names []string
			for _, g := range e.Groups(o) {
				names = append(names, g.Name)
				switch g.Name {
				case "gate":
					require.Equal(t, []float64{3e-4, 0.1}, []float64{g.LR, g.WeightDecay})
					require.Len(t, g.Params, 4)
				case "lambda":
					require.Equal(t, []float64{3e-3, 0.1}, []float64{g.LR, g.WeightDecay})
					require.Equal(t, "gate.lambda", g.Params[0].Name)
				case "policy":
					require.Equal(t, []float64{5e-5, 0.1}, []float64{g.LR, g.WeightDecay})
				case "policy_no_decay":
					require.Equal(t, 0.0, g.WeightDecay)
				}
				for _, p := range g.Params {
					require.True(t, p.T.RequiresGrad(), p.Name)
				}
			}
			require.Equal(t, c.names, names)
			if c.arm == FrozenGate {
				require.False(t, m.Gate.Lambda.RequiresGrad())
			}
		})
	}
}

// Study tabulates arms over seeds, adds the latent-off row, and pairs HRPO
// with GRPO prompt by prompt.
func TestStudy(t *testing.T) {
	root := t.TempDir()
	// Four prompts (K = 2, 2, 9, 9); HRPO solves three, GRPO one, HRPO with
	// the latent off two.
	// Interp differs by seed (seed 2 solves "1,0,0,0"), which gives the
	// seed-level table a non-degenerate interval.
	arms := []struct {
		config, arm  string
		correct, off string
	}{
		{"grpo", "grpo", "1,0,0,0", ""},
		{"hrpo", "hrpo", "1,1,1,0", "1,1,0,0"},
		{"interp", "interp", "1,1,0,0", ""},
	}
	var runs []StudyRun
	for _, a := range arms {
		for _, seed := range []int{1, 2} {
			correct := a.correct
			if a.arm == "interp" && seed == 2 {
				correct = "1,0,0,0"
			}
			dir := filepath.Join(root, a.config, fmt.Sprintf("seed-%d", seed))
			require.NoError(t, os.MkdirAll(dir, 0o755))
			train := "{}"
			if a.arm == "hrpo" {
				train = fmt.Sprintf(`{"hidden_ratio": 0.%d}`, seed)
			}
			sum := fmt.Sprintf(`{"status": "completed", "train": %s, "extra": {"arm": %q, "think_len": 4, "faith": 0.9}}`, train, a.arm)
			require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.SummaryFile), []byte(sum), 0o644))
			csv := "index,k,answer,correct,correct_off,length,think_len,hidden_ratio,completion\n"
			c, o := strings.Split(correct, ","), strings.Split(a.off, ",")
			for i, k := range []int{2, 2, 9, 9} {
				off := ""
				if a.off != "" {
					off = o[i]
				}
				csv += fmt.Sprintf("%d,%d,3,%s,%s,6,3,,1 2 3 #### 3 EOS\n", i, k, c[i], off)
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, PromptsFile), []byte(csv), 0o644))
			// Sampled: 8 samples of two problems (K = 2, 9); HRPO 6/8 and 2/8, GRPO 4/8 and 0/8.
			good, bad := 4, 0
			if a.arm == "hrpo" {
				good, bad = 6, 2
			}
			sampled := fmt.Sprintf("index,k,samples,correct\n0,2,8,%d\n1,9,8,%d\n", good, bad)
			require.NoError(t, os.WriteFile(filepath.Join(dir, SampledFile), []byte(sampled), 0o644))
			if a.arm == "hrpo" { // ten training steps: reward = step/10
				var m strings.Builder
				for step := 1; step <= 10; step++ {
					fmt.Fprintf(&m, `{"step":%d,"split":"train","reward":%g,"zero_var":0.5,"hidden_ratio":0.1}`+"\n", step, float64(step)/10)
				}
				require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.MetricsFile), []byte(m.String()), 0o644))
			}
			runs = append(runs, StudyRun{Config: a.config, Seed: seed, Dir: dir})
		}
	}
	runs = append(runs, StudyRun{Config: "frozen", Seed: 1, Dir: filepath.Join(root, "missing")})
	md, err := Study(runs)
	require.NoError(t, err)
	for _, want := range []string{
		"| grpo | 2 | 0.500 ± 0.000 | 0.000 ± 0.000 | 0.250 ± 0.000 | 6.000 ± 0.000 | 4.000 ± 0.000 | – | 0.900 ± 0.000 |",
		"| hrpo | 2 | 1.000 ± 0.000 | 0.500 ± 0.000 | 0.750 ± 0.000 | 6.000 ± 0.000 | 4.000 ± 0.000 | 0.150 ± 0.071 | 0.900 ± 0.000 |",
		"| hrpo (latent off) | 2 | 1.000 ± 0.000 | 0.000 ± 0.000 | 0.500 ± 0.000 | – | – | – | – |",
		"| hrpo | grpo | 4 | 0.7500 | 0.2500 | +0.5000 |",
		"| 2/0 |",
		"| hrpo | hrpo (latent off) | 4 | 0.7500 | 0.5000 | +0.2500 |",
		"| hrpo | 2 | 0.750 ± 0.000 | 0.250 ± 0.000 | 0.500 ± 0.000 |",
		// Trajectory: windows of two steps, (0.1+0.2)/2 … (0.9+1.0)/2.
		"| hrpo | reward | 0.150 ± 0.000 | 0.350 ± 0.000 | 0.550 ± 0.000 | 0.750 ± 0.000 | 0.950 ± 0.000 |",
		"| hrpo | hidden ratio | 0.100 ± 0.000 |",
		// Seeds: interp − grpo per seed +0.25 and 0: mean +0.125, sd 0.1768,
		// CI ± t(.975, 1) · SE = 12.7062 × 0.125; detectable (12.7062 +
		// 1.3764) × 0.125; on K ≤ 8 per seed +0.5 and 0: ± 12.7062 × 0.25.
		"| interp | grpo | greedy | 2 | +0.1250 | [-1.4633, +1.7133] | 0.5000 | 0.1768 | 1.7603 | +0.2500 | [-2.9266, +3.4266] | +0.0000 | [+0.0000, +0.0000] |",
		"| hrpo | grpo | greedy | 2 | +0.5000 | [+0.5000, +0.5000] | 0.0e+00 | 0.0000 | 0.0000 | +0.5000 |",
		"### Sampled accuracy\n\n| A | B | prompts | A | B | A − B | SE | t | p (t-test) | wins/losses | p (sign) | A − B, K ≤ 8 | A − B, K ≥ 9 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n| hrpo | grpo | 2 | 0.5000 | 0.2500 | +0.2500 | 0.0000 |",
	} {
		require.Contains(t, md, want)
	}
}
