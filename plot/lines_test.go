package plot

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// curve returns n points of a decaying loss-like curve.
func curve(n int, scale float64) (x, y []float64) {
	for i := range n {
		x = append(x, float64(i*10))
		y = append(y, scale*(1+3*math.Exp(-float64(i)/15)))
	}
	return x, y
}

func TestLines(t *testing.T) {
	x, train := curve(60, 1)
	_, val := curve(60, 1.1)
	nan := append([]float64(nil), train...)
	nan[10], nan[11], nan[40] = math.NaN(), math.Inf(1), math.Inf(-1)
	withZero := append([]float64(nil), train...)
	withZero[0], withZero[5] = 0, -1

	tests := []struct {
		name   string
		fig    Figure
		series []Series
		w, h   int
	}{
		{"one series", Figure{Title: "loss", XLabel: "step", YLabel: "CE"}, []Series{{Name: "train", X: x, Y: train}}, 900, 600},
		{"train and dashed val", Figure{Title: "loss"}, []Series{{Name: "train", X: x, Y: train}, {Name: "val", X: x, Y: val, Dashed: true}}, 900, 600},
		{"NaN and Inf skipped", Figure{}, []Series{{Name: "diverged", X: x, Y: nan}}, 900, 600},
		{"log scale skips non-positive", Figure{LogY: true}, []Series{{Name: "train", X: x, Y: withZero}}, 900, 600},
		{"one point", Figure{}, []Series{{Name: "p", X: []float64{1}, Y: []float64{2}}}, 900, 600},
		{"all-NaN series beside a good one", Figure{}, []Series{{Name: "ok", X: x, Y: train}, {Name: "bad", X: []float64{1}, Y: []float64{math.NaN()}}}, 900, 600},
		{"custom size", Figure{Width: 4, Height: 3, DPI: 100}, []Series{{Name: "train", X: x, Y: train}}, 400, 300},
		{"constant", Figure{}, []Series{{Name: "c", X: x[:3], Y: []float64{1, 1, 1}}}, 900, 600},
		{"constant at 1 on log scale", Figure{LogY: true}, []Series{{Name: "c", X: x[:3], Y: []float64{1, 1, 1}}}, 900, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lines.png")
			if err := Lines(path, tt.fig, tt.series...); err != nil {
				t.Fatal(err)
			}
			var inks []color.Color
			for i, s := range tt.series {
				if finite(s.Y[0]) {
					inks = append(inks, seriesColor(i))
				}
			}
			checkFigure(t, path, tt.w, tt.h, inks, 50)
		})
	}
}

func TestLinesErrors(t *testing.T) {
	x, y := curve(5, 1)
	tests := []struct {
		name    string
		fig     Figure
		series  []Series
		wantMsg string
	}{
		{"no series", Figure{}, nil, "no series"},
		{"empty series", Figure{}, []Series{{Name: "e"}}, `series "e" is empty`},
		{"mismatched lengths", Figure{}, []Series{{Name: "m", X: x, Y: y[:3]}}, "5 x values and 3 y values"},
		{"nothing finite", Figure{}, []Series{{Name: "n", X: []float64{1, 2}, Y: []float64{math.NaN(), math.Inf(1)}}}, "no finite data"},
		{"nothing positive on log scale", Figure{LogY: true}, []Series{{Name: "z", X: []float64{1, 2}, Y: []float64{0, -1}}}, "no finite data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lines.png")
			err := Lines(path, tt.fig, tt.series...)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Lines() error = %v, want it to contain %q", err, tt.wantMsg)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed call left %s (stat: %v)", path, err)
			}
		})
	}
}

// minShaded is the fewest pixels a drawn band covers in the tests' figures.
const minShaded = 2000

func TestBands(t *testing.T) {
	x, mean := curve(40, 1)
	_, mean2 := curve(40, 1.3)
	std := make([]float64, len(x))
	for i := range std {
		std[i] = 0.2
	}
	// The same band with its points in reverse order must draw the same.
	rx, rmean := make([]float64, len(x)), make([]float64, len(x))
	for i := range x {
		rx[len(x)-1-i], rmean[len(x)-1-i] = x[i], mean[i]
	}
	nanStd := append([]float64(nil), std...)
	nanStd[3] = math.NaN()

	tests := []struct {
		name  string
		fig   Figure
		bands []Band
	}{
		{"two bands", Figure{Title: "val CE over seeds"}, []Band{{Name: "C50", X: x, Mean: mean, Std: std}, {Name: "V96m", X: x, Mean: mean2, Std: std}}},
		{"unsorted x", Figure{}, []Band{{Name: "r", X: rx, Mean: rmean, Std: std}}},
		{"NaN std", Figure{}, []Band{{Name: "n", X: x, Mean: mean, Std: nanStd}}},
		{"log scale with wide band", Figure{LogY: true}, []Band{{Name: "w", X: x, Mean: mean, Std: mean}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bands.png")
			if err := Bands(path, tt.fig, tt.bands...); err != nil {
				t.Fatal(err)
			}
			var lines, shades []color.Color
			for i := range tt.bands {
				lines = append(lines, seriesColor(i))
				shades = append(shades, overWhite(seriesColor(i), bandAlpha))
			}
			checkFigure(t, path, 900, 600, lines, 50)
			// A band covers an area, not just a line's width.
			checkFigure(t, path, 900, 600, shades, minShaded)
		})
	}

	t.Run("no std draws no shading", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bands.png")
		if err := Bands(path, Figure{}, Band{Name: "m", X: x, Mean: mean}); err != nil {
			t.Fatal(err)
		}
		// Anti-aliased edges of the line blend to the shading colour on a
		// few pixels; a band covers thousands.
		if n := countNear(readPNG(t, path), overWhite(seriesColor(0), bandAlpha), 6); n >= minShaded {
			t.Errorf("band without Std has %d shaded pixels", n)
		}
	})
}

func TestBandOutline(t *testing.T) {
	b := Band{X: []float64{2, 0, 1, math.NaN()}, Mean: []float64{4, 2, 3, 1}, Std: []float64{1, 0.5, math.Inf(1), 1}}
	mean, shade := b.outline(Figure{})
	wantMean := []float64{0, 2, 1, 3, 2, 4} // x, y pairs sorted by x, NaN x dropped
	if len(mean) != 3 {
		t.Fatalf("mean has %d points, want 3", len(mean))
	}
	for i, p := range mean {
		if p.X != wantMean[2*i] || p.Y != wantMean[2*i+1] {
			t.Errorf("mean[%d] = %v, want (%g, %g)", i, p, wantMean[2*i], wantMean[2*i+1])
		}
	}
	// Upper edge left to right, then lower edge right to left; the Inf std
	// at x=1 gives no width there.
	wantShade := []float64{2.5, 3, 5, 3, 3, 1.5}
	if len(shade) != len(wantShade) {
		t.Fatalf("shade has %d points, want %d", len(shade), len(wantShade))
	}
	for i, p := range shade {
		if p.Y != wantShade[i] {
			t.Errorf("shade[%d].Y = %g, want %g", i, p.Y, wantShade[i])
		}
	}

	_, logShade := Band{X: []float64{0}, Mean: []float64{2}, Std: []float64{3}}.outline(Figure{LogY: true})
	if got := logShade[1].Y; got != 0.2 {
		t.Errorf("log-scale lower edge = %g, want Mean/10 = 0.2", got)
	}
}

func TestBandsErrors(t *testing.T) {
	tests := []struct {
		name    string
		bands   []Band
		wantMsg string
	}{
		{"no bands", nil, "no bands"},
		{"empty", []Band{{Name: "e"}}, `band "e": empty`},
		{"mean length", []Band{{Name: "m", X: []float64{1, 2}, Mean: []float64{1}}}, "2 x values and 1 means"},
		{"std length", []Band{{Name: "s", X: []float64{1, 2}, Mean: []float64{1, 2}, Std: []float64{1}}}, "2 x values and 1 stds"},
		{"negative std", []Band{{Name: "n", X: []float64{1, 2}, Mean: []float64{1, 2}, Std: []float64{1, -1}}}, "negative std -1 at index 1"},
		{"nothing finite", []Band{{Name: "f", X: []float64{1}, Mean: []float64{math.NaN()}}}, "no finite data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bands.png")
			err := Bands(path, Figure{}, tt.bands...)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Bands() error = %v, want it to contain %q", err, tt.wantMsg)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed call left %s", path)
			}
		})
	}
}
