package reasoning

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// TextTokenizer is what [TextCodec] needs of a text tokenizer (satisfied by
// data/tokenize's Tokenizer, e.g. an imported model's tokenizer.json).
type TextTokenizer interface {
	Encode(text string) []int32
	Decode(ids []int32) string
	VocabSize() int
	// EOT ends a completion (and pads batches).
	EOT() int32
}

// Unknown is the task-token id [TextCodec.Parse] gives a word of a decoded
// completion that is not in [Vocab]: it equals no answer or value, so a
// completion holding one is judged as the toy rule judges a wrong token.
const Unknown int32 = -1

// TextCodec writes the tasks as text for a policy whose vocabulary is a
// text tokenizer's (a pretrained, imported model) instead of [Vocab]'s 33
// ids. A problem's prompt is its token texts without BOS, joined by single
// spaces ("3 ; + 4 ; * 2 ?"); its target is a space and the think span,
// "####" and the answer (" 7 4 #### 4"), then the tokenizer's EOT. Prompt and target are encoded separately, as the policy
// generates the target after the prompt.
//
// Completions go back to task tokens by text ([TextCodec.Parse]): cut at the
// first EOT, decoded, split on white space, each word looked up in [Vocab].
// The toy reward, format and faithfulness rules then apply unchanged to the
// decoded text, and the think span ends where the decoded completion first
// contains "####" ([TextCodec.ThinkDone]), as the official code detects it
// on text.
type TextCodec struct {
	Tok TextTokenizer
}

// PromptText is p's prompt as text: its tokens after BOS, space-separated
// ([GSM8KPromptText] for a GSM8K problem).
func PromptText(p Problem) string {
	if p.Item != nil {
		return GSM8KPromptText(*p.Item)
	}
	prompt := p.Prompt
	if len(prompt) > 0 && prompt[0] == BOS {
		prompt = prompt[1:]
	}
	return Vocab{}.String(prompt)
}

// TargetText is p's target as text without its EOS: a space, then the think
// span, "####" and the answer, space-separated ([GSM8KTargetText] for a
// GSM8K problem).
func TargetText(p Problem) string {
	if p.Item != nil {
		return GSM8KTargetText(*p.Item)
	}
	t := p.Target
	if n := len(t); n > 0 && t[n-1] == EOS {
		t = t[:n-1]
	}
	return " " + Vocab{}.String(t)
}

// Prompt returns the tokenizer ids of p's prompt.
func (c TextCodec) Prompt(p Problem) []int32 { return c.Tok.Encode(PromptText(p)) }

// Target returns the tokenizer ids of p's target, ending in EOT.
func (c TextCodec) Target(p Problem) []int32 {
	return append(c.Tok.Encode(TargetText(p)), c.Tok.EOT())
}

// Text returns the decoded text of a completion up to its first EOT, and
// whether it has one.
func (c TextCodec) Text(completion []int32) (string, bool) {
	eot := c.Tok.EOT()
	for i, id := range completion {
		if id == eot {
			return c.Tok.Decode(completion[:i]), true
		}
	}
	return c.Tok.Decode(completion), false
}

// Parse maps a completion of tokenizer ids to task tokens: its text up to
// the first EOT split on white space, each word's [Vocab] id ([Unknown] if
// it has none), then [EOS] if the completion had an EOT. "#### 4" and
// "####4" therefore differ: the second is one unknown word.
func (c TextCodec) Parse(completion []int32) []int32 {
	text, ended := c.Text(completion)
	words := strings.Fields(text)
	out := make([]int32, 0, len(words)+1)
	for _, w := range words {
		id, ok := Vocab{}.ID(w)
		if !ok || id == BOS || id == EOS || id == PAD {
			id = Unknown
		}
		out = append(out, id)
	}
	if ended {
		out = append(out, EOS)
	}
	return out
}

// ParseFor is [TextCodec.Parse] for a completion of problem p. For a
// GSM8K problem the words are judged by the official reward instead of
// looked up: with exactly one "####" in the text, the words before it
// (each [Unknown]), [Delim], then one token, p.Answer ([GSM8KAnswer]) if
// [GSM8KReward] of the text is 1 and [Unknown] if not, then [EOS] if the
// completion ended; otherwise each word [Unknown] and one [Delim] per
// "####". So [Reward], [FormatOK] (exactly one "####") and [Stats] on the
// result agree with the official rule on the text; the trace metrics
// (faithfulness, skip rate) mean nothing for GSM8K.
func (c TextCodec) ParseFor(completion []int32, p Problem) []int32 {
	if p.Item == nil {
		return c.Parse(completion)
	}
	text, ended := c.Text(completion)
	var out []int32
	unknown := func(s string) {
		for range strings.Fields(s) {
			out = append(out, Unknown)
		}
	}
	if n := strings.Count(text, "####"); n == 1 {
		before, _, _ := strings.Cut(text, "####")
		unknown(before)
		ans := Unknown
		if GSM8KReward(text, p.Item.Gold) == 1 {
			ans = p.Answer
		}
		out = append(out, Delim, ans)
	} else {
		unknown(strings.ReplaceAll(text, "####", " "))
		for range n {
			out = append(out, Delim)
		}
	}
	if ended {
		out = append(out, EOS)
	}
	return out
}

// ThinkDone reports whether the think span of a partial completion has
// ended: its text up to the first EOT contains "####", or it has an EOT.
func (c TextCodec) ThinkDone(completion []int32) bool {
	text, ended := c.Text(completion)
	return ended || strings.Contains(text, "####")
}

// PromptBytes bounds the tokenizer length of task's prompts with k steps:
// their text's length in bytes (a byte-level tokenizer has at least one
// byte per token; every prompt of one task and k has the same text length).
func PromptBytes(task Task, k int) int {
	return len(PromptText(task.Generate(rand.New(rand.NewPCG(0, 0)), k, TraceFull)))
}

// SequenceBytes bounds the tokenizer length of the longest prompt and
// target (full trace) of task with k steps, EOT included.
func SequenceBytes(task Task, k int) int {
	p := task.Generate(rand.New(rand.NewPCG(0, 0)), k, TraceFull)
	return len(PromptText(p)) + len(TargetText(p)) + 1
}

// MaxTextLen bounds the tokenizer length of the sequences m draws:
// [SequenceBytes] at m.K.Max of the tasks it draws.
func (m SFTMix) MaxTextLen() int {
	n := SequenceBytes(ModChain, m.K.Max)
	if m.HopShare > 0 {
		n = max(n, SequenceBytes(HopChain, m.K.Max))
	}
	return n
}

// Batch encodes problems (SFT rows, targets as trained) as an SFT [Batch]
// in tokenizer ids: the layout of [SFTMix.Batch], with T the longest row
// and rows right-padded with EOT. It fails if a row is longer than maxLen.
func (c TextCodec) Batch(problems []Problem, maxLen int) (*Batch, error) {
	if len(problems) == 0 {
		return nil, fmt.Errorf("reasoning: empty text batch")
	}
	type row struct{ prompt, target []int32 }
	rows := make([]row, len(problems))
	T := 0
	for i, p := range problems {
		rows[i] = row{c.Prompt(p), c.Target(p)}
		n := len(rows[i].prompt) + len(rows[i].target)
		if n > maxLen {
			return nil, fmt.Errorf("reasoning: a %s row of K = %d is %d tokens, longer than %d", p.Task, p.K, n, maxLen)
		}
		T = max(T, n)
	}
	b := newBatch(len(problems), T)
	b.Problems = problems
	pad := int64(c.Tok.EOT())
	for i, r := range rows {
		b.setRow(i, r.prompt, r.target, pad)
	}
	return b, nil
}

// GSM8K as text. The prompt is plain, "Question: <question>\nAnswer:", and
// the target the dataset's worked solution (" <answer>", ending in
// "#### <number>") then EOT; the reward is [GSM8KReward] (the official
// parser) on the completion decoded up to its first EOT, against the raw
// gold text. The official code wraps the question in Qwen2.5's chat
// template with its system prompt; this plain form suits any tokenizer.

// GSM8K is the task of GSM8K problems ([GSM8KProblem]), text only: the
// synthetic generators ([Task.Generate], [Prompts], [EvalSet]) refuse it.
const GSM8K Task = HopChain + 1

// GSM8KAnswer is the answer token of a GSM8K Problem: a placeholder that
// [TextCodec.ParseFor] writes where the text's answer is right.
const GSM8KAnswer = Digit0

// GSM8KProblem wraps a GSM8K item as a Problem (K = 0, no token fields but
// Answer) for the policy, rewards and metrics of the synthetic tasks.
func GSM8KProblem(it GSM8KItem) Problem {
	return Problem{Task: GSM8K, Trace: TraceFull, Answer: GSM8KAnswer, Item: &it}
}

// GSM8KPromptText is the prompt text of a GSM8K item.
func GSM8KPromptText(it GSM8KItem) string { return "Question: " + it.Question + "\nAnswer:" }

// GSM8KTargetText is the SFT target text of a GSM8K item: a space and its
// worked solution.
func GSM8KTargetText(it GSM8KItem) string { return " " + it.Answer }

// GSM8KPrompt returns the tokenizer ids of it's prompt.
func (c TextCodec) GSM8KPrompt(it GSM8KItem) []int32 { return c.Tok.Encode(GSM8KPromptText(it)) }

// GSM8KTarget returns the tokenizer ids of it's target, ending in EOT.
func (c TextCodec) GSM8KTarget(it GSM8KItem) []int32 {
	return append(c.Tok.Encode(GSM8KTargetText(it)), c.Tok.EOT())
}

// GSM8KReward is the official GSM8K reward of a completion in tokenizer
// ids: its text up to the first EOT against it.Gold.
func (c TextCodec) GSM8KReward(completion []int32, it GSM8KItem) float64 {
	text, _ := c.Text(completion)
	return GSM8KReward(text, it.Gold)
}
