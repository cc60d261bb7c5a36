package tokfsm

import (
	"fmt"
	"math"
	"slices"
)

// NextStateProbs returns, for a prefix that ends at a state boundary, the
// probability that probs (a model's next-token distribution, or
// NextTokenProbs) gives each state of being spelled next, by the chain rule
// over its digits: P(t) = P(d1(t) | prefix) · P(d2(t) | prefix, d1(t)) · … .
// probs is called once per distinct proper digit prefix of the states (for
// the paper's setting: 1 + 10 calls) and must return at least Base entries,
// indexed by token id; they are used as given, not renormalised over digits.
func (f *FSM) NextStateProbs(prefix []int32, probs func(prefix []int32) []float64) ([]float64, error) {
	out := make([]float64, f.cfg.States)
	start := slices.Clip(slices.Clone(prefix))
	var walk func(lo, hi, r int, pr float64, buf []int32) error
	// walk fills out for states lo..hi-1, which share their first r digits
	// (the tail of buf) and jointly have probability pr.
	walk = func(lo, hi, r int, pr float64, buf []int32) error {
		if r == f.digits {
			out[lo] = pr // one state left
			return nil
		}
		p := probs(slices.Clone(buf))
		if len(p) < f.cfg.Base {
			return fmt.Errorf("tokfsm: next-state probs: probs returned %d values, need at least Base = %d", len(p), f.cfg.Base)
		}
		for s := lo; s < hi; {
			dig := f.code[s*f.digits+r]
			e := s + 1
			for e < hi && f.code[e*f.digits+r] == dig {
				e++
			}
			v := p[dig]
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("tokfsm: next-state probs: probs gave digit %d probability %v", dig, v)
			}
			if err := walk(s, e, r+1, pr*v, append(buf, dig)); err != nil {
				return err
			}
			s = e
		}
		return nil
	}
	if err := walk(0, f.cfg.States, 0, 1, start); err != nil {
		return nil, err
	}
	return out, nil
}

// FirstTransitionAccuracy is the reference's first_transition_accuracy: for
// every state s it scores the states probs predicts after BOS and the digits
// of s (NextStateProbs), takes the top k = out-degree(s) (Edges) of them and
// counts the share that are true successors, then averages over states
// (states without successors, only in a Reversed machine, are skipped).
// Exact ties at the k-th place share the remaining places evenly, so the
// score is the expectation over a random tie-break: a uniform probs scores
// exactly Edges/States, and NextTokenProbs scores exactly 1.
func (f *FSM) FirstTransitionAccuracy(probs func(prefix []int32) []float64) (float64, error) {
	total, counted := 0.0, 0
	prefix := make([]int32, 0, 1+f.digits)
	for s, succ := range f.succ {
		if len(succ) == 0 {
			continue
		}
		prefix = append(append(prefix[:0], f.BOS()), f.digitsOf(s)...)
		ps, err := f.NextStateProbs(prefix, probs)
		if err != nil {
			return 0, fmt.Errorf("%w (after state %d)", err, s)
		}
		total += topOverlap(ps, succ) / float64(len(succ))
		counted++
	}
	if counted == 0 {
		return 0, nil
	}
	return total / float64(counted), nil
}

// topOverlap returns how many of the len(want) highest-scoring indices of ps
// are in want, ties at the cut-off credited fractionally.
func topOverlap(ps []float64, want []int) float64 {
	k := len(want)
	sorted := slices.Clone(ps)
	slices.Sort(sorted)
	cut := sorted[len(sorted)-k] // the k-th largest score
	above, tied := 0, 0
	for _, v := range ps {
		if v > cut {
			above++
		} else if v == cut {
			tied++
		}
	}
	share := float64(k-above) / float64(tied) // places left for each tied index
	hits := 0.0
	for _, t := range want {
		if ps[t] > cut {
			hits++
		} else if ps[t] == cut {
			hits += share
		}
	}
	return hits
}
