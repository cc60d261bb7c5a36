package tokfsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Sample draws one sequence of Config.SeqLen tokens as in the reference
// implementation: a uniform start state, a random walk, every state written
// as its digits, BOS prepended and the whole cut to SeqLen tokens (for the
// paper's setting, BOS and 127 digits: the 64th state loses its last digit).
// If the walk reaches a state without successors (only a Reversed machine has
// them) the rest of the sequence is PAD.
func (f *FSM) Sample(rng *rand.Rand) []int32 {
	n := f.cfg.SeqLen
	out := make([]int32, 0, n+f.digits)
	out = append(out, f.BOS())
	s := rng.IntN(f.cfg.States)
	for len(out) < n {
		out = append(out, f.digitsOf(s)...)
		next := f.succ[s]
		if len(next) == 0 {
			for len(out) < n {
				out = append(out, f.BOS())
			}
			break
		}
		s = next[rng.IntN(len(next))]
	}
	return out[:n]
}

// Batch returns training batch number step for seed: batch sequences as
// next-token pairs, x = sequence[:SeqLen-1] and y = sequence[1:], each
// flattened row-major to batch×(SeqLen-1) values. It is a pure function of
// (seed, step): row i depends only on (seed, step, i), so it is the same
// whatever the batch size, and different steps are independent streams.
func (f *FSM) Batch(seed uint64, step, batch int) (x, y []int64) {
	return f.pairs(mix(seed^trainStream), uint64(step), batch)
}

// EvalSet returns n held-out sequences in the layout of Batch, drawn from a
// stream of seed separate from every training batch of the same seed. With
// 100·10^63 possible paper-setting sequences, overlap with training data is
// negligible, as in the reference (which also drew its eval set fresh).
func (f *FSM) EvalSet(seed uint64, n int) (x, y []int64) {
	return f.pairs(mix(seed^evalStream), 0, n)
}

// pairs draws rows 0..n-1 of the stream (key, step) and shifts them into
// inputs and targets.
func (f *FSM) pairs(key, step uint64, n int) (x, y []int64) {
	if n <= 0 {
		return nil, nil
	}
	w := f.cfg.SeqLen - 1
	x = make([]int64, n*w)
	y = make([]int64, n*w)
	for i := range n {
		seq := f.Sample(rowRNG(key, step, uint64(i)))
		for j := range w {
			x[i*w+j] = int64(seq[j])
			y[i*w+j] = int64(seq[j+1])
		}
	}
	return x, y
}

// rowRNG returns the generator of row row of step step in stream key.
func rowRNG(key, step, row uint64) *rand.Rand {
	return rand.New(rand.NewPCG(key, mix(mix(step)^row)))
}

// mix is the splitmix64 finaliser: a bijection that scatters nearby seeds.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// RandomPrefix returns the digit tokens (without BOS) of a random valid path
// of nStates states that ends in state end, drawn by walking the edges
// backwards from end, each step uniform over the predecessors, as the
// reference tutorial does on the reversed machine. If the backward walk
// reaches a state without predecessors the path starts there and is shorter.
// It returns nil for nStates < 1 and panics if end is not a state.
//
// The intervention experiment uses it to put a state at a random position:
// BOS + RandomPrefix(rng, n, s) ends with the digits of s.
func (f *FSM) RandomPrefix(rng *rand.Rand, nStates, end int) []int32 {
	if end < 0 || end >= f.cfg.States {
		panic(fmt.Sprintf("tokfsm: RandomPrefix: end state %d out of range [0, %d)", end, f.cfg.States))
	}
	if nStates < 1 {
		return nil
	}
	path := []int{end}
	for len(path) < nStates {
		ps := f.pred[path[len(path)-1]]
		if len(ps) == 0 {
			break
		}
		path = append(path, ps[rng.IntN(len(ps))])
	}
	slices.Reverse(path)
	return f.Encode(path...)
}
