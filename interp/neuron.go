package interp

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// NeuronStat is the best neuron for a feature, fired by thresholding: the
// neuron fires where its activation is at least Threshold.
type NeuronStat struct {
	Neuron    int     // column of the activation matrix
	Threshold float32 // the neuron fires where act ≥ Threshold
	Precision float64 // Hits / Fires
	Recall    float64 // Hits / matched positions
	Fires     int     // positions where the neuron fires
	Hits      int     // matched positions where the neuron fires
}

// NeuronIndex holds an activation matrix with every neuron's activations
// sorted once, to find the best neuron for many features.
type NeuronIndex struct {
	positions, neurons int
	cols               []float32 // neuron-major copy: cols[j*positions+i] = acts[i][j]
	sorted             []float32 // each neuron's activations in increasing order
}

// NewNeuronIndex indexes acts, of shape [positions][neurons] (for the paper's
// baseline: every attention-output and MLP-output dimension of every layer
// side by side). It copies acts and fails if the matrix is empty or ragged or
// holds a NaN.
func NewNeuronIndex(acts [][]float32) (*NeuronIndex, error) {
	if len(acts) == 0 || len(acts[0]) == 0 {
		return nil, errors.New("interp: empty activation matrix")
	}
	p, n := len(acts), len(acts[0])
	x := &NeuronIndex{positions: p, neurons: n, cols: make([]float32, p*n)}
	for i, row := range acts {
		if len(row) != n {
			return nil, fmt.Errorf("interp: activation row %d has %d neurons, row 0 has %d", i, len(row), n)
		}
		for j, v := range row {
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("interp: activation of neuron %d at position %d is NaN", j, i)
			}
			x.cols[j*p+i] = v
		}
	}
	x.sorted = slices.Clone(x.cols)
	for j := range n {
		slices.Sort(x.sorted[j*p : (j+1)*p])
	}
	return x, nil
}

// NeuronBaseline is the rule that thresholds a neuron at a target recall r
// over the M matched positions in the best-neuron baseline.
type NeuronBaseline string

// The best-neuron baselines.
const (
	// OfficialBaseline is the official code's
	// (code_search_utils.get_neuron_precision_and_recall), the default:
	// n = ⌊r·M⌋ (Python's int() of the float product), the threshold is
	// the n-th largest matched activation, the neuron fires where its
	// activation is at least the threshold, and its precision is
	// n / fires — the hits are counted as n even when ties at the threshold
	// make more matched positions fire. When r·M < 1 (n = 0) the threshold
	// is the smallest matched activation and every precision is 0 (the
	// official sorted[..., −0] and 0/fires), so the first neuron wins.
	OfficialBaseline NeuronBaseline = "official"
	// MatchedRecallBaseline is hiddenlab's earlier rule: n = ⌈r·M⌉ (at
	// least 1), the same threshold, and hits are the matched positions that
	// actually fire (ties included), so recall reaches the target and
	// precision is hits / fires.
	MatchedRecallBaseline NeuronBaseline = "matched_recall"
)

// ParseNeuronBaseline checks a baseline name ("official" or
// "matched_recall"; "" is official).
func ParseNeuronBaseline(s string) (NeuronBaseline, error) {
	switch b := NeuronBaseline(s); b {
	case "":
		return OfficialBaseline, nil
	case OfficialBaseline, MatchedRecallBaseline:
		return b, nil
	}
	return "", fmt.Errorf("interp: unknown neuron baseline %q (want official or matched_recall)", s)
}

// Best returns the neuron that best picks out the matched positions at a
// given recall under the official rule ([OfficialBaseline]); see BestWith.
func (x *NeuronIndex) Best(matched []bool, targetRecall float64) (NeuronStat, error) {
	return x.BestWith(OfficialBaseline, matched, targetRecall)
}

// BestWith returns the neuron that best picks out the matched positions at
// a given recall, the paper's neuron baseline for a code: each neuron is
// thresholded at targetRecall by rule b (see [NeuronBaseline]) and the
// neuron with the highest precision wins (the lowest index on ties, as
// numpy's argmax). Hits and Recall report the rule's count (n for the
// official rule). targetRecall must be in (0, 1] and at least one position
// must be matched.
func (x *NeuronIndex) BestWith(b NeuronBaseline, matched []bool, targetRecall float64) (NeuronStat, error) {
	if b != OfficialBaseline && b != MatchedRecallBaseline {
		return NeuronStat{}, fmt.Errorf("interp: unknown neuron baseline %q", b)
	}
	if len(matched) != x.positions {
		return NeuronStat{}, fmt.Errorf("interp: %d match flags for %d positions", len(matched), x.positions)
	}
	if !(targetRecall > 0 && targetRecall <= 1) {
		return NeuronStat{}, fmt.Errorf("interp: target recall %v not in (0, 1]", targetRecall)
	}
	var rows []int
	for i, m := range matched {
		if m {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return NeuronStat{}, errors.New("interp: no matched position")
	}
	var need int
	if b == OfficialBaseline {
		need = int(targetRecall * float64(len(rows)))
	} else {
		// The smallest count of matched positions that reaches the target;
		// the slack absorbs rounding in a recall computed as hits/matched.
		need = max(int(math.Ceil(targetRecall*float64(len(rows))-1e-9)), 1)
	}

	best := NeuronStat{Neuron: -1}
	vals := make([]float32, len(rows))
	for j := range x.neurons {
		col := x.cols[j*x.positions : (j+1)*x.positions]
		for k, i := range rows {
			vals[k] = col[i]
		}
		slices.Sort(vals)
		thr := vals[0] // official n = 0: sorted[..., −0]
		if need > 0 {
			thr = vals[len(vals)-need]
		}
		hits := need
		if b == MatchedRecallBaseline {
			hits = len(vals) - sort.Search(len(vals), func(k int) bool { return vals[k] >= thr })
		}
		sorted := x.sorted[j*x.positions : (j+1)*x.positions]
		fires := len(sorted) - sort.Search(len(sorted), func(k int) bool { return sorted[k] >= thr })
		prec := float64(hits) / float64(fires)
		if best.Neuron < 0 || prec > best.Precision {
			best = NeuronStat{
				Neuron: j, Threshold: thr, Precision: prec,
				Recall: float64(hits) / float64(len(rows)), Fires: fires, Hits: hits,
			}
		}
	}
	return best, nil
}

// BestNeuron indexes acts ([positions][neurons]) and returns its best neuron
// for the matched positions at targetRecall under the official rule; see
// NeuronIndex.Best. To test
// many features against the same activations, build a NeuronIndex once.
func BestNeuron(acts [][]float32, matched []bool, targetRecall float64) (NeuronStat, error) {
	x, err := NewNeuronIndex(acts)
	if err != nil {
		return NeuronStat{}, err
	}
	return x.Best(matched, targetRecall)
}
