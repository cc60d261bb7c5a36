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

// Best returns the neuron that best picks out the matched positions at a
// given recall, the paper's neuron baseline for a code: each neuron's
// threshold is the highest at which its recall reaches targetRecall (so
// recall equals the target up to ties and rounding: the threshold is the
// ⌈targetRecall·matched⌉-th largest matched activation), and the neuron with
// the highest precision wins (the lowest index on ties). targetRecall must be
// in (0, 1] and at least one position must be matched.
func (x *NeuronIndex) Best(matched []bool, targetRecall float64) (NeuronStat, error) {
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
	// The smallest count of matched positions that reaches the target; the
	// slack absorbs rounding in a recall computed as hits/matched.
	need := int(math.Ceil(targetRecall*float64(len(rows)) - 1e-9))
	need = max(need, 1)

	best := NeuronStat{Neuron: -1}
	vals := make([]float32, len(rows))
	for j := range x.neurons {
		col := x.cols[j*x.positions : (j+1)*x.positions]
		for k, i := range rows {
			vals[k] = col[i]
		}
		slices.Sort(vals)
		thr := vals[len(vals)-need]
		hits := len(vals) - sort.Search(len(vals), func(k int) bool { return vals[k] >= thr })
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
// for the matched positions at targetRecall; see NeuronIndex.Best. To test
// many features against the same activations, build a NeuronIndex once.
func BestNeuron(acts [][]float32, matched []bool, targetRecall float64) (NeuronStat, error) {
	x, err := NewNeuronIndex(acts)
	if err != nil {
		return NeuronStat{}, err
	}
	return x.Best(matched, targetRecall)
}
