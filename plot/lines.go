package plot

import (
	"errors"
	"fmt"
	"sort"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one line of a line chart, such as a loss curve.
type Series struct {
	Name string
	X, Y []float64
	// Dashed draws the line dashed, e.g. for validation next to training.
	Dashed bool
}

// Band is a mean curve with a shaded ±Std band around it, such as a metric
// averaged over seeds.
type Band struct {
	Name    string
	X, Mean []float64
	Std     []float64 // nil draws the mean line alone
}

const (
	lineWidth = vg.Length(1.5)
	// bandAlpha is the opacity (of 255) of a band's shading.
	bandAlpha = 0x50
)

var dashes = []vg.Length{vg.Points(6), vg.Points(3)}

// Lines writes a line chart of the series to path as a PNG. Series i is
// drawn in the i-th colour of gonum's plotutil palette, and a legend names
// the series when there is more than one. Points with a NaN or infinite
// coordinate (and, with LogY, points with Y <= 0) are skipped and their
// neighbours joined; a series left with no point keeps its legend entry,
// marked "(no data)". It is an error if there are no series, a series is
// empty or has len(X) != len(Y), or no series has a point to draw.
func Lines(path string, fig Figure, series ...Series) error {
	if len(series) == 0 {
		return fmt.Errorf("plot %s: no series", path)
	}
	pts := make([]plotter.XYs, len(series))
	drawable := false
	for i, s := range series {
		if len(s.X) == 0 {
			return fmt.Errorf("plot %s: series %q is empty", path, s.Name)
		}
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %s: series %q has %d x values and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		for j := range s.X {
			if drawablePoint(fig, s.X[j], s.Y[j]) {
				pts[i] = append(pts[i], plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		drawable = drawable || len(pts[i]) > 0
	}
	if !drawable {
		return fmt.Errorf("plot %s: %w", path, errNoData)
	}
	return render(path, fig, func(c draw.Canvas) error {
		p := fig.newPlot()
		p.Add(plotter.NewGrid())
		legend := gplot.NewLegend()
		for i, s := range series {
			l := &plotter.Line{XYs: pts[i], LineStyle: lineStyle(i, s.Dashed)}
			addLine(p, l)
			legend.Add(legendName(s.Name, len(pts[i]) > 0), l)
		}
		drawPlot(c, p, legendFor(&legend, len(series)))
		return nil
	})
}

// Bands writes a chart of mean curves with shaded ±std bands to path as a
// PNG, in the colours Lines uses. Each band's points are sorted by X. Points
// with a non-finite X or Mean are skipped; a non-finite Std draws no
// shading at that point. With LogY, points with Mean <= 0 are skipped and a
// lower edge Mean−Std at or below zero is drawn at Mean/10. It is an error
// if there are no bands, a band is empty, len(Mean) != len(X), Std is
// neither nil nor of len(X), a Std is negative, or no band has a point to
// draw.
func Bands(path string, fig Figure, bands ...Band) error {
	if len(bands) == 0 {
		return fmt.Errorf("plot %s: no bands", path)
	}
	means := make([]plotter.XYs, len(bands))
	shades := make([]plotter.XYs, len(bands))
	drawable := false
	for i, b := range bands {
		if err := b.check(); err != nil {
			return fmt.Errorf("plot %s: band %q: %w", path, b.Name, err)
		}
		means[i], shades[i] = b.outline(fig)
		drawable = drawable || len(means[i]) > 0
	}
	if !drawable {
		return fmt.Errorf("plot %s: %w", path, errNoData)
	}
	return render(path, fig, func(c draw.Canvas) error {
		p := fig.newPlot()
		p.Add(plotter.NewGrid())
		legend := gplot.NewLegend()
		for i, b := range bands {
			l := &plotter.Line{XYs: means[i], LineStyle: lineStyle(i, false)}
			thumbs := []gplot.Thumbnailer{l}
			if len(shades[i]) > 0 {
				poly, err := plotter.NewPolygon(shades[i])
				if err != nil {
					return fmt.Errorf("band %q: %w", b.Name, err)
				}
				poly.Color = translucent(seriesColor(i), bandAlpha)
				poly.LineStyle.Width = 0
				p.Add(poly)
				thumbs = []gplot.Thumbnailer{poly, l}
			}
			addLine(p, l)
			legend.Add(legendName(b.Name, len(means[i]) > 0), thumbs...)
		}
		drawPlot(c, p, legendFor(&legend, len(bands)))
		return nil
	})
}

func (b Band) check() error {
	switch {
	case len(b.X) == 0:
		return errors.New("empty")
	case len(b.Mean) != len(b.X):
		return fmt.Errorf("%d x values and %d means", len(b.X), len(b.Mean))
	case b.Std != nil && len(b.Std) != len(b.X):
		return fmt.Errorf("%d x values and %d stds", len(b.X), len(b.Std))
	}
	for i, s := range b.Std {
		if s < 0 {
			return fmt.Errorf("negative std %g at index %d", s, i)
		}
	}
	return nil
}

// outline returns the drawable mean points of b sorted by X, and the closed
// outline of its shading (upper edge left to right, lower edge back), which
// is empty when b has no Std.
func (b Band) outline(fig Figure) (mean, shade plotter.XYs) {
	idx := make([]int, 0, len(b.X))
	for i := range b.X {
		if drawablePoint(fig, b.X[i], b.Mean[i]) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, c int) bool { return b.X[idx[a]] < b.X[idx[c]] })
	for _, i := range idx {
		mean = append(mean, plotter.XY{X: b.X[i], Y: b.Mean[i]})
	}
	if b.Std == nil || len(idx) == 0 {
		return mean, nil
	}
	lower := make(plotter.XYs, 0, len(idx))
	for _, i := range idx {
		s := b.Std[i]
		if !finite(s) {
			s = 0
		}
		lo := b.Mean[i] - s
		if fig.LogY && lo <= 0 {
			lo = b.Mean[i] / 10
		}
		shade = append(shade, plotter.XY{X: b.X[i], Y: b.Mean[i] + s})
		lower = append(lower, plotter.XY{X: b.X[i], Y: lo})
	}
	for i := len(lower) - 1; i >= 0; i-- {
		shade = append(shade, lower[i])
	}
	return mean, shade
}

// addLine adds l to p, or a dot in its colour if it is a single point,
// which a line would not show.
func addLine(p *gplot.Plot, l *plotter.Line) {
	switch len(l.XYs) {
	case 0:
	case 1:
		p.Add(&plotter.Scatter{XYs: l.XYs, GlyphStyle: draw.GlyphStyle{
			Color:  l.Color,
			Radius: vg.Points(3),
			Shape:  draw.CircleGlyph{},
		}})
	default:
		p.Add(l)
	}
}

// drawablePoint reports whether (x, y) can be placed on the figure's axes.
func drawablePoint(fig Figure, x, y float64) bool {
	return finite(x) && finite(y) && (!fig.LogY || y > 0)
}

func lineStyle(i int, dashed bool) draw.LineStyle {
	s := draw.LineStyle{Color: seriesColor(i), Width: lineWidth}
	if dashed {
		s.Dashes = dashes
	}
	return s
}

func legendName(name string, hasData bool) string {
	if hasData {
		return name
	}
	return name + " (no data)"
}
