package interp

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJSD(t *testing.T) {
	// p = (1, 0), q = (½, ½): m = (¾, ¼), KL(p‖m) = ln 4/3,
	// KL(q‖m) = ½ ln 2/3 + ½ ln 2.
	half := (math.Log(4.0/3) + 0.5*math.Log(2.0/3) + 0.5*math.Log(2)) / 2
	tests := []struct {
		name string
		p, q []float64
		want float64
	}{
		{"identical", []float64{0.2, 0.3, 0.5}, []float64{0.2, 0.3, 0.5}, 0},
		{"disjoint", []float64{1, 0}, []float64{0, 1}, math.Ln2},
		{"disjoint spread", []float64{0.5, 0.5, 0, 0}, []float64{0, 0, 0.25, 0.75}, math.Ln2},
		{"point and uniform", []float64{1, 0}, []float64{0.5, 0.5}, half},
		{"empty", nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.want, JSD(tt.p, tt.q), 1e-15)
			require.InDelta(t, tt.want, JSD(tt.q, tt.p), 1e-15, "symmetric")
		})
	}
	require.InDelta(t, 0.2157615543388357, half, 1e-15)
	require.PanicsWithValue(t, "interp: JSD of vectors of lengths 2 and 3", func() {
		JSD([]float64{1, 0}, []float64{1, 0, 0})
	})
}

func TestNormalizedJSD(t *testing.T) {
	target := []float64{0.5, 0.5}
	unpatched := []float64{1, 0}
	tests := []struct {
		name    string
		patched []float64
		want    float64
	}{
		{"no effect", unpatched, 1},
		{"perfect", target, 0},
		{"halfway", []float64{0.75, 0.25}, JSD([]float64{0.75, 0.25}, target) / JSD(unpatched, target)},
		{"overshoot", []float64{0, 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.want, NormalizedJSD(tt.patched, unpatched, target), 1e-15)
		})
	}
	// Moving half of the way in probability closes 84% of the JSD gap.
	require.InDelta(t, 0.156757, NormalizedJSD([]float64{0.75, 0.25}, unpatched, target), 1e-6)
	require.True(t, math.IsNaN(NormalizedJSD(target, target, target)))
}
