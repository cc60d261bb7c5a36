package hrpo

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/recipe"
)

// ModelConfig is the model section of an hrpo recipe: the GPT (the brief's
// model "S" by default: pre-RMSNorm, rotary positions, tied embeddings),
// the arm and the HRPO knobs.
type ModelConfig struct {
	gpt.Config `key:",inline"`
	// Arm is the input path of the reasoning span: grpo, hrpo, interp,
	// hidden or frozen (see [Arm]). The SFT phase ignores it.
	Arm string `key:"arm"`
	// Tau is τ, the temperature of sampling and of the latent's p.
	Tau float64 `key:"tau"`
	// LossTemperature is the temperature of the policy's and the reference's
	// log-probabilities in the loss and the logged KL: 1 as in the official
	// code, whose GRPO loss takes log_softmax of the raw logits whatever the
	// sampling temperature. Set it equal to tau for hiddenlab's earlier
	// choice, the log-probabilities of the distribution sampled from.
	LossTemperature float64 `key:"loss_temperature"`
	// TopK truncates the sampling distribution to its k most likely tokens
	// (after the temperature) before sampling and before forming the
	// latent ĥ, in rollouts and in evaluation: 50 as in the official
	// generation (transformers' default top_k); 0 turns it off. With the
	// toy vocabulary of 33 tokens, 50 keeps every token.
	TopK int `key:"top_k"`
	// Beta is β, the weight of the k3 KL penalty to the reference model.
	Beta float64    `key:"beta"`
	Gate GateConfig `key:"gate"`
}

// GateConfig sets the gate's initialisation and optimizer groups.
type GateConfig struct {
	C    float64 `key:"c"`     // c, the exponent scale
	RMin float64 `key:"r_min"` // a = σ(Λ)^c starts in [r_min, r_max]
	RMax float64 `key:"r_max"`
	// LR is the learning rate of the gate linears (W_r, b_r, W_i, b_i),
	// LambdaLR that of Λ; both follow train.schedule.
	LR          float64 `key:"lr"`
	LambdaLR    float64 `key:"lambda_lr"`
	WeightDecay float64 `key:"weight_decay"` // on the linears and Λ
	// Init initialises the gate linears W_r, W_i: normal draws them from
	// N(0, 0.02²) with zero biases (the official code: transformers'
	// _init_weights); uniform draws weights and biases from U(±1/√d)
	// (paper App. A, hiddenlab's earlier default).
	Init string `key:"init"`
}

// DefaultModel is the model section's defaults: model S of brief §8.3
// (d = 128, L = 3, H = 4, FF = 512) and the §8.4 RL knobs.
func DefaultModel() ModelConfig {
	c := gpt.Default()
	c.Vocab, c.Context = reasoning.VocabSize, 64
	c.Width, c.Layers, c.Heads = 128, 3, 4
	c.Positions, c.Norm, c.TiedHead = "rotary", "rmsnorm", true
	return ModelConfig{Config: c, Arm: string(HRPO), Tau: 0.5, LossTemperature: 1, TopK: 50, Beta: 0.005,
		Gate: GateConfig{C: 8, RMin: 0.99, RMax: 0.999, LR: 3e-4, LambdaLR: 3e-3, WeightDecay: 0.1, Init: string(GateInitNormal)}}
}

// KRange is an inclusive range of chain lengths.
type KRange struct {
	Min int `key:"min"`
	Max int `key:"max"`
}

func (k KRange) reasoning() reasoning.KRange { return reasoning.KRange{Min: k.Min, Max: k.Max} }

// SFTConfig is the SFT warm-up mix (brief §8.1); see [reasoning.SFTMix].
type SFTConfig struct {
	Full     float64 `key:"full"`
	Skip     float64 `key:"skip"`
	Direct   float64 `key:"direct"`
	HopShare float64 `key:"hop_share"`
	Noise    float64 `key:"noise"` // trace noise (the optional noisy teacher)
}

// DataConfig is the data section: the phase (sft: the warm-up that
// produces the starting checkpoint; rl: the RL stage), the task, K, the
// SFT mix and the RL group. In the rl phase train.batch is the number of
// prompts per step, each rolled out G times.
type DataConfig struct {
	Phase  string    `key:"phase" required:"true"` // sft or rl
	Task   string    `key:"task"`                  // modchain or hopchain (RL prompts and evaluation)
	K      KRange    `key:"k"`                     // chain lengths of SFT rows and RL prompts
	SFT    SFTConfig `key:"sft"`
	Group  int       `key:"group"`   // G, completions per prompt
	MaxNew int       `key:"max_new"` // completion tokens at most
	// Seed picks the stream of SFT batches and RL prompts (0: train.seed).
	Seed uint64 `key:"seed"`
	// TokenizerFile writes the tasks as text in this tokenizer's ids (a
	// Hugging Face tokenizer.json, e.g. an imported model's, or hiddenlab's
	// own file) instead of the 33-token task vocabulary: see
	// [reasoning.TextCodec]. Empty: the task vocabulary.
	TokenizerFile string `key:"tokenizer_file"`
	// Kind and Text let a recipe compose with an imported run's base.yaml
	// (whose data section is kind: text, text: {tokenizer: file,
	// tokenizer_file: …}): kind must then be text, and text.tokenizer_file
	// is the tokenizer when tokenizer_file is empty. Nothing else of a
	// text data section applies to hrpo.
	Kind string          `key:"kind"`
	Text *TextDataConfig `key:"text"`
	// GSM8K holds the problems of task: gsm8k (which needs a text
	// tokenizer): SFT rows and RL prompts from Train, evaluation from Test.
	GSM8K GSM8KDataConfig `key:"gsm8k"`
}

// GSM8KDataConfig names the GSM8K JSON Lines files (reasoning.LoadGSM8K).
type GSM8KDataConfig struct {
	Train string `key:"train"`
	Test  string `key:"test"`
}

// TextDataConfig is the part of a text data section hrpo reads (see
// DataConfig.Kind).
type TextDataConfig struct {
	Tokenizer     string `key:"tokenizer"` // file
	TokenizerFile string `key:"tokenizer_file"`
}

// tokenizerFile is the tokenizer the data section names, if any.
func (d DataConfig) tokenizerFile() string {
	if d.TokenizerFile == "" && d.Text != nil {
		return d.Text.TokenizerFile
	}
	return d.TokenizerFile
}

// DefaultData is the data section's defaults.
func DefaultData() DataConfig {
	return DataConfig{Task: "modchain", K: KRange{2, 8}, SFT: SFTConfig{Full: 0.6, Skip: 0.2, Direct: 0.2},
		Group: 8, MaxNew: 16, GSM8K: GSM8KDataConfig{Train: "third_party/gsm8k/train.jsonl", Test: "third_party/gsm8k/test.jsonl"}}
}

// EvalConfig is the eval section: greedy held-out evaluation by K, hybrid
// input on (and, for latent arms, off).
type EvalConfig struct {
	Seed uint64 `key:"seed"`
	K    KRange `key:"k"`
	// PerK problems per K at every evaluation; FinalPerK in the report's
	// final evaluation, whose per-prompt results feed the paired tests.
	PerK      int `key:"per_k"`
	FinalPerK int `key:"final_per_k"`
	Batch     int `key:"batch"` // rows per batched decode
	MaxNew    int `key:"max_new"`
	// PassK samples per prompt for pass@k on PassPrompts problems per K in
	// the report (0: skip).
	PassK       int `key:"pass_k"`
	PassPrompts int `key:"pass_prompts"`
	Samples     int `key:"samples"` // completions shown per K in the report
}

// DefaultEval is the eval section's defaults: K = 2..10 (9 and 10 test
// length generalisation).
func DefaultEval() EvalConfig {
	return EvalConfig{K: KRange{2, 10}, PerK: 100, FinalPerK: 300, Batch: 1024, MaxNew: 16,
		PassK: 8, PassPrompts: 32, Samples: 2}
}

// keyError locates a bad value in the recipe.
func keyError(path, key, format string, args ...any) error {
	return &recipe.SourceError{Source: path, Err: &recipe.KeyError{Key: key, Reason: fmt.Sprintf(format, args...)}}
}

// validate checks the sections' values and returns the arm and task.
func validate(path string, m ModelConfig, d DataConfig, e EvalConfig) (Arm, reasoning.Task, error) {
	arm, err := ParseArm(m.Arm)
	if err != nil {
		return "", 0, keyError(path, "model.arm", "%v", err)
	}
	var task reasoning.Task
	switch d.Task {
	case "modchain":
		task = reasoning.ModChain
	case "hopchain":
		task = reasoning.HopChain
	case "gsm8k":
		if d.tokenizerFile() == "" {
			return "", 0, keyError(path, "data.task", "want modchain or hopchain, got %q: gsm8k needs a text tokenizer (data.tokenizer_file)", d.Task)
		}
		task = reasoning.GSM8K
	default:
		return "", 0, keyError(path, "data.task", "want modchain or hopchain (or gsm8k with a text tokenizer), got %q", d.Task)
	}
	checks := []struct {
		ok     bool
		key    string
		format string
		args   []any
	}{
		{d.Phase == "sft" || d.Phase == "rl", "data.phase", "want sft or rl, got %q", []any{d.Phase}},
		{m.Tau > 0, "model.tau", "τ must be positive, got %v", []any{m.Tau}},
		{m.LossTemperature > 0, "model.loss_temperature", "must be positive, got %v", []any{m.LossTemperature}},
		{m.TopK >= 0, "model.top_k", "must not be negative (0: off), got %d", []any{m.TopK}},
		{m.Gate.Init == string(GateInitNormal) || m.Gate.Init == string(GateInitUniform), "model.gate.init", "want normal or uniform, got %q", []any{m.Gate.Init}},
		{m.Beta >= 0, "model.beta", "β must not be negative, got %v", []any{m.Beta}},
		{m.Gate.C > 0, "model.gate.c", "must be positive, got %v", []any{m.Gate.C}},
		{m.Gate.RMin > 0 && m.Gate.RMin <= m.Gate.RMax, "model.gate.r_min", "need 0 < r_min ≤ r_max, got %v and %v", []any{m.Gate.RMin, m.Gate.RMax}},
		{m.Gate.RMax < 1, "model.gate.r_max", "must be below 1, got %v", []any{m.Gate.RMax}},
		{m.Gate.LR >= 0 && m.Gate.LambdaLR >= 0, "model.gate.lr", "learning rates must not be negative", nil},
		{m.Gate.WeightDecay >= 0, "model.gate.weight_decay", "must not be negative", nil},
		{d.K.Min >= 1 && d.K.Max >= d.K.Min, "data.k", "need 1 ≤ min ≤ max, got [%d, %d]", []any{d.K.Min, d.K.Max}},
		{d.Group >= 2, "data.group", "G must be at least 2 (advantages are standardised within a group), got %d", []any{d.Group}},
		{d.MaxNew >= 1, "data.max_new", "must be positive, got %d", []any{d.MaxNew}},
		{d.Kind == "" || d.Kind == "text", "data.kind", "want text (an imported run's base.yaml) or nothing, got %q", []any{d.Kind}},
		{d.Text == nil || (d.Text.Tokenizer == "file" || d.Text.Tokenizer == "") && d.Text.TokenizerFile != "", "data.text",
			"hrpo reads only tokenizer: file and tokenizer_file from a text data section", nil},
		{e.K.Min >= 1 && e.K.Max >= e.K.Min, "eval.k", "need 1 ≤ min ≤ max, got [%d, %d]", []any{e.K.Min, e.K.Max}},
		{e.PerK >= 1 && e.FinalPerK >= 0, "eval.per_k", "per_k must be positive and final_per_k not negative", nil},
		{e.Batch >= 1, "eval.batch", "must be positive, got %d", []any{e.Batch}},
		{e.MaxNew >= 1, "eval.max_new", "must be positive, got %d", []any{e.MaxNew}},
		{e.PassK >= 0 && e.PassPrompts >= 0 && e.Samples >= 0, "eval.pass_k", "pass_k, pass_prompts and samples must not be negative", nil},
	}
	for _, c := range checks {
		if !c.ok {
			return "", 0, keyError(path, c.key, c.format, c.args...)
		}
	}
	if task == reasoning.GSM8K { // lengths are checked per problem, in tokens (gsm8kSets)
		return arm, task, nil
	}
	need := max(task.PromptLen(d.K.Max)+d.MaxNew, task.PromptLen(e.K.Max)+e.MaxNew)
	if d.Phase == "sft" {
		if err := d.sftMix().Validate(); err != nil {
			return "", 0, keyError(path, "data.sft", "%v", err)
		}
		if task == reasoning.HopChain && d.SFT.HopShare == 0 {
			return "", 0, keyError(path, "data.sft.hop_share", "is 0, so SFT never shows the hopchain task it evaluates")
		}
		need = max(need, d.sftMix().MaxLen())
	}
	if m.Context < need {
		return "", 0, keyError(path, "model.context", "%d is too short: prompts up to K = %d plus %d new tokens need %d",
			m.Context, max(d.K.Max, e.K.Max), max(d.MaxNew, e.MaxNew), need)
	}
	return arm, task, nil
}

// sftMix is the SFT distribution of the data section.
func (d DataConfig) sftMix() reasoning.SFTMix {
	return reasoning.SFTMix{K: d.K.reasoning(), Full: d.SFT.Full, Skip: d.SFT.Skip, Direct: d.SFT.Direct,
		HopShare: d.SFT.HopShare, TraceNoise: d.SFT.Noise}
}
