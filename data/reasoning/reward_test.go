package reasoning

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, s string) []int32 {
	t.Helper()
	ids, err := Vocab{}.Parse(s)
	require.NoError(t, err)
	return ids
}

// TestRewardTruthTable: answer 7 (a ModChain digit) unless stated.
func TestRewardTruthTable(t *testing.T) {
	tests := []struct {
		completion   string
		answer       string
		reward       float64
		format       bool
		think, total int
	}{
		{"3 7 #### 7 EOS", "7", 1, true, 2, 5},
		{"#### 7 EOS", "7", 1, true, 0, 3},
		{"#### 7", "7", 1, true, 0, 2},                    // truncated right after the answer
		{"#### 7 EOS PAD PAD", "7", 1, true, 0, 3},        // padding after EOS
		{"#### 7 EOS #### 3 ####", "7", 1, true, 0, 3},    // after EOS is ignored
		{"1 ; ? BOS #### 7 EOS", "7", 1, true, 4, 7},      // odd think tokens are allowed
		{"3 7 #### 6 EOS", "7", 0, true, 2, 5},            // wrong answer
		{"3 7 EOS", "7", 0, false, 2, 3},                  // no ####
		{"3 7 7", "7", 0, false, 3, 3},                    // no ####, no EOS
		{"#### #### 7 EOS", "7", 0, false, 0, 4},          // two #### before
		{"3 #### 7 #### EOS", "7", 0, false, 1, 5},        // a #### after
		{"#### 7 #### 7 EOS", "7", 0, false, 0, 5},        // two answers
		{"#### EOS", "7", 0, false, 0, 2},                 // empty answer
		{"####", "7", 0, false, 0, 1},                     // truncated at ####
		{"#### 7 7 EOS", "7", 0, false, 0, 4},             // extra token after the answer
		{"#### 7 ; EOS", "7", 0, false, 0, 4},             // extra token after the answer
		{"#### 7 PAD", "7", 0, false, 0, 3},               // PAD is not a terminator
		{"#### 1 7 EOS", "7", 0, false, 0, 4},             // answer not right after ####
		{"EOS #### 7 EOS", "7", 0, false, 0, 1},           // EOS first: empty completion
		{"", "7", 0, false, 0, 0},                         // nothing generated
		{"C F #### F EOS", "F", 1, true, 2, 5},            // HopChain
		{"C F #### 5 EOS", "F", 0, true, 2, 5},            // a digit for a symbol
		{"7 #### 7 EOS", "####", 0, true, 1, 4},           // answer token ≠ Delim
		{"2 4 6 8 0 2 4 #### 4 EOS", "4", 1, true, 7, 10}, // long think span
	}
	for _, tc := range tests {
		c := parse(t, tc.completion)
		a := parse(t, tc.answer)[0]
		require.Equal(t, tc.reward, Reward(c, a), "Reward(%q, %s)", tc.completion, tc.answer)
		require.Equal(t, tc.format, FormatOK(c), "FormatOK(%q)", tc.completion)
		require.Equal(t, tc.think, ThinkLength(c), "ThinkLength(%q)", tc.completion)
		require.Equal(t, tc.total, CompletionLength(c), "CompletionLength(%q)", tc.completion)
	}
}

func TestRewardOnGeneratedTargets(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for i := range 3000 {
		task := []Task{ModChain, HopChain}[i%2]
		p := task.Generate(r, 1+i%10, allTraces[i%3])
		require.Equal(t, float64(1), Reward(p.Target, p.Answer))
		require.True(t, FormatOK(p.Target))
		require.Equal(t, p.Think(), Think(p.Target))
		require.Equal(t, len(p.Target), CompletionLength(append(p.Target, PAD, PAD)))
		wrong := p.Answer + 1
		require.Zero(t, Reward(p.Target, wrong))
	}
}

func TestTraceFaithfulnessAndSkipRate(t *testing.T) {
	// Values 6 8 6 0 (K = 4); the skip trace is "8 0".
	p := Problem{K: 4, Values: parse(t, "6 8 6 0"), Answer: 0}
	tests := []struct {
		think string
		faith float64
		skip  float64
	}{
		{"6 8 6 0", 1, 0},           // full trace
		{"8 0", 1, 0.5},             // skip trace
		{"6 8", 1, 0.5},             // a correct prefix of the full trace
		{"6 8 6 1", 0.75, 0},        // last value wrong
		{"1 1 1 1", 0, 0},           // nothing right
		{"6 8 6 0 0 0", 4.0 / 6, 0}, // tokens past the reference are unfaithful
		{"8 6", 0.5, 0.5},           // full alignment 0/2, skip alignment 1/2
		{"A", 0, 0.75},
	}
	for _, tc := range tests {
		th := parse(t, tc.think)
		require.InDelta(t, tc.faith, TraceFaithfulness(th, p), 1e-12, tc.think)
		require.InDelta(t, tc.skip, SkipRate(th, p), 1e-12, tc.think)
	}
	require.True(t, math.IsNaN(TraceFaithfulness(nil, p)))
	require.Equal(t, float64(1), SkipRate(nil, p))

	// Odd K: skip trace v1 v3 v5.
	odd := Problem{K: 5, Values: parse(t, "A C E G I"), Answer: Symbol(8)}
	require.Equal(t, float64(1), TraceFaithfulness(parse(t, "A E I"), odd))
	require.InDelta(t, 0.4, SkipRate(parse(t, "A E I"), odd), 1e-12)

	// Every generated trace is faithful; skip rates are 0, ⌊K/2⌋/K and 1.
	r := rand.New(rand.NewPCG(2, 9))
	for i := range 600 {
		k := 1 + i%10
		for _, trace := range allTraces {
			q := []Task{ModChain, HopChain}[i%2].Generate(r, k, trace)
			want := map[Trace]float64{TraceFull: 0, TraceSkip: float64(k/2) / float64(k), TraceDirect: 1}[trace]
			require.InDelta(t, want, SkipRate(q.Think(), q), 1e-12)
			if trace != TraceDirect {
				require.Equal(t, float64(1), TraceFaithfulness(q.Think(), q))
			}
		}
	}
}

func TestStats(t *testing.T) {
	p := Problem{K: 4, Values: parse(t, "6 8 6 0"), Answer: 0}
	var s Stats
	require.Zero(t, s.Accuracy())
	require.True(t, math.IsNaN(s.Faithfulness()))
	for _, c := range []string{
		"6 8 6 0 #### 0 EOS", // correct, faithful, full
		"8 0 #### 0 EOS",     // correct, skip
		"#### 3 EOS",         // wrong, direct
		"6 8 1 1 1 1",        // no answer, truncated
	} {
		s.Add(parse(t, c), p)
	}
	require.Equal(t, 4, s.N)
	require.Equal(t, 0.5, s.Accuracy())
	require.Equal(t, 0.75, s.FormatRate())
	require.Equal(t, (4.0+2+0+6)/4, s.MeanThinkLength())
	require.Equal(t, (7.0+5+3+6)/4, s.MeanLength())
	require.InDelta(t, (0+0.5+1+0)/4, s.MeanSkipRate(), 1e-12)
	require.Equal(t, 3, s.FaithN)
	require.InDelta(t, (1+1+2.0/6)/3, s.Faithfulness(), 1e-12)
}
