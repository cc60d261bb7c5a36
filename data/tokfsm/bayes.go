package tokfsm

import (
	"math"
	"slices"
)

// NextTokenProbs returns the true distribution of the token that follows
// prefix (a vector of Vocab probabilities): the Bayes posterior of a reader
// who knows the machine. prefix starts with BOS (a missing BOS is tolerated);
// the first state is uniform over all states.
//
// Since digits identify states, the posterior depends only on the last
// complete state c and the digits d written since: the next state is uniform
// over the successors of c (over all states before the first one is
// complete) that begin with d, and the result is the distribution of their
// next digit. After a state without successors (only in a Reversed machine)
// the next token is PAD with probability 1, as in Sample.
//
// For a prefix the machine cannot produce — a last complete chunk that is
// not a state, digits that fit no successor, or a stray BOS — there is no
// posterior; the result is then uniform over the Base digits.
func (f *FSM) NextTokenProbs(prefix []int32) []float64 {
	p := make([]float64, f.Vocab())
	f.nextTokenProbs(prefix, p)
	return p
}

// nextTokenProbs writes NextTokenProbs(prefix) into p (len Vocab).
func (f *FSM) nextTokenProbs(prefix []int32, p []float64) {
	clear(p)
	bos := f.BOS()
	toks := prefix
	if len(toks) > 0 && toks[0] == bos {
		toks = toks[1:]
	}
	d := f.digits
	if i := slices.Index(toks, bos); i >= 0 {
		if f.padAfterDeadEnd(toks, i) {
			p[bos] = 1
		} else {
			f.uniformDigits(p)
		}
		return
	}
	m, r := len(toks)/d, len(toks)%d
	partial := toks[m*d:]
	total := 0
	add := func(t int) {
		code := f.digitsOf(t)
		if slices.Equal(code[:r], partial) {
			p[code[r]]++
			total++
		}
	}
	if m == 0 {
		for t := range f.cfg.States {
			add(t)
		}
	} else {
		c := f.stateOf(toks[(m-1)*d : m*d])
		if c == Invalid {
			f.uniformDigits(p)
			return
		}
		if len(f.succ[c]) == 0 && r == 0 {
			p[bos] = 1
			return
		}
		for _, t := range f.succ[c] {
			add(t)
		}
	}
	if total == 0 {
		f.uniformDigits(p)
		return
	}
	for i := range p {
		p[i] /= float64(total)
	}
}

// padAfterDeadEnd reports whether toks (BOS stripped) is a state without
// successors followed only by PAD from index i on.
func (f *FSM) padAfterDeadEnd(toks []int32, i int) bool {
	d := f.digits
	if i < d || i%d != 0 {
		return false
	}
	for _, t := range toks[i:] {
		if t != f.BOS() {
			return false
		}
	}
	c := f.stateOf(toks[i-d : i])
	return c != Invalid && len(f.succ[c]) == 0
}

// uniformDigits sets p to the uniform distribution over the digits.
func (f *FSM) uniformDigits(p []float64) {
	clear(p)
	for i := range f.cfg.Base {
		p[i] = 1 / float64(f.cfg.Base)
	}
}

// BayesLoss estimates by Monte Carlo the cross-entropy (nats) and the
// next-token accuracy per predicted token of the Bayes-optimal predictor
// NextTokenProbs, over the SeqLen-1 predicted tokens of nSeqs sequences drawn
// with seed (a stream of its own). ce scores the sampled token, −log p(token);
// acc takes the largest posterior probability, the chance that the argmax is
// right, so ties need no tie-break. It returns NaN, NaN for nSeqs < 1.
// BayesExact computes the same expectations exactly.
func (f *FSM) BayesLoss(nSeqs int, seed uint64) (ce, acc float64) {
	if nSeqs < 1 {
		return math.NaN(), math.NaN()
	}
	key := mix(seed ^ bayesStream)
	p := make([]float64, f.Vocab())
	n := f.cfg.SeqLen
	for i := range nSeqs {
		seq := f.Sample(rowRNG(key, 0, uint64(i)))
		for t := 1; t < n; t++ {
			f.nextTokenProbs(seq[:t], p)
			ce -= math.Log(p[seq[t]])
			acc += slices.Max(p)
		}
	}
	count := float64(nSeqs * (n - 1))
	return ce / count, acc / count
}

// BayesExact returns the exact cross-entropy (nats) and next-token accuracy
// per predicted token of the Bayes-optimal predictor, averaged over the
// SeqLen-1 predicted positions of a random sequence: the expectations
// BayesLoss estimates. Accuracy is the expected largest posterior
// probability (the argmax is right with that probability, whichever way ties
// are broken). It propagates the distribution of the current state through
// the walk, so it costs O(SeqLen·States·Edges).
func (f *FSM) BayesExact() (ce, acc float64) {
	n, d := f.cfg.States, f.digits
	ent := make([]float64, (n+1)*d) // per context c (index n: no context yet), per digit
	top := make([]float64, (n+1)*d)
	all := make([]int, n)
	for s := range all {
		all[s] = s
	}
	f.digitStats(all, ent[n*d:], top[n*d:])
	for c, ts := range f.succ {
		f.digitStats(ts, ent[c*d:(c+1)*d], top[c*d:(c+1)*d])
	}

	preds := f.cfg.SeqLen - 1
	pi := make([]float64, n) // distribution of the previous state, walks still alive
	next := make([]float64, n)
	dead := 0.0 // walks that ended in a state without successors: PAD is certain
	for j := 0; j*d < preds; j++ {
		for r := 0; r < d && j*d+r < preds; r++ {
			if j == 0 {
				ce += ent[n*d+r]
				acc += top[n*d+r]
				continue
			}
			acc += dead
			for c, w := range pi {
				switch {
				case w == 0:
				case len(f.succ[c]) == 0:
					acc += w
				default:
					ce += w * ent[c*d+r]
					acc += w * top[c*d+r]
				}
			}
		}
		// Advance pi to the distribution of state j.
		if j == 0 {
			for s := range pi {
				pi[s] = 1 / float64(n)
			}
			continue
		}
		clear(next)
		for c, w := range pi {
			ts := f.succ[c]
			if w == 0 {
				continue
			}
			if len(ts) == 0 {
				dead += w
				continue
			}
			for _, t := range ts {
				next[t] += w / float64(len(ts))
			}
		}
		pi, next = next, pi
	}
	return ce / float64(preds), acc / float64(preds)
}

// digitStats writes, for each digit position r, the expected entropy (nats)
// and expected largest probability of digit r of a state drawn uniformly
// from cands (sorted, non-empty), given the state's first r digits. States
// sharing their first r digits, and within them equal r-th digits, are
// contiguous runs of a sorted list.
func (f *FSM) digitStats(cands []int, ent, top []float64) {
	if len(cands) == 0 {
		return
	}
	d := f.digits
	n := float64(len(cands))
	digit := func(s, r int) int32 { return f.code[s*d+r] }
	for r := range d {
		h, t := 0.0, 0.0
		for i := 0; i < len(cands); {
			j := i + 1
			for j < len(cands) && slices.Equal(f.digitsOf(cands[j])[:r], f.digitsOf(cands[i])[:r]) {
				j++
			}
			size := float64(j - i)
			longest := 0
			for k := i; k < j; {
				l := k + 1
				for l < j && digit(cands[l], r) == digit(cands[k], r) {
					l++
				}
				run := float64(l - k)
				h -= run / n * math.Log(run/size)
				longest = max(longest, l-k)
				k = l
			}
			t += float64(longest) / n
			i = j
		}
		ent[r], top[r] = h, t
	}
}
