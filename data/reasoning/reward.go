package reasoning

import "math"

// body returns completion up to, not including, its first EOS.
func body(completion []int32) []int32 {
	for i, id := range completion {
		if id == EOS {
			return completion[:i]
		}
	}
	return completion
}

// FormatOK reports whether completion has the HRPO answer format: cut at its
// first EOS (or its end), it contains exactly one Delim, and exactly one
// token follows that Delim. Tokens after the first EOS are ignored; PAD is
// an ordinary token, not a terminator.
func FormatOK(completion []int32) bool {
	_, ok := answerToken(completion)
	return ok
}

// answerToken returns the single token after the single Delim, if the format
// holds.
func answerToken(completion []int32) (int32, bool) {
	b := body(completion)
	at, n := -1, 0
	for i, id := range b {
		if id == Delim {
			at, n = i, n+1
		}
	}
	if n != 1 || at != len(b)-2 {
		return 0, false
	}
	return b[at+1], true
}

// Reward is the binary HRPO reward (§3.2) on token ids: 1 iff [FormatOK]
// holds and the token after the Delim equals answer, else 0. This is the
// regex rule "exactly one ####, none before and none after" made exact for
// one-token answers: "#### a EOS" and a completion ending in "#### a" score,
// "#### a a", "#### a ;", "#### #### a" and "#### a ####" do not.
func Reward(completion []int32, answer int32) float64 {
	if a, ok := answerToken(completion); ok && a == answer {
		return 1
	}
	return 0
}

// Think returns the think span of completion: the tokens before its first
// Delim, or before its first EOS (or end) if it has no Delim. This matches
// HRPO's hybrid-input mask, which stays on until the first Delim.
func Think(completion []int32) []int32 {
	b := body(completion)
	for i, id := range b {
		if id == Delim {
			return b[:i]
		}
	}
	return b
}

// ThinkLength returns len(Think(completion)).
func ThinkLength(completion []int32) int { return len(Think(completion)) }

// CompletionLength returns the number of tokens up to and including the
// first EOS, or len(completion) if it has none (a truncated rollout). This
// is the span HRPO's completion mask covers.
func CompletionLength(completion []int32) int {
	if n := len(body(completion)); n < len(completion) {
		return n + 1
	}
	return len(completion)
}

// TraceFaithfulness returns the fraction of think tokens equal to the true
// intermediate value at their position (§8.5). A think span is aligned
// position by position with both reference traces of p, the full trace
// v1 … vK and the skip trace (see [TraceSkip]), and scored against the one
// that explains more tokens; tokens past the end of the reference count as
// unfaithful. So a correct full or skip trace scores 1, a skip trace is not
// penalised for omitting values (that is [SkipRate]'s job), and random
// digits score about 0.1-0.2. The result is NaN for an empty think span
// (nothing to judge); [Stats] averages over non-empty spans only.
func TraceFaithfulness(think []int32, p Problem) float64 {
	if len(think) == 0 {
		return math.NaN()
	}
	full := matches(think, p.Values)
	skip := matches(think, skipValues(p.Values))
	return float64(max(full, skip)) / float64(len(think))
}

// matches counts positions where think and ref agree.
func matches(think, ref []int32) int {
	n := 0
	for i := range min(len(think), len(ref)) {
		if think[i] == ref[i] {
			n++
		}
	}
	return n
}

// SkipRate returns the share of the K intermediate steps the think span
// leaves out, by length: max(0, K − len(think)) / K. It is 0 for a full
// trace, ⌊K/2⌋/K for a skip trace and 1 for a direct answer. Content is
// measured separately by [TraceFaithfulness].
func SkipRate(think []int32, p Problem) float64 {
	if p.K <= 0 {
		return 0
	}
	return float64(max(0, p.K-len(think))) / float64(p.K)
}

// Stats accumulates the per-completion metrics of §8.5 over a set of
// completions (one eval K, one RL step). The zero value is empty.
type Stats struct {
	N           int     // completions added
	Correct     int     // with Reward 1
	FormatValid int     // with FormatOK
	ThinkTokens int     // sum of ThinkLength
	Tokens      int     // sum of CompletionLength
	SkipSum     float64 // sum of SkipRate
	FaithSum    float64 // sum of TraceFaithfulness over non-empty think spans
	FaithN      int     // completions with a non-empty think span
}

// Add scores completion, generated for problem p, into s.
func (s *Stats) Add(completion []int32, p Problem) {
	think := Think(completion)
	s.N++
	s.Correct += int(Reward(completion, p.Answer))
	if FormatOK(completion) {
		s.FormatValid++
	}
	s.ThinkTokens += len(think)
	s.Tokens += CompletionLength(completion)
	s.SkipSum += SkipRate(think, p)
	if len(think) > 0 {
		s.FaithSum += TraceFaithfulness(think, p)
		s.FaithN++
	}
}

// Accuracy returns the mean reward (0 for an empty Stats, as are the other
// means except Faithfulness).
func (s Stats) Accuracy() float64 { return ratio(float64(s.Correct), s.N) }

// FormatRate returns the share of format-valid completions.
func (s Stats) FormatRate() float64 { return ratio(float64(s.FormatValid), s.N) }

// MeanThinkLength returns the mean think-span length.
func (s Stats) MeanThinkLength() float64 { return ratio(float64(s.ThinkTokens), s.N) }

// MeanLength returns the mean completion length up to EOS.
func (s Stats) MeanLength() float64 { return ratio(float64(s.Tokens), s.N) }

// MeanSkipRate returns the mean skip rate.
func (s Stats) MeanSkipRate() float64 { return ratio(s.SkipSum, s.N) }

// Faithfulness returns the mean trace faithfulness over completions with a
// non-empty think span, NaN if there are none.
func (s Stats) Faithfulness() float64 {
	if s.FaithN == 0 {
		return math.NaN()
	}
	return s.FaithSum / float64(s.FaithN)
}

// ratio returns x/n, 0 for n = 0.
func ratio(x float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return x / float64(n)
}
