package hrpo

import (
	"math/rand/v2"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/data/tokenize"
	"github.com/hiddenlab/hiddenlab/experiment"
)

// HRPO on a pretrained model. With data.tokenizer_file (or the
// data.text.tokenizer_file of an imported run's base.yaml) the policy's
// ids are that tokenizer's, and the tasks are written as text
// ([reasoning.TextCodec]): a pretrained model imported with `hiddenlab
// import hf` (Qwen2, Llama, GPT-2, … layouts; model section from its
// base.yaml, weights from train.init_from) is warmed up and trained with
// HRPO exactly as model S is, see recipes/hrpo-hf.yaml. ĥ interpolates the
// model's own input embeddings over its whole vocabulary (top-k truncated),
// EOT ends a completion, the think span ends when the decoded completion
// first contains "####", and the reward, format and faithfulness are
// judged on the decoded text.
//
// With a text tokenizer data.task may also be gsm8k: SFT rows and RL
// prompts are drawn from data.gsm8k.train, evaluation takes the first
// eval.per_k (final_per_k) problems of data.gsm8k.test, all written as
// plain text (reasoning.GSM8KPromptText: "Question: …\nAnswer:", the
// dataset's worked solution as the SFT target), problems longer than the
// context are left out (and logged), and the reward is the official one on
// the decoded text ([reasoning.TextCodec.ParseFor]); metrics are reported
// under K = 0 and the trace metrics mean nothing there.
//
// Where this differs from the paper's setup (Qwen2.5-1.5B/3B-Instruct with
// LoRA on GSM8K, MATH and knowledge QA): any size the CPU or GPU affords,
// full-parameter updates, the toy tasks ModChain and HopChain in text form
// or GSM8K, without Qwen's chat template or the official system prompt
// (prompts such as "3 ; + 4 ; * 2 ?" and answers "#### 4"), and an SFT
// warm-up on the task's format when the pretrained model has never seen it.

// loadCodec loads the data section's text tokenizer, if it names one.
func loadCodec(r *experiment.Recipe, d DataConfig) (*reasoning.TextCodec, error) {
	path := d.tokenizerFile()
	if path == "" {
		return nil, nil
	}
	tok, err := tokenize.Load(path)
	if err != nil {
		key := "data.tokenizer_file"
		if d.TokenizerFile == "" {
			key = "data.text.tokenizer_file"
		}
		return nil, keyError(r.Raw.Path, key, "%v", err)
	}
	return &reasoning.TextCodec{Tok: tok}, nil
}

// checkText checks the model section against a text tokenizer: the
// vocabulary holds its ids and the context the synthetic tasks' longest
// sequences, bounded by their length in bytes (GSM8K problems are checked
// one by one, see loadGSM8K).
func checkText(path string, m ModelConfig, d DataConfig, e EvalConfig, task reasoning.Task, c *reasoning.TextCodec) error {
	if v := c.Tok.VocabSize(); m.Vocab < v {
		return keyError(path, "model.vocab", "%d is smaller than the tokenizer's %d ids", m.Vocab, v)
	}
	if task == reasoning.GSM8K {
		return nil
	}
	need := max(reasoning.PromptBytes(task, d.K.Max)+d.MaxNew, reasoning.PromptBytes(task, e.K.Max)+e.MaxNew)
	if d.Phase == "sft" {
		need = max(need, d.sftMix().MaxTextLen())
	}
	if m.Context < need {
		return keyError(path, "model.context", "%d is too short for the tasks as text: prompts up to K = %d (in bytes, a bound on their tokens) plus %d new tokens need %d",
			m.Context, max(d.K.Max, e.K.Max), max(d.MaxNew, e.MaxNew), need)
	}
	return nil
}

// PromptIDs returns p's prompt in the policy's ids.
func (m *Model) PromptIDs(p reasoning.Problem) []int32 {
	if m.Text != nil {
		return m.Text.Prompt(p)
	}
	return p.Prompt
}

// TaskTokens returns completions of problems in task tokens, for the
// rewards and metrics of package reasoning: themselves, or their parse by
// the text codec ([reasoning.TextCodec.ParseFor]: GSM8K completions are
// judged by the official reward on their text).
func (m *Model) TaskTokens(completions [][]int32, problems []reasoning.Problem) [][]int32 {
	if m.Text == nil {
		return completions
	}
	out := make([][]int32, len(completions))
	for i, c := range completions {
		out[i] = m.Text.ParseFor(c, problems[i])
	}
	return out
}

// evalProblems returns the evaluation problems with perK per K: held-out
// synthetic problems, or the first perK problems of the GSM8K test set.
func (e *Experiment) evalProblems(perK int) ([]reasoning.Problem, error) {
	if e.task == reasoning.GSM8K {
		return e.gsmTest[:min(perK, len(e.gsmTest))], nil
	}
	ec := e.eval
	return reasoning.EvalSet(e.task, reasoning.EvalConfig{Seed: ec.Seed, K: ec.K.reasoning(), PerK: perK})
}

// gsmSFTStream separates the SFT rows of a GSM8K run from its RL prompts.
const gsmSFTStream uint64 = 0x4753_4d38_4b5f_7366 // "GSM8K_sf"

// drawProblems returns step's n problems drawn uniformly with replacement
// from pool: a pure function of the seed and the step.
func drawProblems(pool []reasoning.Problem, seed uint64, step, n int) []reasoning.Problem {
	r := rand.New(rand.NewPCG(seed, uint64(step)))
	out := make([]reasoning.Problem, n)
	for i := range out {
		out[i] = pool[r.IntN(len(pool))]
	}
	return out
}

// loadGSM8K reads the GSM8K files of task gsm8k and keeps the problems that
// fit the context: prompt plus data.max_new tokens (and, in the sft phase,
// prompt plus target) for training, prompt plus eval.max_new for the test
// set. Too long a context for every problem is an error.
func loadGSM8K(path string, m ModelConfig, d DataConfig, e EvalConfig, c *reasoning.TextCodec, logf func(string, ...any)) (train, test []reasoning.Problem, err error) {
	read := func(key, file string, fits func(reasoning.Problem) bool) ([]reasoning.Problem, error) {
		items, err := reasoning.LoadGSM8K(file)
		if err != nil {
			return nil, keyError(path, key, "%v", err)
		}
		var out []reasoning.Problem
		for _, it := range items {
			if p := reasoning.GSM8KProblem(it); fits(p) {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, keyError(path, "model.context", "%d is too short for every GSM8K problem of %s", m.Context, file)
		}
		if logf != nil && len(out) < len(items) {
			logf("gsm8k: %d of the %d problems of %s fit the context of %d tokens", len(out), len(items), file, m.Context)
		}
		return out, nil
	}
	train, err = read("data.gsm8k.train", d.GSM8K.Train, func(p reasoning.Problem) bool {
		n := len(c.Prompt(p))
		if d.Phase == "sft" && n+len(c.Target(p)) > m.Context {
			return false
		}
		return n+d.MaxNew <= m.Context
	})
	if err != nil {
		return nil, nil, err
	}
	test, err = read("data.gsm8k.test", d.GSM8K.Test, func(p reasoning.Problem) bool { return len(c.Prompt(p))+e.MaxNew <= m.Context })
	return train, test, err
}

// pad is the id that pads prompts and finished completions.
func (m *Model) pad() int32 {
	if m.Text != nil {
		return m.Text.Tok.EOT()
	}
	return reasoning.PAD
}

// eos is the id that ends a completion.
func (m *Model) eos() int32 {
	if m.Text != nil {
		return m.Text.Tok.EOT()
	}
	return reasoning.EOS
}

// thinkEnds reports whether the think span ends with completion's last
// token tok: "####" or EOS for task tokens, the text's first "####" or
// EOT for a text tokenizer.
func (m *Model) thinkEnds(completion []int32, tok int32) bool {
	if m.Text != nil {
		return m.Text.ThinkDone(completion)
	}
	return tok == reasoning.Delim || tok == reasoning.EOS
}

// completionLength is the number of tokens of completion through its
// first EOS (all of them if it has none).
func (m *Model) completionLength(completion []int32) int {
	eos := m.eos()
	for i, id := range completion {
		if id == eos {
			return i + 1
		}
	}
	return len(completion)
}
