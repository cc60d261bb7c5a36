package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Heat map appearance.
const (
	// annotateCells is the largest table whose cells are labelled with their
	// values; annotateCols caps its number of columns.
	annotateCells = 300
	annotateCols  = 20
	// maxTickLabels is the most row or column names written on an axis;
	// beyond it every k-th name is written.
	maxTickLabels = 25
	// colorBarWidth is the width of the colour scale strip on the right.
	colorBarWidth = vg.Length(0.9 * vg.Inch)
)

// nanColor fills the cells of a heat map whose value is NaN or ±Inf.
var nanColor = color.Gray{Y: 0xc8}

// Heatmap writes a heat map of values to path as a PNG: values[r][c] is the
// cell in row rows[r] (top to bottom) and column cols[c] (left to right).
//
// The colour map is chosen from the data and shown in a colour scale on the
// right: when all finite values have one sign it is Moreland's sequential
// Kindlmann map (dark for the smallest value, light for the largest); when
// they have both signs it is Moreland's diverging blue–white–red map, white
// at zero and symmetric about it. Cells that are NaN or ±Inf are grey.
// Tables of up to 300 cells and 20 columns have each cell labelled with its
// value. fig.ColorLabel, if set, is written beside the colour scale: say
// what the colours measure, with units.
//
// It is an error if rows or cols is empty, len(values) != len(rows), a row
// has other than len(cols) values, no value is finite, or fig.LogY is set.
func Heatmap(path string, fig Figure, rows, cols []string, values [][]float64) error {
	g, err := newGrid(rows, cols, values)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if fig.LogY {
		return fmt.Errorf("plot %s: heat maps do not support LogY", path)
	}
	cmap := g.colorMap()
	return render(path, fig, func(c draw.Canvas) error {
		p := fig.newPlot()
		p.Add(g.cells(cmap))
		if len(rows)*len(cols) <= annotateCells && len(cols) <= annotateCols {
			p.Add(g.cellLabels(cmap))
		}
		p.X.Padding, p.Y.Padding = 0, 0
		p.X.Tick.Marker = nameTicks(cols, func(i int) float64 { return float64(i) })
		p.Y.Tick.Marker = nameTicks(rows, g.y)
		if w, _, _ := fig.size(); slantLabels(cols, w) {
			p.X.Tick.Label.Rotation = math.Pi / 6
			p.X.Tick.Label.XAlign = text.XRight
			p.X.Tick.Label.YAlign = text.YCenter
		}
		bar := gplot.New()
		bar.HideX()
		bar.Y.Padding = 0
		bar.Y.Tick.Marker = plainTicks{}
		bar.Add(&plotter.ColorBar{ColorMap: cmap, Vertical: true})
		barWidth := colorBarWidth
		if fig.ColorLabel != "" {
			// The label runs up the left of the scale, beside its ticks;
			// widen the column by its height so the strip keeps its width
			// (gonum sizes a vertical axis label the same way).
			bar.Y.Label.Text = fig.ColorLabel
			l := bar.Y.Label
			barWidth += l.TextStyle.FontExtents().Descent + l.TextStyle.Height(l.Text) + l.Padding
		}
		area := draw.Crop(c, 0, -barWidth-2*vg.Millimeter, 0, 0)
		p.Draw(area)

		// The colour scale spans the height of the cells.
		data := p.DataCanvas(area)
		bar.Draw(draw.Crop(c, c.Max.X-c.Min.X-barWidth, 0, data.Min.Y-c.Min.Y, data.Max.Y-c.Max.Y))
		return nil
	})
}

// grid is a heat map's table. Column c is drawn at x = c and row r at
// y = nrows-1-r, so the first row is at the top; each cell spans ±0.5.
type grid struct {
	values [][]float64
	ncols  int
}

func newGrid(rows, cols []string, values [][]float64) (grid, error) {
	switch {
	case len(rows) == 0 || len(cols) == 0:
		return grid{}, fmt.Errorf("heat map has %d rows and %d columns: need at least one of each", len(rows), len(cols))
	case len(values) != len(rows):
		return grid{}, fmt.Errorf("heat map has %d row names and %d rows of values", len(rows), len(values))
	}
	for r, row := range values {
		if len(row) != len(cols) {
			return grid{}, fmt.Errorf("heat map row %q has %d values, want %d (one per column)", rows[r], len(row), len(cols))
		}
	}
	g := grid{values: values, ncols: len(cols)}
	if lo, hi := g.finiteRange(); lo > hi {
		return grid{}, errNoData
	}
	return g, nil
}

// y returns the y coordinate of row r.
func (g grid) y(r int) float64 { return float64(len(g.values) - 1 - r) }

// finiteRange returns the smallest and largest finite values; lo > hi when
// there is none.
func (g grid) finiteRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, row := range g.values {
		for _, v := range row {
			if finite(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	return lo, hi
}

// colorMap returns the colour map documented on Heatmap, with its range
// set to cover the data.
func (g grid) colorMap() palette.ColorMap {
	lo, hi := g.finiteRange()
	if lo < 0 && hi > 0 {
		m := math.Max(-lo, hi)
		cmap := moreland.SmoothBlueRed()
		cmap.SetMin(-m)
		cmap.SetMax(m)
		return cmap
	}
	if lo == hi { // one value: give the scale some width around it
		d := math.Max(math.Abs(lo)/2, 0.5)
		lo, hi = lo-d, hi+d
	}
	cmap := moreland.Kindlmann()
	cmap.SetMin(lo)
	cmap.SetMax(hi)
	return cmap
}

// colorOf returns the colour of a cell holding v.
func colorOf(cmap palette.ColorMap, v float64) color.Color {
	if !finite(v) {
		return nanColor
	}
	c, err := cmap.At(v)
	if err != nil { // cannot happen: the map's range covers the data
		return nanColor
	}
	return c
}

// cells returns a plotter that draws g's cells in the colours of cmap.
func (g grid) cells(cmap palette.ColorMap) cellImage {
	colors := make([][]color.Color, len(g.values))
	for r, row := range g.values {
		colors[r] = make([]color.Color, len(row))
		for c, v := range row {
			colors[r][c] = colorOf(cmap, v)
		}
	}
	return cellImage{colors: colors, ncols: g.ncols}
}

// cellImage draws a table of colours as one image made at the canvas's
// resolution, so that cells of any size are sharp and meet without seams
// (drawn as separate rectangles, anti-aliasing leaves faint lines between
// them).
type cellImage struct {
	colors [][]color.Color // [row from the top][column]
	ncols  int
}

// Plot implements gplot.Plotter.
func (ci cellImage) Plot(c draw.Canvas, p *gplot.Plot) {
	trX, trY := p.Transforms(&c)
	nrows := len(ci.colors)
	rect := vg.Rectangle{
		Min: vg.Point{X: trX(-0.5), Y: trY(-0.5)},
		Max: vg.Point{X: trX(float64(ci.ncols) - 0.5), Y: trY(float64(nrows) - 0.5)},
	}
	dpi := float64(DefaultDPI)
	if d, ok := c.Canvas.(interface{ DPI() float64 }); ok {
		dpi = d.DPI()
	}
	w := max(1, int(math.Round(rect.Size().X.Dots(dpi))))
	h := max(1, int(math.Round(rect.Size().Y.Dots(dpi))))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for py := range h {
		row := ci.colors[py*nrows/h]
		for px := range w {
			img.Set(px, py, row[px*ci.ncols/w])
		}
	}
	c.DrawImage(rect, img)
}

// DataRange implements gplot.DataRanger.
func (ci cellImage) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, float64(ci.ncols) - 0.5, -0.5, float64(len(ci.colors)) - 0.5
}

// cellLabels writes each finite value in its cell, in black or white,
// whichever stands out against the cell's colour.
func (g grid) cellLabels(cmap palette.ColorMap) *plotter.Labels {
	lbl := &plotter.Labels{}
	for r, row := range g.values {
		for c, v := range row {
			if !finite(v) {
				continue
			}
			ink := color.Color(color.Black)
			if luminance(colorOf(cmap, v)) < 0.5 {
				ink = color.White
			}
			lbl.XYs = append(lbl.XYs, plotter.XY{X: float64(c), Y: g.y(r)})
			lbl.Labels = append(lbl.Labels, fmt.Sprintf("%.3g", v))
			lbl.TextStyle = append(lbl.TextStyle, text.Style{
				Color:   ink,
				Font:    font.From(plotter.DefaultFont, vg.Points(7)),
				XAlign:  text.XCenter,
				YAlign:  text.YCenter,
				Handler: gplot.DefaultTextHandler,
			})
		}
	}
	return lbl
}

// luminance returns the relative brightness of c, from 0 (black) to 1.
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)) / 0xffff
}

// nameTicks labels positions pos(i) with names[i], writing at most
// maxTickLabels of them.
func nameTicks(names []string, pos func(i int) float64) gplot.ConstantTicks {
	step := (len(names) + maxTickLabels - 1) / maxTickLabels
	var ts gplot.ConstantTicks
	for i, n := range names {
		if i%step == 0 {
			ts = append(ts, gplot.Tick{Value: pos(i), Label: n})
		} else {
			ts = append(ts, gplot.Tick{Value: pos(i)}) // minor tick
		}
	}
	return ts
}
