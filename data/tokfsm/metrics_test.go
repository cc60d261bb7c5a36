package tokfsm

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	h := handFSM(t) // base 3, two digits, states 0..4, BOS = 3
	tests := []struct {
		name   string
		tokens []int32
		want   []int
	}{
		{"empty", nil, []int{}},
		{"bos only", []int32{3}, []int{}},
		{"states", []int32{3, 0, 1, 1, 0, 0, 2}, []int{1, 3, 2}},
		{"trailing partial", []int32{3, 0, 1, 1}, []int{1}},
		{"no bos", []int32{1, 1, 0, 0}, []int{4, 0}},
		{"out of range", []int32{3, 1, 2, 0, 0}, []int{Invalid, 0}},
		{"not a digit", []int32{3, 0, 7, 0, -1, 0, 2}, []int{Invalid, Invalid, 2}},
		{"bos dropped anywhere", []int32{3, 0, 3, 1, 1, 3, 0}, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, h.Parse(tt.tokens))
		})
	}
}

func TestTransitionAccuracy(t *testing.T) {
	h := handFSM(t) // edges 0→{1,3} 1→{0,1} 2→{0,3} 3→{0,2} 4→{2,3}
	seq := func(states ...int) []int32 { return append([]int32{3}, h.Encode(states...)...) }
	tests := []struct {
		name          string
		seqs          [][]int32
		acc, firstAcc float64
	}{
		{"none", nil, 0, 0},
		{"valid", [][]int32{seq(0, 1, 1, 0), seq(4, 2, 3)}, 1, 1},
		{"one bad pair", [][]int32{seq(0, 1, 2, 0)}, 2.0 / 3, 1},
		{"bad first pair", [][]int32{seq(0, 2, 0), seq(1, 0)}, 2.0 / 3, 0.5},
		{"invalid chunk", [][]int32{{3, 0, 1, 2, 2, 0, 0}}, 0, 0},
		{"too short", [][]int32{seq(0), seq(3, 0, 1)}, 1, 0.5},
		{"partial state ignored", [][]int32{append(seq(0, 3), 2)}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc, first := h.TransitionAccuracy(tt.seqs)
			require.InDelta(t, tt.acc, acc, 1e-15)
			require.InDelta(t, tt.firstAcc, first, 1e-15)
		})
	}
}

func TestNextTokenProbs(t *testing.T) {
	h := handFSM(t) // 0="00" 1="01" 2="02" 3="10" 4="11"; edges 0→{1,3} 1→{0,1} 2→{0,3} 3→{0,2} 4→{2,3}
	third := 1.0 / 3
	uniform := []float64{third, third, third, 0}
	tests := []struct {
		name   string
		prefix []int32
		want   []float64 // digits 0, 1, 2, then BOS
	}{
		{"bos: first digits of all states", []int32{3}, []float64{0.6, 0.4, 0, 0}},
		{"empty prefix as bos", nil, []float64{0.6, 0.4, 0, 0}},
		{"first state, digit 0", []int32{3, 0}, []float64{third, third, third, 0}},
		{"first state, digit 1", []int32{3, 1}, []float64{0.5, 0.5, 0, 0}},
		{"after state 0", []int32{3, 0, 0}, []float64{0.5, 0.5, 0, 0}},
		{"after state 0 and 0", []int32{3, 0, 0, 0}, []float64{0, 1, 0, 0}},
		{"after state 0 and 1", []int32{3, 0, 0, 1}, []float64{1, 0, 0, 0}},
		{"after state 1", []int32{3, 0, 1}, []float64{1, 0, 0, 0}},
		{"after state 1 and 0", []int32{3, 0, 1, 0}, []float64{0.5, 0.5, 0, 0}},
		{"missing bos", []int32{0, 0, 0}, []float64{0, 1, 0, 0}},
		{"only the last state counts", []int32{3, 1, 1, 0, 0}, []float64{0.5, 0.5, 0, 0}},
		{"no state starts with 2", []int32{3, 2}, uniform},
		{"last chunk not a state", []int32{3, 1, 2}, uniform},
		{"digit fits no successor", []int32{3, 0, 0, 2}, uniform},
		{"stray bos", []int32{3, 0, 3}, uniform},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.NextTokenProbs(tt.prefix)
			require.InDeltaSlice(t, tt.want, got, 1e-15)
		})
	}

	// In the reversed machine state 4 is a dead end: PAD follows for good.
	r := h.Reversed()
	require.Equal(t, []float64{0, 0, 0, 1}, r.NextTokenProbs([]int32{3, 1, 1}))
	require.Equal(t, []float64{0, 0, 0, 1}, r.NextTokenProbs([]int32{3, 0, 2, 1, 1, 3, 3}))
	require.InDeltaSlice(t, uniform, r.NextTokenProbs([]int32{3, 1, 1, 0}), 1e-15)
	require.InDeltaSlice(t, uniform, r.NextTokenProbs([]int32{3, 1, 0, 3}), 1e-15)
	require.InDeltaSlice(t, uniform, r.NextTokenProbs([]int32{3, 1, 1, 3, 0}), 1e-15)
}

// enumerate returns the exact cross-entropy and argmax accuracy per predicted
// token by listing every walk with its probability and scoring each sampled
// token against NextTokenProbs (argmax ties go to the lowest token id).
func enumerate(f *FSM) (ce, acc float64) {
	n, d := f.cfg.SeqLen, f.digits
	var walk func(path []int, w float64)
	walk = func(path []int, w float64) {
		last := path[len(path)-1]
		if len(path)*d < n-1 && len(f.succ[last]) > 0 {
			for _, u := range f.succ[last] {
				walk(append(path, u), w/float64(len(f.succ[last])))
			}
			return
		}
		seq := append([]int32{f.BOS()}, f.Encode(path...)...)
		for len(seq) < n {
			seq = append(seq, f.BOS())
		}
		for i := 1; i < n; i++ {
			p := f.NextTokenProbs(seq[:i])
			ce -= w * math.Log(p[seq[i]])
			if slices.Index(p, slices.Max(p)) == int(seq[i]) {
				acc += w
			}
		}
	}
	for s := range f.cfg.States {
		walk([]int{s}, 1/float64(f.cfg.States))
	}
	return ce / float64(n-1), acc / float64(n-1)
}

func TestBayesExactMatchesEnumeration(t *testing.T) {
	h := handFSM(t)
	seqLen8 := h.cfg
	seqLen8.SeqLen = 8 // cuts the last state after its first digit
	f, err := New(Config{States: 12, Edges: 3, Base: 4, SeqLen: 7, Seed: 3})
	require.NoError(t, err)
	tests := []struct {
		name string
		fsm  *FSM
	}{
		{"hand", h},
		{"hand, cut state", newFSM(seqLen8, h.succ)},
		{"hand reversed, dead end", h.Reversed()},
		{"random", f},
		{"random reversed", f.Reversed()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce, acc := tt.fsm.BayesExact()
			wantCE, wantAcc := enumerate(tt.fsm)
			require.InDelta(t, wantCE, ce, 1e-12)
			require.InDelta(t, wantAcc, acc, 1e-12)
		})
	}
}

func TestBayesHandValues(t *testing.T) {
	// Hand machine, 8 predicted digits = 4 states. Scoring sampled tokens,
	// the first state costs −ln P(state) = ln 5 over its two digits and each
	// later one ln 2, whatever the path.
	h := handFSM(t)
	ce, _ := h.BayesExact()
	require.InDelta(t, (math.Log(5)+3*math.Log(2))/8, ce, 1e-12)
}

func TestBayesPaper(t *testing.T) {
	// The brief's Monte-Carlo targets over graphs of the paper's family:
	// CE ≈ 1.1746 nats (1.1742–1.1749 over 6 graphs), accuracy ≈ 45.8%
	// (45.2–46.4%).
	f, err := New(PaperConfig)
	require.NoError(t, err)
	ce, acc := f.BayesExact()
	require.InDelta(t, 1.17460, ce, 5e-5)
	require.InDelta(t, 0.46000, acc, 5e-5)

	// Monte Carlo agrees with the exact value within its error (standard
	// errors for 2,000 sequences: ≈ 4e-5 nats, ≈ 3e-4 accuracy).
	mce, macc := f.BayesLoss(2000, 1)
	require.InDelta(t, ce, mce, 2e-4)
	require.InDelta(t, acc, macc, 1.5e-3)
	require.True(t, math.IsNaN(first(f.BayesLoss(0, 1))))

	// Averaged over graphs of the family the exact values match the brief.
	graphs := 20
	if testing.Short() {
		graphs = 5
	}
	var sumCE, sumAcc float64
	for seed := range graphs {
		cfg := PaperConfig
		cfg.Seed = uint64(1000 + seed)
		g, err := New(cfg)
		require.NoError(t, err)
		c, a := g.BayesExact()
		require.InDelta(t, 1.1746, c, 6e-4)
		require.InDelta(t, 0.458, a, 1.2e-2)
		sumCE += c
		sumAcc += a
	}
	require.InDelta(t, 1.1746, sumCE/float64(graphs), 2e-4)
	require.InDelta(t, 0.458, sumAcc/float64(graphs), 4e-3)
}

func first(a, _ float64) float64 { return a }

func TestBayesSmall(t *testing.T) {
	f, err := New(SmallConfig)
	require.NoError(t, err)
	ce, acc := f.BayesExact()
	require.InDelta(t, 0.7341, ce, 5e-5, "the number in SmallConfig's doc")
	require.InDelta(t, 0.5981, acc, 5e-5, "the number in SmallConfig's doc")
	require.Len(t, f.Trigrams(), 113, "the number in SmallConfig's doc")
	mce, macc := f.BayesLoss(2000, 2)
	require.InDelta(t, ce, mce, 1e-3)
	require.InDelta(t, acc, macc, 3e-3)
}

func TestNextStateProbs(t *testing.T) {
	f, _ := New(PaperConfig)
	calls := 0
	probs := func(prefix []int32) []float64 {
		calls++
		return f.NextTokenProbs(prefix)
	}
	prefix := append([]int32{f.BOS()}, f.Encode(37)...)
	ps, err := f.NextStateProbs(prefix, probs)
	require.NoError(t, err)
	require.Equal(t, 11, calls, "BOS+state, then one call per first digit")
	require.Len(t, ps, 100)
	sum := 0.0
	for s, p := range ps {
		sum += p
		if f.HasEdge(37, s) {
			require.InDelta(t, 0.1, p, 1e-15)
		} else {
			require.Zero(t, p)
		}
	}
	require.InDelta(t, 1, sum, 1e-12)
	require.Equal(t, []int32{f.BOS(), 3, 7}, prefix, "prefix untouched")

	_, err = f.NextStateProbs(prefix, func([]int32) []float64 { return make([]float64, 9) })
	require.ErrorContains(t, err, "returned 9 values")
	_, err = f.NextStateProbs(prefix, func([]int32) []float64 { return []float64{math.NaN(), 0, 0, 0, 0, 0, 0, 0, 0, 0} })
	require.ErrorContains(t, err, "probability NaN")
}

func TestFirstTransitionAccuracy(t *testing.T) {
	uniform := func(prefix []int32) []float64 {
		p := make([]float64, 11)
		for i := range p {
			p[i] = 1.0 / 11
		}
		return p
	}
	fixed := func(prefix []int32) []float64 { return []float64{0.5, 0.3, 0.2, 0} }
	h := handFSM(t)
	f, _ := New(PaperConfig)
	small, _ := New(SmallConfig)
	tests := []struct {
		name  string
		fsm   *FSM
		probs func([]int32) []float64
		want  float64
	}{
		{"paper, truth", f, f.NextTokenProbs, 1},
		{"small, truth", small, small.NextTokenProbs, 1},
		{"hand, truth", h, h.NextTokenProbs, 1},
		{"paper, uniform", f, uniform, 0.1},
		{"small, uniform", small, uniform, 0.1},
		{"hand, uniform", h, uniform, 0.4},
		// Next-state scores 00:.25 01:.15 02:.10 10:.15 11:.09: state 0
		// first, 1 and 3 tied for the second place (half credit each).
		// Per state: 0→{1,3} .5, 1→{0,1} .75, 2→{0,3} .75, 3→{0,2} .5,
		// 4→{2,3} .25.
		{"hand, fixed digits", h, fixed, 0.55},
		// The reversed machine skips dead-end state 4 and scores top-k
		// with k = in-degree of the original.
		{"hand reversed, truth", h.Reversed(), h.Reversed().NextTokenProbs, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fsm.FirstTransitionAccuracy(tt.probs)
			require.NoError(t, err)
			require.InDelta(t, tt.want, got, 1e-12)
		})
	}
	_, err := h.FirstTransitionAccuracy(func([]int32) []float64 { return []float64{1} })
	require.ErrorContains(t, err, "after state 0")
}

func TestTopOverlap(t *testing.T) {
	tests := []struct {
		name string
		ps   []float64
		want []int
		hits float64
	}{
		{"clear top", []float64{0.1, 0.5, 0.4, 0}, []int{1, 2}, 2},
		{"half right", []float64{0.1, 0.5, 0.4, 0}, []int{0, 1}, 1},
		{"tie for last place", []float64{0.3, 0.2, 0.2, 0.2}, []int{0, 1}, 1 + 1.0/3},
		{"all tied", []float64{0, 0, 0, 0}, []int{2, 3}, 1},
		{"all", []float64{0.3, 0.7}, []int{0, 1}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.hits, topOverlap(tt.ps, tt.want), 1e-15)
		})
	}
}
