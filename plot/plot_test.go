package plot

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	gplot "gonum.org/v1/plot"
)

// readPNG decodes the PNG at path, failing the test if it is not one.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	return img
}

// countNear returns how many pixels of img are within tol (per 8-bit
// channel) of want.
func countNear(img image.Image, want color.Color, tol int) int {
	w := color.NRGBAModel.Convert(want).(color.NRGBA)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if absDiff(c.R, w.R) <= tol && absDiff(c.G, w.G) <= tol && absDiff(c.B, w.B) <= tol {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// overWhite is c at opacity alpha/255 composited over a white background.
func overWhite(c color.Color, alpha uint8) color.Color {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	mix := func(v uint8) uint8 {
		a := float64(alpha) / 255
		return uint8(math.Round(float64(v)*a + 255*(1-a)))
	}
	return color.NRGBA{R: mix(n.R), G: mix(n.G), B: mix(n.B), A: 255}
}

// checkFigure asserts that path holds a PNG of the given size that is not a
// blank page and shows each colour in inks on at least minPixels pixels.
func checkFigure(t *testing.T, path string, wantW, wantH int, inks []color.Color, minPixels int) {
	t.Helper()
	img := readPNG(t, path)
	if got := img.Bounds().Size(); got.X != wantW || got.Y != wantH {
		t.Errorf("%s is %dx%d px, want %dx%d", filepath.Base(path), got.X, got.Y, wantW, wantH)
	}
	if n := countNear(img, color.White, 0); n == wantW*wantH {
		t.Errorf("%s is blank (all white)", filepath.Base(path))
	}
	for i, ink := range inks {
		if n := countNear(img, ink, 6); n < minPixels {
			t.Errorf("%s: colour %d %v on %d pixels, want >= %d", filepath.Base(path), i, ink, n, minPixels)
		}
	}
}

func TestFigureSize(t *testing.T) {
	tests := []struct {
		name         string
		fig          Figure
		wantW, wantH int
		wantErr      bool
	}{
		{"defaults", Figure{}, 900, 600, false},
		{"custom", Figure{Width: 3, Height: 2, DPI: 100}, 300, 200, false},
		{"negative width", Figure{Width: -1}, 0, 0, true},
		{"NaN height", Figure{Height: math.NaN()}, 0, 0, true},
		{"negative dpi", Figure{DPI: -5}, 0, 0, true},
		{"points passed as inches", Figure{Width: 432, Height: 288}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fig.validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("validate() = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if w, h := tt.fig.pixels(); w != tt.wantW || h != tt.wantH {
				t.Errorf("pixels() = %dx%d, want %dx%d", w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

// writers calls each plotting function with valid input, for the tests
// that are about files rather than pictures.
var writers = map[string]func(path string, fig Figure) error{
	"Lines": func(path string, fig Figure) error {
		return Lines(path, fig, Series{Name: "a", X: []float64{0, 1, 2}, Y: []float64{3, 1, 2}})
	},
	"Bands": func(path string, fig Figure) error {
		return Bands(path, fig, Band{Name: "a", X: []float64{0, 1, 2}, Mean: []float64{3, 1, 2}, Std: []float64{1, 1, 1}})
	},
	"Bars": func(path string, fig Figure) error {
		return Bars(path, fig, BarGroup{Name: "a", Labels: []string{"x", "y"}, Values: []float64{1, 2}})
	},
	"Heatmap": func(path string, fig Figure) error {
		return Heatmap(path, fig, []string{"r"}, []string{"a", "b"}, [][]float64{{1, 2}})
	},
	"Histogram": func(path string, fig Figure) error {
		return Histogram(path, fig, []float64{1, 2, 2, 3}, 3)
	},
}

func TestWritesAreAtomic(t *testing.T) {
	for name, write := range writers {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()

			// A good write replaces an existing file with a PNG.
			path := filepath.Join(dir, "fig.png")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := write(path, Figure{Title: name}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			readPNG(t, path)

			// A write that fails while rendering (the figure is invalid)
			// leaves the file as it was.
			before, _ := os.ReadFile(path)
			if err := write(path, Figure{Width: -1}); err == nil {
				t.Fatal("invalid figure: want error")
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("failed write changed the existing file")
			}

			// A write that fails at the file system (the target is a
			// directory) leaves neither the target nor a temporary file.
			sub := filepath.Join(dir, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := write(sub, Figure{}); err == nil {
				t.Fatal("write over a directory: want error")
			}
			if err := write(filepath.Join(dir, "missing", "fig.png"), Figure{}); err == nil {
				t.Fatal("write into a missing directory: want error")
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() != "fig.png" && e.Name() != "sub" {
					t.Errorf("left behind %s", e.Name())
				}
			}
		})
	}
}

func TestTickLabels(t *testing.T) {
	// labels returns the labels of the ticks within [min, max], the ones
	// an axis shows.
	labels := func(ts []gplot.Tick, min, max float64) []string {
		var s []string
		for _, t := range ts {
			if t.Label != "" && t.Value >= min && t.Value <= max {
				s = append(s, t.Label)
			}
		}
		return s
	}
	tests := []struct {
		name     string
		ticker   gplot.Ticker
		min, max float64
		want     []string
	}{
		{"steps", plainTicks{}, 0, 590, []string{"0", "250", "500"}},
		{"fractions", plainTicks{}, -2.6, 2.6, []string{"-2.5", "0", "2.5"}},
		{"log, short range", logTicks{}, 0.9, 4.5, []string{"1", "2", "3", "4"}},
		{"log, decades", logTicks{}, 0.5, 2000, []string{"1", "10", "100", "1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := labels(tt.ticker.Ticks(tt.min, tt.max), tt.min, tt.max); !slices.Equal(got, tt.want) {
				t.Errorf("labels = %q, want %q", got, tt.want)
			}
		})
	}
}
