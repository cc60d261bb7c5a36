package plot

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBinValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	// A value exactly on edge 2 whose quotient (v-lo)/width rounds to just
	// below 2 (found by search).
	lo, hi := 1.7645565966782506, 3.1497152498400487
	onEdge := make([]float64, 42)
	onEdge[0], onEdge[2], onEdge[41] = 1, 1, 1
	tests := []struct {
		name       string
		values     []float64
		bins       int
		wantCounts []float64
		wantLo     float64
		wantHi     float64
	}{
		{"even split", []float64{0, 1, 2, 3}, 2, []float64{2, 2}, 0, 3},
		{"maximum lands in last bin", []float64{0, 10}, 5, []float64{1, 0, 0, 0, 1}, 0, 10},
		{"non-finite skipped", []float64{nan, 1, inf, 2, -inf, 3}, 3, []float64{1, 1, 1}, 1, 3},
		{"all equal", []float64{7, 7, 7}, 4, []float64{0, 0, 3, 0}, 6.5, 7.5},
		{"one bin", []float64{-1, 0.5, 2}, 1, []float64{3}, -1, 2},
		// The edges are lo + i*width: 0.3 < 0.30000000000000004 = edge 3
		// and 0.7 < 0.7000000000000001 = edge 7, although 0.3/0.1 and
		// 0.7/0.1 round to just below 3 and 7.
		{"value on an edge", []float64{lo, lo + 2*((hi-lo)/42), hi}, 42, onEdge, lo, hi},
		{"edges in floating point", []float64{0, 0.1, 0.2, 0.3, 0.7, 0.9, 1}, 10, []float64{1, 1, 2, 0, 0, 0, 1, 0, 0, 2}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bins, width, err := binValues(tt.values, tt.bins)
			if err != nil {
				t.Fatal(err)
			}
			if len(bins) != tt.bins {
				t.Fatalf("%d bins, want %d", len(bins), tt.bins)
			}
			if bins[0].Min != tt.wantLo || bins[len(bins)-1].Max != tt.wantHi {
				t.Errorf("bins span [%g, %g], want [%g, %g]", bins[0].Min, bins[len(bins)-1].Max, tt.wantLo, tt.wantHi)
			}
			if want := (tt.wantHi - tt.wantLo) / float64(tt.bins); math.Abs(width-want) > 1e-12 {
				t.Errorf("width %g, want %g", width, want)
			}
			total := 0.0
			for i, b := range bins {
				total += b.Weight
				if b.Weight != tt.wantCounts[i] {
					t.Errorf("bin %d [%g, %g) has %g values, want %g", i, b.Min, b.Max, b.Weight, tt.wantCounts[i])
				}
				// Each bin counts exactly the values between its edges.
				inside := 0.0
				for _, v := range tt.values {
					if v >= b.Min && (v < b.Max || i == len(bins)-1 && v == b.Max) {
						inside++
					}
				}
				if b.Weight != inside {
					t.Errorf("bin %d [%g, %g) counts %g values, but %g lie in it", i, b.Min, b.Max, b.Weight, inside)
				}
			}
			finiteCount := 0.0
			for _, v := range tt.values {
				if finite(v) {
					finiteCount++
				}
			}
			if total != finiteCount {
				t.Errorf("bins hold %g values, want all %g finite ones", total, finiteCount)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	var values []float64
	for i := range 5000 {
		values = append(values, math.Sin(float64(i)*1.3)*math.Exp(math.Cos(float64(i))))
	}
	tests := []struct {
		name   string
		fig    Figure
		values []float64
		bins   int
	}{
		{"linear", Figure{Title: "activations", XLabel: "value", YLabel: "count"}, values, 40},
		{"log counts", Figure{LogY: true}, values, 40},
		{"one bin", Figure{}, values, 1},
		{"one value, log counts", Figure{LogY: true}, []float64{3}, 1},
	}
	fill := overWhite(seriesColor(0), 0xc0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hist.png")
			if err := Histogram(path, tt.fig, tt.values, tt.bins); err != nil {
				t.Fatal(err)
			}
			checkFigure(t, path, 900, 600, []color.Color{fill}, 5000)
		})
	}
}

func TestHistogramErrors(t *testing.T) {
	tests := []struct {
		name    string
		values  []float64
		bins    int
		wantMsg string
	}{
		{"no bins", []float64{1}, 0, "at least 1 bin, got 0"},
		{"negative bins", []float64{1}, -3, "at least 1 bin, got -3"},
		{"no values", nil, 10, "histogram of 0 values: no finite data"},
		{"nothing finite", []float64{math.NaN(), math.Inf(-1)}, 10, "histogram of 2 values: no finite data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hist.png")
			err := Histogram(path, Figure{}, tt.values, tt.bins)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Histogram() error = %v, want it to contain %q", err, tt.wantMsg)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed call left %s", path)
			}
		})
	}
}
