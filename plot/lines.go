package plot

import (
	"errors"
	"fmt"
	"math"
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
	// Smooth, in [0, 1), draws the series as its exponential moving average
	// of that weight (see EMA) at full strength over the raw curve drawn
	// faint. Zero takes Figure.Smooth; a negative value draws the raw curve
	// alone whatever Figure.Smooth says.
	Smooth float64
}

// smoothWeight returns the EMA weight the series is drawn with in fig (0:
// not smoothed).
func (s Series) smoothWeight(fig Figure) float64 {
	switch {
	case s.Smooth < 0:
		return 0
	case s.Smooth > 0:
		return s.Smooth
	}
	return fig.Smooth
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
	// rawAlpha is the opacity (of 255) of the raw curve under a smoothed
	// one, and rawWidth its width.
	rawAlpha = 0x40
	rawWidth = vg.Length(1)
)

// Lines writes a line chart of the series to path as a PNG. Series i is
// drawn in the i-th of 12 distinct colours, solid (or dashed if Dashed);
// series 13 to 24 reuse the colours dotted, 25 to 36 dash-dotted, 37 to 48
// long-dashed. A legend names the series when there is more than one or any
// is smoothed. Points with a NaN or infinite coordinate (and, with LogY,
// points with Y <= 0) are skipped and their neighbours joined; a series left
// with no point keeps its legend entry, marked "(no data)".
//
// A smoothed series (Series.Smooth or Figure.Smooth) is drawn as the EMA of
// its drawable points, in their given order, over its raw curve at a
// quarter opacity, and its legend entry says "EMA" and the weight.
//
// It is an error if there are no series, a series is empty or has
// len(X) != len(Y), a smoothing weight is outside [0, 1), or no series has
// a point to draw.
func Lines(path string, fig Figure, series ...Series) error {
	if len(series) == 0 {
		return fmt.Errorf("plot %s: no series", path)
	}
	pts := make([]plotter.XYs, len(series))
	smoothed := make([]plotter.XYs, len(series)) // nil: not smoothed
	drawable, anySmoothed := false, false
	for i, s := range series {
		if len(s.X) == 0 {
			return fmt.Errorf("plot %s: series %q is empty", path, s.Name)
		}
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %s: series %q has %d x values and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		if s.Smooth > 0 {
			if err := checkSmooth(s.Smooth); err != nil {
				return fmt.Errorf("plot %s: series %q: %w", path, s.Name, err)
			}
		}
		for j := range s.X {
			if drawablePoint(fig, s.X[j], s.Y[j]) {
				pts[i] = append(pts[i], plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		drawable = drawable || len(pts[i]) > 0
		if w := s.smoothWeight(fig); w > 0 {
			anySmoothed = true
			smoothed[i] = smoothPoints(pts[i], w)
		}
	}
	if !drawable {
		return fmt.Errorf("plot %s: %w", path, errNoData)
	}
	return render(path, fig, func(c draw.Canvas) error {
		p := fig.newPlot()
		p.Add(plotter.NewGrid())
		legend := gplot.NewLegend()
		// All raw curves first, so that no faint line covers a smoothed one.
		for i := range series {
			if smoothed[i] != nil && len(pts[i]) > 1 {
				p.Add(&plotter.Line{XYs: pts[i], LineStyle: draw.LineStyle{
					Color: translucent(seriesColor(i), rawAlpha),
					Width: rawWidth,
				}})
			}
		}
		for i, s := range series {
			xys, name := pts[i], s.Name
			if smoothed[i] != nil {
				xys = smoothed[i]
				name = fmt.Sprintf("%s (EMA %g)", s.Name, s.smoothWeight(fig))
			}
			l := &plotter.Line{XYs: xys, LineStyle: lineStyle(i, s.Dashed)}
			addLine(p, l)
			legend.Add(legendName(name, len(pts[i]) > 0), l)
		}
		n := len(series)
		if anySmoothed {
			n = max(n, 2) // a legend says the curve is smoothed
		}
		drawPlot(c, p, legendFor(&legend, n))
		return nil
	})
}

// EMA returns ys smoothed by an exponential moving average of the given
// weight, debiased as TensorBoard's smoothing is: with a running value
// starting at 0, each finite y updates it to weight·last + (1−weight)·y,
// and the smoothed value is it divided by 1 − weight^n, n being the number
// of finite values so far, so the start is not pulled toward zero. NaN and
// ±Inf values are passed through and do not enter the average. Weight 0
// returns a copy of ys; larger weights smooth more. weight must be in
// [0, 1).
func EMA(ys []float64, weight float64) []float64 {
	out := make([]float64, len(ys))
	last, n := 0.0, 0
	for i, y := range ys {
		if !finite(y) {
			out[i] = y
			continue
		}
		n++
		last = weight*last + (1-weight)*y
		out[i] = last / (1 - math.Pow(weight, float64(n)))
	}
	return out
}

// smoothPoints returns pts with their Y replaced by its EMA.
func smoothPoints(pts plotter.XYs, weight float64) plotter.XYs {
	ys := make([]float64, len(pts))
	for i, p := range pts {
		ys[i] = p.Y
	}
	out := make(plotter.XYs, len(pts))
	for i, y := range EMA(ys, weight) {
		out[i] = plotter.XY{X: pts[i].X, Y: y}
	}
	return out
}

// checkSmooth reports whether w is a usable EMA weight.
func checkSmooth(w float64) error {
	if !(w >= 0 && w < 1) {
		return fmt.Errorf("smoothing weight %g: must be in [0, 1)", w)
	}
	return nil
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

func legendName(name string, hasData bool) string {
	if hasData {
		return name
	}
	return name + " (no data)"
}
