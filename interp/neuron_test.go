package interp

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

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
			got, err := idx.Best(matched, tt.recall)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			direct, err := BestNeuron(acts, matched, tt.recall)
			require.NoError(t, err)
			require.Equal(t, got, direct)
		})
	}

	// Ties among activations raise recall above the target.
	got, err := BestNeuron([][]float32{{1}, {1}, {1}, {0}}, []bool{true, true, false, false}, 0.5)
	require.NoError(t, err)
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
	got, err := BestNeuron(acts, matched, 0.7)
	require.NoError(t, err)
	require.Equal(t, NeuronStat{Neuron: 0, Threshold: 3, Precision: 1, Recall: 0.7, Fires: 7, Hits: 7}, got)
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
