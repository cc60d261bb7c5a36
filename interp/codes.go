// Package interp computes the interpretability metrics of Codebook Features
// (Tamkin et al. 2023) from activations the caller has already extracted:
// the precision and recall of codes for a feature, the best-neuron baseline,
// code purity over probe inputs, topic codes, regex features over token text
// and the Jensen–Shannon divergence of the intervention experiments.
//
// Everything here is plain Go over slices and independent of any model. The
// codes of one codebook over a run of token positions are given as ids of
// shape [positions][k]: the k code ids active at each position, None (or any
// negative id) marking an empty slot.
package interp

import (
	"cmp"
	"fmt"
	"slices"
)

// None marks an empty slot in a code-id array.
const None int32 = -1

// Defaults of the reference's regex code search (§4 of the paper): keep codes
// whose recall exceeds RegexMinRecall, rank them by precision and return at
// most RegexTopCodes of them with precision above RegexMinPrecision.
const (
	RegexMinRecall    = 0.01
	RegexMinPrecision = 0.5
	RegexTopCodes     = 5
)

// DefaultTopicFraction is the paper's threshold for topic codes: active on
// more than half of a sequence's tokens.
const DefaultTopicFraction = 0.5

// CodeStat measures how well one code picks out a feature.
type CodeStat struct {
	Code      int
	Precision float64 // Hits / Fires
	Recall    float64 // Hits / matched positions
	Fires     int     // positions where the code is active
	Hits      int     // matched positions where the code is active
}

// CodePrecisionRecall scores every code of a codebook against a feature:
// ids[i] holds the codes active at position i and matched[i] says whether
// the feature (say, a regex) holds there. A code's precision is the share of
// the positions where it fires that are matched; its recall is the share of
// matched positions where it fires. A code listed twice at one position
// counts once. It returns the codes that fire at least once, in increasing
// order (Recall is 0 when nothing is matched), and an error if the lengths
// differ or an id is numCodes or more.
func CodePrecisionRecall(ids [][]int32, matched []bool, numCodes int) ([]CodeStat, error) {
	if len(ids) != len(matched) {
		return nil, fmt.Errorf("interp: %d positions of code ids but %d match flags", len(ids), len(matched))
	}
	if numCodes < 0 {
		return nil, fmt.Errorf("interp: numCodes = %d is negative", numCodes)
	}
	fires := make([]int, numCodes)
	hits := make([]int, numCodes)
	seen := make([]int, numCodes) // 1 + the last position that counted the code
	nMatched := 0
	for i, row := range ids {
		if matched[i] {
			nMatched++
		}
		for _, c := range row {
			if c < 0 {
				continue
			}
			if int(c) >= numCodes {
				return nil, fmt.Errorf("interp: code id %d at position %d is not below numCodes = %d", c, i, numCodes)
			}
			if seen[c] == i+1 {
				continue
			}
			seen[c] = i + 1
			fires[c]++
			if matched[i] {
				hits[c]++
			}
		}
	}
	var out []CodeStat
	for c, n := range fires {
		if n == 0 {
			continue
		}
		s := CodeStat{Code: c, Fires: n, Hits: hits[c], Precision: float64(hits[c]) / float64(n)}
		if nMatched > 0 {
			s.Recall = float64(hits[c]) / float64(nMatched)
		}
		out = append(out, s)
	}
	return out, nil
}

// TopCodes is the reference's regex code search over one codebook: of the
// codes with recall above minRecall it takes the n most precise and keeps
// those with precision above minPrecision (RegexMinRecall, RegexMinPrecision
// and RegexTopCodes are the reference's values). Equal precisions rank by
// higher recall, then lower code. stats is not modified.
func TopCodes(stats []CodeStat, minRecall, minPrecision float64, n int) []CodeStat {
	var out []CodeStat
	for _, s := range stats {
		if s.Recall > minRecall {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b CodeStat) int {
		return cmp.Or(
			cmp.Compare(b.Precision, a.Precision),
			cmp.Compare(b.Recall, a.Recall),
			cmp.Compare(a.Code, b.Code),
		)
	})
	out = out[:min(max(n, 0), len(out))]
	return slices.DeleteFunc(out, func(s CodeStat) bool { return s.Precision <= minPrecision })
}

// Partition groups probe inputs by code: codes[i] holds the codes active at
// the probe position for input i, and the result maps each active code to the
// inputs that activate it, in increasing order.
func Partition(codes [][]int32) map[int32][]int {
	out := make(map[int32][]int)
	for i, row := range codes {
		for _, c := range row {
			if c < 0 {
				continue
			}
			if in := out[c]; len(in) > 0 && in[len(in)-1] == i {
				continue // listed twice for one input
			}
			out[c] = append(out[c], i)
		}
	}
	return out
}

// Purity is the code purity of the reference's TokFSM study: given the codes
// active at the probe position for each input (see Partition), a code is
// pure if exactly one input activates it. It returns the number of pure and
// of active codes and their ratio (0 when no code is active).
func Purity(codes [][]int32) (pure, active int, purity float64) {
	for _, in := range Partition(codes) {
		active++
		if len(in) == 1 {
			pure++
		}
	}
	if active == 0 {
		return 0, 0, 0
	}
	return pure, active, float64(pure) / float64(active)
}

// TopicCodes returns, for each sequence of ids ([sequence][position][k]),
// the codes active on more than minFraction of its positions
// (DefaultTopicFraction in the paper), in increasing order; an empty
// sequence has none.
func TopicCodes(ids [][][]int32, minFraction float64) [][]int32 {
	out := make([][]int32, len(ids))
	for s, seq := range ids {
		type tally struct{ n, last int } // positions counted; 1 + the last one
		counts := make(map[int32]tally)
		for i, row := range seq {
			for _, c := range row {
				if t := counts[c]; c >= 0 && t.last != i+1 {
					counts[c] = tally{t.n + 1, i + 1}
				}
			}
		}
		for c, t := range counts {
			if float64(t.n)/float64(len(seq)) > minFraction {
				out[s] = append(out[s], c)
			}
		}
		slices.Sort(out[s])
	}
	return out
}
