package reasoning

import (
	"fmt"
	"math/rand/v2"
)

// Task names one of the synthetic tasks.
type Task uint8

const (
	// ModChain is the mod-10 arithmetic chain task (§8.1).
	ModChain Task = iota
	// HopChain is the in-context pointer-chasing task (§8.2).
	HopChain
)

// String returns "modchain" or "hopchain".
func (t Task) String() string {
	switch t {
	case ModChain:
		return "modchain"
	case HopChain:
		return "hopchain"
	case GSM8K:
		return "gsm8k"
	}
	return fmt.Sprintf("Task(%d)", uint8(t))
}

// PromptLen returns the prompt length of a problem with k steps.
func (t Task) PromptLen(k int) int {
	if t == HopChain {
		return 1 + 3*NumSymbols + 3 + len(appendNumber(nil, k)) + 1
	}
	return 3*k + 3
}

// MaxLen returns the length of prompt plus full-trace target for k steps,
// the longest sequence a problem with k steps produces.
func (t Task) MaxLen(k int) int { return t.PromptLen(k) + k + 3 }

// Generate draws one problem with k ≥ 1 steps from r. It panics if k < 1 or
// t is not a known task.
func (t Task) Generate(r *rand.Rand, k int, trace Trace) Problem {
	switch t {
	case ModChain:
		return GenerateModChain(r, k, trace)
	case HopChain:
		return GenerateHopChain(r, k, trace)
	}
	panic(fmt.Sprintf("reasoning: unknown task %d", uint8(t)))
}

func (t Task) valid() error {
	if t != ModChain && t != HopChain {
		return fmt.Errorf("reasoning: unknown task %d", uint8(t))
	}
	return nil
}

// Trace is the style of the think span in a target.
type Trace uint8

const (
	// TraceFull writes every intermediate value v1 … vK.
	TraceFull Trace = iota
	// TraceSkip writes every second value ending with vK: v_j for
	// j ≡ K (mod 2), ⌈K/2⌉ tokens.
	TraceSkip
	// TraceDirect writes no think span: the target is "#### vK EOS".
	TraceDirect
)

// String returns "full", "skip" or "direct".
func (s Trace) String() string {
	switch s {
	case TraceFull:
		return "full"
	case TraceSkip:
		return "skip"
	case TraceDirect:
		return "direct"
	}
	return fmt.Sprintf("Trace(%d)", uint8(s))
}

// KRange is an inclusive range of chain lengths K.
type KRange struct{ Min, Max int }

// Validate reports an error unless 1 ≤ Min ≤ Max.
func (r KRange) Validate() error {
	if r.Min < 1 || r.Max < r.Min {
		return fmt.Errorf("reasoning: bad K range [%d, %d]: need 1 ≤ min ≤ max", r.Min, r.Max)
	}
	return nil
}

// draw returns a K uniform in the range.
func (r KRange) draw(rng *rand.Rand) int { return r.Min + rng.IntN(r.Max-r.Min+1) }

// Problem is one generated task instance. All token fields hold ids.
type Problem struct {
	Task   Task
	Trace  Trace   // style of Target's think span
	K      int     // number of steps (operations or hops)
	Prompt []int32 // BOS … ?
	Target []int32 // think span, Delim, Answer, EOS
	Answer int32   // answer token; for ModChain the digit id equals the value vK
	Values []int32 // true intermediate tokens v1 … vK; Values[K-1] == Answer
	// Item is the GSM8K problem of a GSM8K Problem ([GSM8KProblem]), nil
	// for the synthetic tasks.
	Item *GSM8KItem
}

// Think returns the think span of a generated target: the tokens before its
// final "Delim Answer EOS".
func (p Problem) Think() []int32 { return p.Target[:len(p.Target)-3] }

// Sequence returns a new slice holding Prompt followed by Target.
func (p Problem) Sequence() []int32 {
	s := make([]int32, 0, len(p.Prompt)+len(p.Target))
	return append(append(s, p.Prompt...), p.Target...)
}

// GenerateModChain draws a ModChain problem with k ≥ 1 operations: a start
// digit, then k (operator, operand) pairs, operators uniform over + - *,
// operands uniform over 0..9 (1..9 for *). It panics if k < 1 or trace is
// not a known style.
func GenerateModChain(r *rand.Rand, k int, trace Trace) Problem {
	if k < 1 {
		panic(fmt.Sprintf("reasoning: ModChain needs k ≥ 1, got %d", k))
	}
	v := r.IntN(10)
	prompt := make([]int32, 0, ModChain.PromptLen(k))
	prompt = append(prompt, BOS, Digit0+int32(v))
	values := make([]int32, k)
	for j := range k {
		var op int32
		var x int
		switch r.IntN(3) {
		case 0:
			op, x = Plus, r.IntN(10)
			v = (v + x) % 10
		case 1:
			op, x = Minus, r.IntN(10)
			v = (v - x + 10) % 10
		default:
			op, x = Times, 1+r.IntN(9)
			v = v * x % 10
		}
		prompt = append(prompt, Sep, op, Digit0+int32(x))
		values[j] = Digit0 + int32(v)
	}
	prompt = append(prompt, Query)
	return newProblem(ModChain, trace, prompt, values)
}

// GenerateHopChain draws a HopChain problem with k ≥ 1 hops: a uniformly
// random cyclic permutation of the 12 symbols (Sattolo's algorithm) and a
// uniform start symbol. It panics if k < 1 or trace is not a known style.
func GenerateHopChain(r *rand.Rand, k int, trace Trace) Problem {
	if k < 1 {
		panic(fmt.Sprintf("reasoning: HopChain needs k ≥ 1, got %d", k))
	}
	var next [NumSymbols]int
	for i := range next {
		next[i] = i
	}
	for i := NumSymbols - 1; i > 0; i-- {
		j := r.IntN(i) // j < i: Sattolo, a single cycle
		next[i], next[j] = next[j], next[i]
	}
	x := r.IntN(NumSymbols)
	prompt := make([]int32, 0, HopChain.PromptLen(k))
	prompt = append(prompt, BOS)
	for i, y := range next {
		prompt = append(prompt, Symbol(i), Symbol(y), Sep)
	}
	prompt = append(prompt, Start, Symbol(x), Hops)
	prompt = appendNumber(prompt, k)
	prompt = append(prompt, Query)
	values := make([]int32, k)
	for j := range k {
		x = next[x]
		values[j] = Symbol(x)
	}
	return newProblem(HopChain, trace, prompt, values)
}

// newProblem builds the target for values in the given trace style.
func newProblem(task Task, trace Trace, prompt, values []int32) Problem {
	answer := values[len(values)-1]
	think := traceTokens(values, trace)
	target := make([]int32, 0, len(think)+3)
	target = append(append(target, think...), Delim, answer, EOS)
	return Problem{
		Task: task, Trace: trace, K: len(values),
		Prompt: prompt, Target: target, Answer: answer, Values: values,
	}
}

// traceTokens returns the think span of values in style trace.
func traceTokens(values []int32, trace Trace) []int32 {
	switch trace {
	case TraceFull:
		return append([]int32(nil), values...)
	case TraceSkip:
		return skipValues(values)
	case TraceDirect:
		return nil
	}
	panic(fmt.Sprintf("reasoning: unknown trace style %d", uint8(trace)))
}

// skipValues returns v_j for j ≡ K (mod 2), 1-based: every second value,
// ending with the last one.
func skipValues(values []int32) []int32 {
	k := len(values)
	if k == 0 { // a GSM8K problem
		return nil
	}
	out := make([]int32, 0, (k+1)/2)
	for j := (k - 1) % 2; j < k; j += 2 {
		out = append(out, values[j])
	}
	return out
}
