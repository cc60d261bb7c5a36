package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// centroid returns the mean position of the pixels of img within tol of
// want, left of x = maxX, and how many there are.
func centroid(img image.Image, want color.Color, tol, maxX int) (cx, cy float64, n int) {
	w := color.NRGBAModel.Convert(want).(color.NRGBA)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < min(b.Max.X, maxX); x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if absDiff(c.R, w.R) <= tol && absDiff(c.G, w.G) <= tol && absDiff(c.B, w.B) <= tol {
				cx, cy, n = cx+float64(x), cy+float64(y), n+1
			}
		}
	}
	if n > 0 {
		cx, cy = cx/float64(n), cy/float64(n)
	}
	return cx, cy, n
}

func TestHeatmapLayout(t *testing.T) {
	// values[r][c]: row 0 must be drawn at the top, column 0 at the left.
	rows, cols := []string{"top", "bottom"}, []string{"left", "right"}
	values := [][]float64{{0, 1}, {2, 3}}
	path := filepath.Join(t.TempDir(), "heat.png")
	if err := Heatmap(path, Figure{Title: "layout"}, rows, cols, values); err != nil {
		t.Fatal(err)
	}
	img := readPNG(t, path)
	cmap := grid{values: values, ncols: 2}.colorMap()
	// Only the cells, not the colour scale to their right.
	cellsRight := 900 - int(colorBarWidth.Dots(DefaultDPI))
	type pos struct{ x, y float64 }
	var at [4]pos
	for v := range 4 {
		x, y, n := centroid(img, colorOf(cmap, float64(v)), 2, cellsRight)
		if n < 5000 {
			t.Fatalf("value %d: colour on %d pixels, want a cell's worth (>= 5000)", v, n)
		}
		at[v] = pos{x, y}
	}
	if !(at[0].y < at[2].y && at[1].y < at[3].y) {
		t.Errorf("row 0 is not above row 1: centroids %v", at)
	}
	if !(at[0].x < at[1].x && at[2].x < at[3].x) {
		t.Errorf("column 0 is not left of column 1: centroids %v", at)
	}
}

func TestHeatmap(t *testing.T) {
	names := func(prefix string, n int) []string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("%s%d", prefix, i))
		}
		return s
	}
	table := func(r, c int, f func(r, c int) float64) [][]float64 {
		v := make([][]float64, r)
		for i := range v {
			v[i] = make([]float64, c)
			for j := range v[i] {
				v[i][j] = f(i, j)
			}
		}
		return v
	}
	precision := table(10, 12, func(r, c int) float64 { return math.Abs(math.Sin(float64(r*12 + c))) })
	precision[3][4] = math.NaN()
	precision[5][6] = math.Inf(1)

	tests := []struct {
		name       string
		rows, cols []string
		values     [][]float64
		wantNaN    bool
	}{
		{"precision table with missing cells", names("state ", 10), names("c", 12), precision, true},
		{"signed values", names("layer ", 4), names("h", 6), table(4, 6, func(r, c int) float64 { return float64(r*6+c) - 11.5 }), false},
		{"single cell", []string{"r"}, []string{"c"}, [][]float64{{0.5}}, false},
		{"large table", names("", 150), names("", 120), table(150, 120, func(r, c int) float64 { return float64(r * c) }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "heat.png")
			if err := Heatmap(path, Figure{Title: tt.name}, tt.rows, tt.cols, tt.values); err != nil {
				t.Fatal(err)
			}
			cmap := grid{values: tt.values, ncols: len(tt.cols)}.colorMap()
			lo, hi := cmap.Min(), cmap.Max()
			inks := []color.Color{colorOf(cmap, lo), colorOf(cmap, hi)}
			if tt.wantNaN {
				inks = append(inks, nanColor)
			}
			checkFigure(t, path, 900, 600, inks, 200)
		})
	}
}

func TestHeatmapColorMap(t *testing.T) {
	tests := []struct {
		name      string
		values    []float64
		min, max  float64
		diverging bool
	}{
		{"non-negative", []float64{0, 0.25, 1}, 0, 1, false},
		{"negative", []float64{-3, -1}, -3, -1, false},
		{"both signs, symmetric about zero", []float64{-1, 2, math.NaN()}, -2, 2, true},
		{"one value", []float64{4, 4}, 2, 6, false},
		{"zero only", []float64{0}, -0.5, 0.5, false},
	}
	white := color.NRGBA{R: 255, G: 255, B: 255, A: 255}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmap := grid{values: [][]float64{tt.values}, ncols: len(tt.values)}.colorMap()
			if cmap.Min() != tt.min || cmap.Max() != tt.max {
				t.Errorf("range = [%g, %g], want [%g, %g]", cmap.Min(), cmap.Max(), tt.min, tt.max)
			}
			// The diverging map is near white at zero; the sequential one
			// runs from dark to light.
			if tt.diverging {
				if l := luminance(colorOf(cmap, 0)); l < 0.75 {
					t.Errorf("diverging map at zero has luminance %.2f, want near white", l)
				}
			} else if lo, hi := luminance(colorOf(cmap, tt.min)), luminance(colorOf(cmap, tt.max)); lo > 0.1 || hi < 0.8 {
				t.Errorf("sequential map luminance from %.2f to %.2f, want dark to light", lo, hi)
			}
			if c := colorOf(cmap, math.NaN()); color.NRGBAModel.Convert(c) == white {
				t.Error("NaN drawn white, want grey")
			}
		})
	}
}

func TestHeatmapErrors(t *testing.T) {
	tests := []struct {
		name       string
		fig        Figure
		rows, cols []string
		values     [][]float64
		wantMsg    string
	}{
		{"no rows", Figure{}, nil, []string{"c"}, nil, "0 rows and 1 columns"},
		{"no columns", Figure{}, []string{"r"}, nil, [][]float64{{}}, "1 rows and 0 columns"},
		{"row count", Figure{}, []string{"r", "s"}, []string{"c"}, [][]float64{{1}}, "2 row names and 1 rows of values"},
		{"ragged row", Figure{}, []string{"r", "s"}, []string{"c", "d"}, [][]float64{{1, 2}, {3}}, `row "s" has 1 values, want 2`},
		{"nothing finite", Figure{}, []string{"r"}, []string{"c"}, [][]float64{{math.NaN()}}, "no finite data"},
		{"log scale", Figure{LogY: true}, []string{"r"}, []string{"c"}, [][]float64{{1}}, "do not support LogY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "heat.png")
			err := Heatmap(path, tt.fig, tt.rows, tt.cols, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Heatmap() error = %v, want it to contain %q", err, tt.wantMsg)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed call left %s", path)
			}
		})
	}
}

func TestNameTicks(t *testing.T) {
	tests := []struct {
		n, wantLabelled int
	}{
		{1, 1}, {25, 25}, {26, 13}, {100, 25}, {101, 21},
	}
	for _, tt := range tests {
		names := make([]string, tt.n)
		for i := range names {
			names[i] = fmt.Sprint(i)
		}
		ts := nameTicks(names, func(i int) float64 { return float64(i) })
		labelled := 0
		for i, tk := range ts {
			if tk.Value != float64(i) {
				t.Fatalf("n=%d: tick %d at %g", tt.n, i, tk.Value)
			}
			if tk.Label != "" {
				labelled++
			}
		}
		if len(ts) != tt.n || labelled != tt.wantLabelled {
			t.Errorf("n=%d: %d ticks, %d labelled; want %d, %d", tt.n, len(ts), labelled, tt.n, tt.wantLabelled)
		}
	}
}
