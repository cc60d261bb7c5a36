package interp

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// bestWith indexes acts and returns the best neuron under rule b.
func bestWith(t *testing.T, b NeuronBaseline, acts [][]float32, matched []bool, recall float64) NeuronStat {
	t.Helper()
	idx, err := NewNeuronIndex(acts)
	require.NoError(t, err)
	got, err := idx.BestWith(b, matched, recall)
	require.NoError(t, err)
	return got
}

// TestBestNeuron pins the matched_recall rule (hiddenlab's earlier
// default); TestBestNeuronOfficial pins the official one.
func TestBestNeuron(t *testing.T) {
	acts := [][]float32{
		// neuron 0, 1 (separates matched rows), 2 (one spike)
		{0.9, 0.5, 1}, // matched
		{0.8, 0.6, 0}, // matched
		{0.85, 0.1, 0},
		{0.1, 0.2, 0},
		{0.7, 0.55, 0}, // matched
		{0.2, 0.3, 0},
	}
	matched := []bool{true, true, false, false, true, false}
	tests := []struct {
		name   string
		recall float64
		want   NeuronStat
	}{
		{
			// Two of three matched rows: neuron 0 needs ≥ 0.8 (3 fire, 2
			// hits), neuron 1 ≥ 0.55 (2 fire, 2 hits), neuron 2 ≥ 0 (all).
			name: "two thirds", recall: 2.0 / 3,
			want: NeuronStat{Neuron: 1, Threshold: 0.55, Precision: 1, Recall: 2.0 / 3, Fires: 2, Hits: 2},
		},
		{
			name: "half rounds up to two rows", recall: 0.5,
			want: NeuronStat{Neuron: 1, Threshold: 0.55, Precision: 1, Recall: 2.0 / 3, Fires: 2, Hits: 2},
		},
		{
			name: "full recall", recall: 1,
			want: NeuronStat{Neuron: 1, Threshold: 0.5, Precision: 1, Recall: 1, Fires: 3, Hits: 3},
		},
		{
			// Every neuron is perfect on its top matched row: the lowest wins.
			name: "tie", recall: 1.0 / 3,
			want: NeuronStat{Neuron: 0, Threshold: 0.9, Precision: 1, Recall: 1.0 / 3, Fires: 1, Hits: 1},
		},
	}
	idx, err := NewNeuronIndex(acts)
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idx.BestWith(MatchedRecallBaseline, matched, tt.recall)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	// Ties among activations raise recall above the target.
	got := bestWith(t, MatchedRecallBaseline, [][]float32{{1}, {1}, {1}, {0}}, []bool{true, true, false, false}, 0.5)
	require.Equal(t, NeuronStat{Neuron: 0, Threshold: 1, Precision: 2.0 / 3, Recall: 1, Fires: 3, Hits: 2}, got)
}

func TestBestNeuronRecallRounding(t *testing.T) {
	// 10 matched rows with activations 0..9 and 10 unmatched at -1. A recall
	// of 0.7 (0.7·10 is 7.000000000000001 in floating point) needs 7 rows.
	var acts [][]float32
	var matched []bool
	for i := range 20 {
		if i < 10 {
			acts = append(acts, []float32{float32(i)})
		} else {
			acts = append(acts, []float32{-1})
		}
		matched = append(matched, i < 10)
	}
	want := NeuronStat{Neuron: 0, Threshold: 3, Precision: 1, Recall: 0.7, Fires: 7, Hits: 7}
	require.Equal(t, want, bestWith(t, MatchedRecallBaseline, acts, matched, 0.7))
	// The official int(0.7·10) is 7 as well.
	require.Equal(t, want, bestWith(t, OfficialBaseline, acts, matched, 0.7))
}

// TestBestNeuronOfficial pins the official get_neuron_precision_and_recall
// on hand-computed cases: n = int(r·M) matched positions, threshold the
// n-th largest matched activation, precision n / fires.
func TestBestNeuronOfficial(t *testing.T) {
	acts := [][]float32{
		// neuron 0, 1 (separates matched rows), 2 (one spike)
		{0.9, 0.5, 1}, // matched
		{0.8, 0.6, 0}, // matched
		{0.85, 0.1, 0},
		{0.1, 0.2, 0},
		{0.7, 0.55, 0}, // matched
		{0.2, 0.3, 0},
	}
	matched := []bool{true, true, false, false, true, false}
	var ramp [][]float32 // 100 matched rows with activations 0..99
	var all []bool
	for i := range 100 {
		ramp = append(ramp, []float32{float32(i)})
		all = append(all, true)
	}
	tests := []struct {
		name    string
		acts    [][]float32
		matched []bool
		recall  float64
		want    NeuronStat
	}{
		{"two thirds: n = 2", acts, matched, 2.0 / 3,
			NeuronStat{Neuron: 1, Threshold: 0.55, Precision: 1, Recall: 2.0 / 3, Fires: 2, Hits: 2}},
		// int(1.5) = 1: every neuron is perfect on its top matched row, the
		// first wins (matched_recall rounds up to 2 rows and picks neuron 1).
		{"half rounds down to one row", acts, matched, 0.5,
			NeuronStat{Neuron: 0, Threshold: 0.9, Precision: 1, Recall: 1.0 / 3, Fires: 1, Hits: 1}},
		{"full recall", acts, matched, 1,
			NeuronStat{Neuron: 1, Threshold: 0.5, Precision: 1, Recall: 1, Fires: 3, Hits: 3}},
		// int(0.6) = 0: the threshold is the smallest matched activation and
		// every precision is 0/fires.
		{"below one row", acts, matched, 0.2,
			NeuronStat{Neuron: 0, Threshold: 0.7, Precision: 0, Recall: 0, Fires: 4, Hits: 0}},
		// Ties at the threshold fire three rows, two of them matched; the
		// official count is still n = 1.
		{"ties count n hits", [][]float32{{1}, {1}, {1}, {0}}, []bool{true, true, false, false}, 0.5,
			NeuronStat{Neuron: 0, Threshold: 1, Precision: 1.0 / 3, Recall: 0.5, Fires: 3, Hits: 1}},
		// 0.57·100 is 56.99999999999999 in floating point: int() gives 56.
		{"truncation", ramp, all, 0.57,
			NeuronStat{Neuron: 0, Threshold: 44, Precision: 1, Recall: 0.56, Fires: 56, Hits: 56}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, bestWith(t, OfficialBaseline, tt.acts, tt.matched, tt.recall))
			idx, err := NewNeuronIndex(tt.acts)
			require.NoError(t, err)
			got, err := idx.Best(tt.matched, tt.recall)
			require.NoError(t, err)
			require.Equal(t, tt.want, got, "Best is the official rule")
			direct, err := BestNeuron(tt.acts, tt.matched, tt.recall)
			require.NoError(t, err)
			require.Equal(t, tt.want, direct)
		})
	}
	b, err := ParseNeuronBaseline("")
	require.NoError(t, err)
	require.Equal(t, OfficialBaseline, b)
	_, err = ParseNeuronBaseline("best")
	require.ErrorContains(t, err, `unknown neuron baseline "best"`)
}

func TestBestNeuronErrors(t *testing.T) {
	acts := [][]float32{{1, 2}, {3, 4}}
	tests := []struct {
		name    string
		acts    [][]float32
		matched []bool
		recall  float64
		err     string
	}{
		{"no positions", nil, nil, 0.5, "empty activation matrix"},
		{"no neurons", [][]float32{{}}, []bool{true}, 0.5, "empty activation matrix"},
		{"ragged", [][]float32{{1, 2}, {3}}, []bool{true, false}, 0.5, "row 1 has 1 neurons"},
		{"nan", [][]float32{{1, float32(math.NaN())}}, []bool{true}, 0.5, "neuron 1 at position 0 is NaN"},
		{"flags", acts, []bool{true}, 0.5, "1 match flags for 2 positions"},
		{"zero recall", acts, []bool{true, false}, 0, "not in (0, 1]"},
		{"recall above one", acts, []bool{true, false}, 1.5, "not in (0, 1]"},
		{"nan recall", acts, []bool{true, false}, math.NaN(), "not in (0, 1]"},
		{"nothing matched", acts, []bool{false, false}, 0.5, "no matched position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BestNeuron(tt.acts, tt.matched, tt.recall)
			require.ErrorContains(t, err, tt.err)
		})
	}
}
