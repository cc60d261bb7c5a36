package plot

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBars(t *testing.T) {
	labels := []string{"V128", "V96m", "C50", "V128m", "X2"}
	mean := BarGroup{Name: "seed mean", Labels: labels, Values: []float64{1.5, 1.7, 1.6, 1.45, 1.4}, Err: []float64{.02, .03, .02, .01, .02}}
	boot := BarGroup{Name: "bootstrap", Labels: labels, Values: []float64{1.52, 1.69, 1.61, 1.46, 1.41}}
	mixed := BarGroup{Name: "delta", Labels: []string{"a", "b", "c"}, Values: []float64{-0.3, 0.5, math.NaN()}, Err: []float64{0.1, math.Inf(1), 0.1}}
	long := BarGroup{Name: "long", Labels: []string{"C50-scale", "C50-fusion", "C50-shared", "V128-reference", "X2-expansion", "V96m-matched"}, Values: []float64{1, 2, 3, 4, 5, 6}}

	tests := []struct {
		name   string
		groups []BarGroup
	}{
		{"one group with errors", []BarGroup{mean}},
		{"two groups", []BarGroup{mean, boot}},
		{"negative and missing values", []BarGroup{mixed}},
		{"slanted labels", []BarGroup{long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bars.png")
			if err := Bars(path, Figure{Title: tt.name, YLabel: "CE"}, tt.groups...); err != nil {
				t.Fatal(err)
			}
			var inks []color.Color
			for i := range tt.groups {
				inks = append(inks, seriesColor(i))
			}
			// Bars are areas: each group covers thousands of pixels.
			checkFigure(t, path, 900, 600, inks, 2000)
		})
	}
}

func TestBarsErrors(t *testing.T) {
	ab := []string{"a", "b"}
	tests := []struct {
		name    string
		fig     Figure
		groups  []BarGroup
		wantMsg string
	}{
		{"no groups", Figure{}, nil, "no bar groups"},
		{"no labels", Figure{}, []BarGroup{{Name: "g"}}, `bar group "g" has no labels`},
		{"labels differ", Figure{}, []BarGroup{{Name: "g", Labels: ab, Values: []float64{1, 2}}, {Name: "h", Labels: []string{"a", "c"}, Values: []float64{1, 2}}}, `bar group "h" has labels`},
		{"values length", Figure{}, []BarGroup{{Name: "g", Labels: ab, Values: []float64{1}}}, "2 labels and 1 values"},
		{"err length", Figure{}, []BarGroup{{Name: "g", Labels: ab, Values: []float64{1, 2}, Err: []float64{1}}}, "2 labels and 1 errors"},
		{"negative err", Figure{}, []BarGroup{{Name: "g", Labels: ab, Values: []float64{1, 2}, Err: []float64{1, -1}}}, `negative error -1 for "b"`},
		{"nothing finite", Figure{}, []BarGroup{{Name: "g", Labels: ab, Values: []float64{math.NaN(), math.Inf(1)}}}, "no finite data"},
		{"log scale", Figure{LogY: true}, []BarGroup{{Name: "g", Labels: ab, Values: []float64{1, 2}}}, "do not support LogY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bars.png")
			err := Bars(path, tt.fig, tt.groups...)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Bars() error = %v, want it to contain %q", err, tt.wantMsg)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed call left %s", path)
			}
		})
	}
}

func TestSlantLabels(t *testing.T) {
	tests := []struct {
		labels []string
		width  float64
		want   bool
	}{
		{[]string{"a", "b", "c"}, 6, false},
		{[]string{"V128", "V96m", "C50", "V128m", "X2"}, 6, false},
		{[]string{"V128", "V96m", "C50", "V128m", "X2", "C50-scale", "C50-fusion", "C50-shared"}, 6, true},
		{[]string{"C50-fusion", "C50-shared"}, 6, false},
		{[]string{"C50-fusion", "C50-shared"}, 1, true},
	}
	for _, tt := range tests {
		if got := slantLabels(tt.labels, tt.width); got != tt.want {
			t.Errorf("slantLabels(%q, %g) = %v, want %v", tt.labels, tt.width, got, tt.want)
		}
	}
}
