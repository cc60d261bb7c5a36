package plot

import (
	"errors"
	"fmt"
	"math"
	"slices"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg/draw"
)

// BarGroup is one set of bars of a grouped bar chart: one bar per label,
// all in one colour. Every group of a chart has the same Labels, which
// become the categories on the X axis, e.g. the configurations of a sweep.
type BarGroup struct {
	Name   string
	Labels []string
	Values []float64
	// Err, if not nil, draws an error bar of ±Err[i] on bar i.
	Err []float64
}

// groupSpan is the share of a category's width taken by its bars.
const groupSpan = 0.8

// Bars writes a grouped bar chart to path as a PNG. Bars rise from zero
// (negative values hang below it); within a category the groups stand side
// by side in argument order, in the colours Lines uses, with a legend when
// there is more than one group. A non-finite value draws no bar and a
// non-finite Err no error bar. Long or many labels are slanted. It is an
// error if there are no groups, a group has no labels, the groups' labels
// differ, Values or a non-nil Err does not match Labels in length, an Err
// is negative, no value is finite, or fig.LogY is set.
func Bars(path string, fig Figure, groups ...BarGroup) error {
	if err := checkBars(fig, groups); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	labels := groups[0].Labels
	n, g := float64(len(labels)), float64(len(groups))
	width := groupSpan / g
	return render(path, fig, func(c draw.Canvas) error {
		p := fig.newPlot()
		legend := gplot.NewLegend()
		grid := plotter.NewGrid()
		grid.Vertical.Color = nil // a line between a category's bars is noise
		p.Add(grid)
		p.NominalX(labels...)
		p.X.Min, p.X.Max = -0.5, n-0.5
		if w, _, _ := fig.size(); slantLabels(labels, w) {
			p.X.Tick.Label.Rotation = math.Pi / 6
			p.X.Tick.Label.XAlign = text.XRight
			p.X.Tick.Label.YAlign = text.YCenter
		}
		for gi, grp := range groups {
			var rects []plotter.XYer
			var ends plotter.XYs
			var errs plotter.YErrors
			for i, v := range grp.Values {
				if !finite(v) {
					continue
				}
				// Bar i of group gi is centred at i plus its group's offset.
				x := float64(i) + (float64(gi)-(g-1)/2)*width
				x0, x1 := x-width/2, x+width/2
				rects = append(rects, plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: v}, {X: x0, Y: v}})
				if grp.Err != nil && finite(grp.Err[i]) {
					ends = append(ends, plotter.XY{X: x, Y: v})
					errs = append(errs, struct{ Low, High float64 }{grp.Err[i], grp.Err[i]})
				}
			}
			poly, err := plotter.NewPolygon(rects...)
			if err != nil {
				return fmt.Errorf("group %q: %w", grp.Name, err)
			}
			poly.Color = seriesColor(gi)
			poly.LineStyle.Width = 0
			if len(rects) > 0 {
				p.Add(poly)
			}
			if len(ends) > 0 {
				eb, err := plotter.NewYErrorBars(errorPoints{ends, errs})
				if err != nil {
					return fmt.Errorf("group %q: %w", grp.Name, err)
				}
				p.Add(eb)
			}
			legend.Add(legendName(grp.Name, len(rects) > 0), poly)
		}
		drawPlot(c, p, legendFor(&legend, len(groups)))
		return nil
	})
}

func checkBars(fig Figure, groups []BarGroup) error {
	if fig.LogY {
		return errors.New("bar charts do not support LogY")
	}
	if len(groups) == 0 {
		return errors.New("no bar groups")
	}
	labels := groups[0].Labels
	drawable := false
	for _, grp := range groups {
		switch {
		case len(grp.Labels) == 0:
			return fmt.Errorf("bar group %q has no labels", grp.Name)
		case !slices.Equal(grp.Labels, labels):
			return fmt.Errorf("bar group %q has labels %q, want %q as in group %q", grp.Name, grp.Labels, labels, groups[0].Name)
		case len(grp.Values) != len(labels):
			return fmt.Errorf("bar group %q has %d labels and %d values", grp.Name, len(labels), len(grp.Values))
		case grp.Err != nil && len(grp.Err) != len(labels):
			return fmt.Errorf("bar group %q has %d labels and %d errors", grp.Name, len(labels), len(grp.Err))
		}
		for i, e := range grp.Err {
			if e < 0 {
				return fmt.Errorf("bar group %q: negative error %g for %q", grp.Name, e, labels[i])
			}
		}
		for _, v := range grp.Values {
			drawable = drawable || finite(v)
		}
	}
	if !drawable {
		return errNoData
	}
	return nil
}

// slantLabels reports whether n category labels, set level along an axis
// of a figure widthIn inches wide, would run into each other. It estimates
// a character as 0.1 in and the axis as 3/4 of the figure.
func slantLabels(labels []string, widthIn float64) bool {
	longest := 0
	for _, l := range labels {
		longest = max(longest, len(l))
	}
	return float64(longest)*0.1 > 0.75*widthIn/float64(len(labels))
}

// errorPoints gives plotter.NewYErrorBars the bar tops and their errors.
type errorPoints struct {
	plotter.XYs
	plotter.YErrors
}
