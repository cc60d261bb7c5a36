package tokfsm

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// handFSM is a 5-state machine small enough to reason about by hand. With
// base 3 every state has two digits: 0="00" 1="01" 2="02" 3="10" 4="11".
// No edge enters state 4, so the reversed machine has a dead end there.
func handFSM(t *testing.T) *FSM {
	t.Helper()
	cfg := Config{States: 5, Edges: 2, Base: 3, SeqLen: 9, Seed: 0}
	require.NoError(t, cfg.Validate())
	return newFSM(cfg, [][]int{
		0: {1, 3},
		1: {0, 1},
		2: {0, 3},
		3: {0, 2},
		4: {2, 3},
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string // empty: valid
	}{
		{"paper", PaperConfig, ""},
		{"small", SmallConfig, ""},
		{"all edges", Config{States: 3, Edges: 3, Base: 2, SeqLen: 3}, ""},
		{"one state", Config{States: 1, Edges: 1, Base: 10, SeqLen: 8}, "States = 1"},
		{"no edges", Config{States: 10, Edges: 0, Base: 10, SeqLen: 8}, "Edges = 0"},
		{"too many edges", Config{States: 10, Edges: 11, Base: 10, SeqLen: 8}, "Edges = 11"},
		{"unary", Config{States: 10, Edges: 2, Base: 1, SeqLen: 8}, "Base = 1"},
		{"short", Config{States: 10, Edges: 2, Base: 10, SeqLen: 2}, "SeqLen = 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := New(tt.cfg)
			if tt.err == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				return
			}
			require.ErrorContains(t, err, tt.err)
			require.ErrorContains(t, newErr, tt.err)
		})
	}
}

func TestDigits(t *testing.T) {
	tests := []struct{ states, base, want int }{
		{2, 2, 1}, {3, 2, 2}, {4, 2, 2}, {5, 2, 3}, {9, 3, 2}, {10, 3, 3},
		{10, 10, 1}, {11, 10, 2}, {40, 10, 2}, {100, 10, 2}, {101, 10, 3},
	}
	for _, tt := range tests {
		f, err := New(Config{States: tt.states, Edges: 1, Base: tt.base, SeqLen: 4})
		require.NoError(t, err)
		require.Equal(t, tt.want, f.Digits(), "%d states in base %d", tt.states, tt.base)
	}
}

func TestNewGraph(t *testing.T) {
	f, err := New(PaperConfig)
	require.NoError(t, err)
	require.Equal(t, 11, f.Vocab())
	require.Equal(t, int32(10), f.BOS())
	require.Equal(t, 2, f.Digits())
	require.Equal(t, PaperConfig, f.Config())
	edges := 0
	for s := range 100 {
		succ := f.Successors(s)
		require.Len(t, succ, 10)
		for i, u := range succ {
			require.True(t, u >= 0 && u < 100)
			if i > 0 {
				require.Less(t, succ[i-1], u, "successors sorted and distinct")
			}
			require.True(t, f.HasEdge(s, u))
			require.Contains(t, f.Predecessors(u), s)
		}
		edges += len(f.Predecessors(s))
	}
	require.Equal(t, 1000, edges)
	require.False(t, f.HasEdge(-1, 0))
	require.False(t, f.HasEdge(100, 0))

	// The graph is a function of the seed.
	g, _ := New(PaperConfig)
	require.Equal(t, f.succ, g.succ)
	other := PaperConfig
	other.Seed = 43
	h, _ := New(other)
	require.NotEqual(t, f.succ, h.succ)

	// Successors returns a copy.
	f.Successors(0)[0] = -5
	require.NotEqual(t, -5, f.Successors(0)[0])
}

func TestEncode(t *testing.T) {
	f, _ := New(PaperConfig)
	require.Equal(t, []int32{0, 7, 5, 3, 9, 9}, f.Encode(7, 53, 99))
	require.Empty(t, f.Encode())
	require.Panics(t, func() { f.Encode(100) })
	h := handFSM(t)
	require.Equal(t, []int32{0, 0, 0, 2, 1, 1}, h.Encode(0, 2, 4))
}

func TestReversed(t *testing.T) {
	h := handFSM(t)
	r := h.Reversed()
	require.Equal(t, []int{1, 2, 3}, r.Successors(0))
	require.Empty(t, r.Successors(4))
	require.Equal(t, h.succ, r.Reversed().succ)
	f, _ := New(SmallConfig)
	fr := f.Reversed()
	for s := range 40 {
		for u := range 40 {
			require.Equal(t, f.HasEdge(s, u), fr.HasEdge(u, s))
		}
	}
}

func TestSample(t *testing.T) {
	for _, cfg := range []Config{PaperConfig, SmallConfig, {States: 5, Edges: 2, Base: 3, SeqLen: 8, Seed: 1}} {
		f, err := New(cfg)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(1, 2))
		for range 50 {
			seq := f.Sample(rng)
			require.Len(t, seq, cfg.SeqLen)
			require.Equal(t, f.BOS(), seq[0])
			for _, tok := range seq[1:] {
				require.True(t, tok >= 0 && int(tok) < cfg.Base, "digit token")
			}
			states := f.Parse(seq)
			require.Len(t, states, (cfg.SeqLen-1)/f.Digits())
			for i := 1; i < len(states); i++ {
				require.True(t, f.HasEdge(states[i-1], states[i]))
			}
		}
		// Same generator state, same sequence.
		a := f.Sample(rand.New(rand.NewPCG(7, 7)))
		b := f.Sample(rand.New(rand.NewPCG(7, 7)))
		require.Equal(t, a, b)
	}
}

func TestSampleDeadEnd(t *testing.T) {
	r := handFSM(t).Reversed() // state 4 has no successors
	rng := rand.New(rand.NewPCG(3, 4))
	padded := 0
	for range 200 {
		seq := r.Sample(rng)
		require.Len(t, seq, 9)
		states := r.Parse(seq)
		for i := 1; i < len(states); i++ {
			require.True(t, r.HasEdge(states[i-1], states[i]))
		}
		if len(states) < 4 {
			padded++
			require.Equal(t, 4, states[len(states)-1], "only a dead end stops a walk")
			for _, tok := range seq[1+2*len(states):] {
				require.Equal(t, r.BOS(), tok)
			}
		}
	}
	require.Positive(t, padded)
}

func TestBatch(t *testing.T) {
	f, _ := New(SmallConfig)
	w := SmallConfig.SeqLen - 1
	x, y := f.Batch(9, 3, 8)
	require.Len(t, x, 8*w)
	require.Len(t, y, 8*w)
	for i := range 8 {
		require.Equal(t, int64(f.BOS()), x[i*w])
		require.Equal(t, x[i*w+1:(i+1)*w], y[i*w:(i+1)*w-1], "y is x shifted by one")
	}

	// A pure function of (seed, step); rows do not depend on the batch size.
	x2, y2 := f.Batch(9, 3, 8)
	require.Equal(t, x, x2)
	require.Equal(t, y, y2)
	x4, y4 := f.Batch(9, 3, 4)
	require.Equal(t, x[:4*w], x4)
	require.Equal(t, y[:4*w], y4)

	// Other steps, seeds and the eval stream differ.
	xs, _ := f.Batch(9, 4, 8)
	require.NotEqual(t, x, xs)
	xd, _ := f.Batch(10, 3, 8)
	require.NotEqual(t, x, xd)
	xe, ye := f.EvalSet(9, 8)
	require.Len(t, ye, 8*w)
	x0, _ := f.Batch(9, 0, 8)
	require.NotEqual(t, x0, xe)
	xe2, _ := f.EvalSet(9, 8)
	require.Equal(t, xe, xe2)

	xn, yn := f.Batch(9, 0, 0)
	require.Nil(t, xn)
	require.Nil(t, yn)
}

func TestRandomPrefix(t *testing.T) {
	f, _ := New(SmallConfig)
	rng := rand.New(rand.NewPCG(5, 6))
	for end := range 40 {
		if len(f.Predecessors(end)) == 0 {
			continue
		}
		toks := f.RandomPrefix(rng, 10, end)
		states := f.Parse(toks)
		require.Equal(t, end, states[len(states)-1])
		for i := 1; i < len(states); i++ {
			require.True(t, f.HasEdge(states[i-1], states[i]))
		}
	}
	require.Equal(t, f.Encode(7), f.RandomPrefix(rng, 1, 7))
	require.Nil(t, f.RandomPrefix(rng, 0, 7))
	require.Panics(t, func() { f.RandomPrefix(rng, 3, 40) })

	// In the hand machine nothing enters 4, so a path ending there is one
	// state long; a path ending in 2 has 4 as its only alternative start.
	h := handFSM(t)
	require.Equal(t, h.Encode(4), h.RandomPrefix(rng, 5, 4))
	for range 20 {
		states := h.Parse(h.RandomPrefix(rng, 6, 2))
		require.Equal(t, 2, states[len(states)-1])
		require.True(t, len(states) == 6 || states[0] == 4)
	}
}

func TestProbes(t *testing.T) {
	h := handFSM(t)
	bi := h.Bigrams()
	require.Len(t, bi, 5)
	require.Equal(t, Probe{Tokens: []int32{3, 1, 0}, State: 3, Digit: -1, Label: "10"}, bi[3])

	// Successors' first digits: 0→{0,1} 1→{0} 2→{0,1} 3→{0} 4→{0,1}.
	var labels []string
	for _, p := range h.Trigrams() {
		labels = append(labels, p.Label)
		require.Equal(t, h.BOS(), p.Tokens[0])
		require.Equal(t, p.State, h.stateOf(p.Tokens[1:3]))
		require.Equal(t, int32(p.Digit), p.Tokens[3])
	}
	require.Equal(t, []string{"000", "001", "010", "020", "021", "100", "110", "111"}, labels)

	f, _ := New(PaperConfig)
	want := 0
	for s := range 100 {
		seen := map[int]bool{}
		for _, u := range f.Successors(s) {
			seen[u/10] = true
		}
		want += len(seen)
	}
	require.Len(t, f.Trigrams(), want)
	require.Equal(t, "07", f.Bigrams()[7].Label)

	big, err := New(Config{States: 50, Edges: 2, Base: 40, SeqLen: 5})
	require.NoError(t, err)
	require.Equal(t, "1.9", big.Bigrams()[49].Label)
}
