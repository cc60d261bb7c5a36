package reasoning

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSFTBatchLayout(t *testing.T) {
	const B, T = 64, 56
	b, err := SFTBatch(3, 17, B, T)
	require.NoError(t, err)
	require.Equal(t, B, b.B)
	require.Equal(t, T, b.T)
	require.Len(t, b.Tokens, B*T)
	require.Len(t, b.LossMask, B*T)
	require.Len(t, b.Inputs, B*(T-1))
	require.Len(t, b.Targets, B*(T-1))
	require.Len(t, b.TargetMask, B*(T-1))
	for i, p := range b.Problems {
		tok := b.Tokens[i*T : (i+1)*T]
		mask := b.LossMask[i*T : (i+1)*T]
		seq := p.Sequence()
		require.Equal(t, len(p.Prompt), b.PromptLen[i])
		require.Equal(t, len(seq), b.SeqLen[i])
		for t0 := range T {
			want, wantMask := int64(PAD), float32(0)
			if t0 < len(seq) {
				want = int64(seq[t0])
			}
			if t0 >= len(p.Prompt) && t0 < len(seq) {
				wantMask = 1
			}
			require.Equal(t, want, tok[t0], "row %d pos %d", i, t0)
			require.Equal(t, wantMask, mask[t0], "row %d pos %d", i, t0)
		}
		// The masked tokens are exactly the target: think, ####, answer, EOS.
		var masked []int32
		for t0, m := range mask {
			if m == 1 {
				masked = append(masked, int32(tok[t0]))
			}
		}
		require.Equal(t, p.Target, masked)
		require.Equal(t, int64(EOS), tok[b.SeqLen[i]-1])

		// Shifted view: input t predicts target t = token t+1.
		in := b.Inputs[i*(T-1) : (i+1)*(T-1)]
		tgt := b.Targets[i*(T-1) : (i+1)*(T-1)]
		tm := b.TargetMask[i*(T-1) : (i+1)*(T-1)]
		require.Equal(t, tok[:T-1], in)
		labelled := 0
		for t0 := range T - 1 {
			if t0+1 >= len(p.Prompt) && t0+1 < len(seq) {
				require.Equal(t, tok[t0+1], tgt[t0])
				require.Equal(t, float32(1), tm[t0])
				labelled++
			} else {
				require.Equal(t, int64(IgnoreIndex), tgt[t0])
				require.Equal(t, float32(0), tm[t0])
			}
		}
		require.Equal(t, len(p.Target), labelled)
		// The first labelled input is the prompt's "?"; the last predicts EOS.
		require.Equal(t, int64(Query), in[len(p.Prompt)-1])
		require.Equal(t, float32(1), faithfulnessOr1(p))
	}
}

// faithfulnessOr1 scores a noise-free training target: 1 for every
// style (direct targets have no think span to judge).
func faithfulnessOr1(p Problem) float32 {
	if len(p.Think()) == 0 {
		return 1
	}
	return float32(TraceFaithfulness(p.Think(), p))
}

func TestSFTBatchDeterministic(t *testing.T) {
	a, err := SFTBatch(1, 5, 32, 64)
	require.NoError(t, err)
	_, err = SFTBatch(1, 3, 32, 64) // other calls do not disturb the stream
	require.NoError(t, err)
	b, err := SFTBatch(1, 5, 32, 64)
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := SFTBatch(1, 6, 32, 64)
	require.NoError(t, err)
	require.NotEqual(t, a.Tokens, c.Tokens)
	d, err := SFTBatch(2, 5, 32, 64)
	require.NoError(t, err)
	require.NotEqual(t, a.Tokens, d.Tokens)
}

// TestSFTMixProportions checks the §8.1 mix over 10,240 rows.
func TestSFTMixProportions(t *testing.T) {
	n := 0
	traces := map[Trace]int{}
	ks := map[int]int{}
	hop := 0
	for step := range 40 {
		b, err := SFTBatch(0, step, 256, 53)
		require.NoError(t, err)
		for _, p := range b.Problems {
			n++
			traces[p.Trace]++
			ks[p.K]++
			if p.Task == HopChain {
				hop++
			}
			want := map[Trace]int{TraceFull: p.K, TraceSkip: (p.K + 1) / 2, TraceDirect: 0}[p.Trace]
			require.Len(t, p.Think(), want)
			require.False(t, HeldOut(p.Prompt))
		}
	}
	frac := func(c int) float64 { return float64(c) / float64(n) }
	// σ ≤ 0.005 for every share below; tolerance 0.02 is 4σ.
	require.InDelta(t, 0.6, frac(traces[TraceFull]), 0.02)
	require.InDelta(t, 0.2, frac(traces[TraceSkip]), 0.02)
	require.InDelta(t, 0.2, frac(traces[TraceDirect]), 0.02)
	require.InDelta(t, 0.25, frac(hop), 0.02)
	require.Len(t, ks, 7)
	for k := 2; k <= 8; k++ {
		require.InDelta(t, 1.0/7, frac(ks[k]), 0.02, "K=%d", k)
	}
	t.Logf("rows %d: full %.3f skip %.3f direct %.3f hop %.3f", n,
		frac(traces[TraceFull]), frac(traces[TraceSkip]), frac(traces[TraceDirect]), frac(hop))
}

func TestSFTMixOptions(t *testing.T) {
	mod := SFTMix{K: KRange{2, 8}, Full: 1}
	require.Equal(t, 38, mod.MaxLen())
	b, err := mod.Batch(0, 0, 100, 38)
	require.NoError(t, err)
	for _, p := range b.Problems {
		require.Equal(t, ModChain, p.Task)
		require.Equal(t, TraceFull, p.Trace)
	}
	require.Equal(t, 53, DefaultSFTMix.MaxLen())

	// The noisy teacher changes about 10% of think tokens, each to another
	// token of the same kind, and never touches the answer span.
	noisy := SFTMix{K: KRange{4, 8}, Full: 1, HopShare: 0.5, TraceNoise: 0.1}
	changed, think := 0, 0
	for step := range 20 {
		b, err := noisy.Batch(0, step, 128, 56)
		require.NoError(t, err)
		for _, p := range b.Problems {
			th := p.Think()
			require.Len(t, th, p.K)
			for j, id := range th {
				think++
				if id != p.Values[j] {
					changed++
					require.Equal(t, IsDigit(p.Values[j]), IsDigit(id))
					require.Equal(t, IsSymbol(p.Values[j]), IsSymbol(id))
				}
			}
			require.Equal(t, []int32{Delim, p.Values[p.K-1], EOS}, p.Target[p.K:])
		}
	}
	require.InDelta(t, 0.1, float64(changed)/float64(think), 0.01) // σ ≈ 0.002

	bad := []struct {
		name   string
		mix    SFTMix
		step   int
		batch  int
		maxLen int
		err    string
	}{
		{"context too short", DefaultSFTMix, 0, 8, 52, "maxLen 52 too short for the SFT mix: K up to 8 needs 53"},
		{"modchain too short", mod, 0, 8, 37, "needs 38"},
		{"zero batch", DefaultSFTMix, 0, 0, 64, "bad SFT batch: step 0, batch 0"},
		{"negative step", DefaultSFTMix, -1, 8, 64, "bad SFT batch: step -1"},
		{"no weights", SFTMix{K: KRange{2, 8}}, 0, 8, 64, "bad trace weights"},
		{"negative weight", SFTMix{K: KRange{2, 8}, Full: 1, Skip: -1}, 0, 8, 64, "bad trace weights"},
		{"hop share", SFTMix{K: KRange{2, 8}, Full: 1, HopShare: 1.5}, 0, 8, 64, "HopChain share 1.5 outside [0, 1]"},
		{"noise", SFTMix{K: KRange{2, 8}, Full: 1, TraceNoise: -0.1}, 0, 8, 64, "trace noise -0.1 outside [0, 1]"},
		{"K range", SFTMix{K: KRange{0, 8}, Full: 1}, 0, 8, 64, "bad K range [0, 8]"},
	}
	for _, tc := range bad {
		_, err := tc.mix.Batch(0, tc.step, tc.batch, tc.maxLen)
		require.ErrorContains(t, err, tc.err, tc.name)
	}
}
