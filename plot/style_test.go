package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/plot/vg"
)

// cieLab converts an sRGB colour to CIELAB (D65 white).
func cieLab(c color.Color) (l, a, b float64) {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	lin := func(v uint8) float64 {
		c := float64(v) / 255
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	r, g, bl := lin(n.R), lin(n.G), lin(n.B)
	x := (0.4124*r + 0.3576*g + 0.1805*bl) / 0.95047
	y := 0.2126*r + 0.7152*g + 0.0722*bl
	z := (0.0193*r + 0.1192*g + 0.9505*bl) / 1.08883
	f := func(t float64) float64 {
		if t > 216.0/24389 {
			return math.Cbrt(t)
		}
		return (24389.0/27*t + 16) / 116
	}
	return 116*f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))
}

// deltaE is the CIE76 colour difference: about 2 is just noticeable, 25 and
// more is a different colour at a glance.
func deltaE(c1, c2 color.Color) float64 {
	l1, a1, b1 := cieLab(c1)
	l2, a2, b2 := cieLab(c2)
	return math.Sqrt((l1-l2)*(l1-l2) + (a1-a2)*(a1-a2) + (b1-b2)*(b1-b2))
}

func TestPaletteDistinct(t *testing.T) {
	if len(seriesPalette) < 12 {
		t.Fatalf("%d colours, want at least 12", len(seriesPalette))
	}
	for i := range seriesPalette {
		if d := deltaE(seriesColor(i), color.White); d < 40 {
			t.Errorf("colour %d %v: ΔE %.1f from the white background, want >= 40", i, seriesColor(i), d)
		}
		for j := range i {
			if d := deltaE(seriesColor(i), seriesColor(j)); d < 25 {
				t.Errorf("colours %d %v and %d %v: ΔE %.1f, want >= 25", j, seriesColor(j), i, seriesColor(i), d)
			}
		}
	}
}

func TestSeriesStylesDistinct(t *testing.T) {
	key := func(i int, dashed bool) string {
		s := lineStyle(i, dashed)
		return fmt.Sprint(color.NRGBAModel.Convert(s.Color), s.Dashes)
	}
	// No two of the first 48 series look the same, nor does any dashed
	// series (e.g. eval beside train) look like an automatic one.
	n := len(seriesPalette) * len(cyclePatterns)
	seen := map[string]int{}
	for i := range n {
		for _, dashed := range []bool{false, true} {
			if dashed && i >= len(seriesPalette) {
				continue // past the palette a dashed series takes its colour's dashes
			}
			k := key(i, dashed)
			if j, ok := seen[k]; ok {
				t.Errorf("series %d (dashed %v) looks like series %d: %s", i, dashed, j, k)
			}
			seen[k] = i
		}
	}
	for i := range len(seriesPalette) {
		if lineStyle(i, false).Dashes != nil {
			t.Errorf("series %d is not solid", i)
		}
	}
	// The first 16 series: 12 solid colours, then 4 dotted.
	for i := 12; i < 16; i++ {
		if s := lineStyle(i, false); !slices.Equal(s.Dashes, cyclePatterns[1]) || s.Color != seriesColor(i-12) {
			t.Errorf("series %d: %v %v", i, s.Color, s.Dashes)
		}
	}
	// Every pattern's cycle fits in a legend sample.
	for i, p := range append(slices.Clone(cyclePatterns), dashedPattern) {
		var cycle vg.Length
		for _, d := range p {
			cycle += d
		}
		if cycle > legendThumbWidth {
			t.Errorf("pattern %d: cycle %v longer than the legend sample %v", i, cycle, legendThumbWidth)
		}
	}
}

func TestEMA(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		ys     []float64
		weight float64
		want   []float64
	}{
		// Worked by hand: running value 0.5, 1.75, 3.375 over 1, 3, 5,
		// divided by 1−0.5, 1−0.25, 1−0.125.
		{"weight 0.5", []float64{1, 3, 5}, 0.5, []float64{1, 7.0 / 3, 27.0 / 7}},
		// 0.1·2 = 0.2 → /0.1 = 2; 0.9·0.2 + 0.1·4 = 0.58 → /0.19.
		{"weight 0.9", []float64{2, 4}, 0.9, []float64{2, 0.58 / 0.19}},
		{"non-finite passed through, not averaged", []float64{1, nan, 3, inf, 5}, 0.5, []float64{1, nan, 7.0 / 3, inf, 27.0 / 7}},
		{"weight 0 is the identity", []float64{3, -1, 4}, 0, []float64{3, -1, 4}},
		{"constant stays constant", []float64{2, 2, 2, 2}, 0.9, []float64{2, 2, 2, 2}},
		{"empty", nil, 0.9, []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EMA(tt.ys, tt.weight)
			if len(got) != len(tt.want) {
				t.Fatalf("EMA = %v, want %v", got, tt.want)
			}
			for i := range got {
				if math.IsNaN(tt.want[i]) != math.IsNaN(got[i]) || !math.IsNaN(got[i]) && math.Abs(got[i]-tt.want[i]) > 1e-12 {
					t.Errorf("EMA[%d] = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// noisy returns a noisy decaying curve of n points.
func noisy(n int) (x, y []float64) {
	for i := range n {
		x = append(x, float64(i))
		y = append(y, 1+3*math.Exp(-float64(i)/40)+0.6*math.Sin(float64(i)*2.7))
	}
	return x, y
}

// rawNoise bounds the pixels of the faint colour that the anti-aliased
// edges of the noisy curve in TestLinesSmoothed have when drawn unsmoothed.
const rawNoise = 2000

func TestLinesSmoothed(t *testing.T) {
	x, y := noisy(200)
	faint := overWhite(seriesColor(0), rawAlpha)
	tests := []struct {
		name      string
		fig       Figure
		series    Series
		wantFaint bool
	}{
		{"figure smoothing", Figure{Smooth: 0.9}, Series{Name: "train", X: x, Y: y}, true},
		{"series smoothing", Figure{}, Series{Name: "train", X: x, Y: y, Smooth: 0.6}, true},
		{"series turns it off", Figure{Smooth: 0.9}, Series{Name: "train", X: x, Y: y, Smooth: -1}, false},
		{"none", Figure{}, Series{Name: "train", X: x, Y: y}, false},
		{"log scale", Figure{Smooth: 0.9, LogY: true}, Series{Name: "train", X: x, Y: y}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "smooth.png")
			if err := Lines(path, tt.fig, tt.series); err != nil {
				t.Fatal(err)
			}
			checkFigure(t, path, 900, 600, []color.Color{seriesColor(0)}, 50)
			n := countNear(readPNG(t, path), faint, 6)
			t.Logf("%d faint pixels", n)
			// Anti-aliased edges of a full line blend to the faint colour
			// on some pixels; a drawn raw curve covers many more.
			if tt.wantFaint && n < 2*rawNoise {
				t.Errorf("faint raw curve on %d pixels, want >= %d", n, 2*rawNoise)
			}
			if !tt.wantFaint && n >= rawNoise {
				t.Errorf("unsmoothed figure has %d faint pixels, want < %d", n, rawNoise)
			}
		})
	}
	for _, w := range []float64{1, 1.5, math.NaN()} {
		if err := Lines(filepath.Join(t.TempDir(), "bad.png"), Figure{Smooth: w}, Series{Name: "a", X: x, Y: y}); err == nil {
			t.Errorf("Figure.Smooth %g: want error", w)
		}
		if err := Lines(filepath.Join(t.TempDir(), "bad.png"), Figure{}, Series{Name: "a", X: x, Y: y, Smooth: w}); err == nil && w > 0 {
			t.Errorf("Series.Smooth %g: want error", w)
		}
	}
}

// stripWidth measures, on row y, the run of non-white pixels that ends
// nearest the right edge of img: the colour scale of a heat map.
func stripWidth(img image.Image, y int) int {
	b := img.Bounds()
	x := b.Max.X - 1
	white := func(x int) bool {
		r, g, bl, _ := img.At(x, y).RGBA()
		return r > 0xf000 && g > 0xf000 && bl > 0xf000
	}
	for x >= b.Min.X && white(x) {
		x--
	}
	n := 0
	for x >= b.Min.X && !white(x) {
		n++
		x--
	}
	return n
}

func TestHeatmapColorLabel(t *testing.T) {
	// Values of both signs take the blue–white–red map and 21 columns turn
	// off the cell labels, so the only black is text, ticks and axes.
	rows := []string{"a", "b", "c"}
	var cols []string
	values := make([][]float64, len(rows))
	for c := range 21 {
		cols = append(cols, fmt.Sprint(c))
		for r := range rows {
			values[r] = append(values[r], math.Sin(float64(c+5*r)))
		}
	}
	draw := func(label string) image.Image {
		path := filepath.Join(t.TempDir(), "heat.png")
		if err := Heatmap(path, Figure{Title: "load", ColorLabel: label}, rows, cols, values); err != nil {
			t.Fatal(err)
		}
		return readPNG(t, path)
	}
	plain, labelled := draw(""), draw("tokens routed (share of batch)")
	mid := plain.Bounds().Dy() / 2
	if w0, w1 := stripWidth(plain, mid), stripWidth(labelled, mid); w0 < 20 || abs(w0-w1) > 2 {
		t.Errorf("colour scale %d px wide without a label and %d px with one, want the same (> 20)", w0, w1)
	}
	if n0, n1 := countNear(plain, color.Black, 0x40), countNear(labelled, color.Black, 0x40); n1 < n0+300 {
		t.Errorf("%d black pixels with a label, %d without: label not drawn", n1, n0)
	}
}

func abs(x int) int { return max(x, -x) }

// TestDemoFigure draws a figure with 16 smoothed series labelled from
// metric keys, and a labelled heat map, and checks both are PNGs showing
// each series' colour.
func TestDemoFigure(t *testing.T) {
	dir := t.TempDir()
	x, y := noisy(150)
	var series []Series
	var inks []color.Color
	for i := range 16 {
		ys := make([]float64, len(y))
		for j := range y {
			ys[j] = y[j] + 0.4*float64(i)
		}
		series = append(series, Series{Name: fmt.Sprintf("run %d", i), X: x, Y: ys})
		if i < len(seriesPalette) {
			inks = append(inks, seriesColor(i))
		}
	}
	fig := Figure{Title: "Loss of 16 runs", XLabel: "step", YLabel: Label("train.loss"), Smooth: 0.9, Width: 8, Height: 5}
	path := filepath.Join(dir, "demo_lines.png")
	if err := Lines(path, fig, series...); err != nil {
		t.Fatal(err)
	}
	checkFigure(t, path, 1200, 750, inks, 30)

	hpath := filepath.Join(dir, "demo_heat.png")
	err := Heatmap(hpath, Figure{Title: "Router load", XLabel: "group", YLabel: "router", ColorLabel: "share of tokens"},
		[]string{"r0", "r1"}, []string{"g0", "g1", "g2"}, [][]float64{{0.2, 0.5, 0.3}, {0.4, 0.4, 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	readPNG(t, hpath)
}
