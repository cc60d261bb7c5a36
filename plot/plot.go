// Package plot writes PNG figures for run directories and sweep reports:
// line charts, mean ± std bands, grouped bars, heat maps and histograms.
//
// Figures are meant to say what they show: series get one of 12 distinct
// colours and, past 12, a line pattern too, so no two look the same;
// noisy curves can be drawn smoothed over their faint raw values
// (Figure.Smooth, Series.Smooth, [EMA]); heat maps label their colour scale
// (Figure.ColorLabel); and [Label] turns metric keys such as "eval.loss"
// into axis labels with units.
//
// Every function renders one figure in memory first and then writes it with
// [atomicio.Write], so a reader sees either the previous file or the complete
// new one, and a failed call leaves no file behind. Bad input (empty or
// mismatched slices) is reported as an error before anything is written.
// Points that are NaN or ±Inf are left out of the drawing, since diverged runs
// are an expected outcome rather than a caller error.
//
// The package is a thin layer over gonum.org/v1/plot; callers need not import
// it.
package plot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// Default figure geometry, used where a Figure leaves the field zero.
const (
	DefaultWidth  = 6.0 // inches
	DefaultHeight = 4.0 // inches
	DefaultDPI    = 150
)

// Largest accepted figure side, in pixels; a guard against unit mistakes
// (points or pixels passed as inches).
const maxPixels = 10000

// Figure holds the parts of a chart that do not depend on the data.
type Figure struct {
	Title, XLabel, YLabel string

	// LogY draws the Y axis on a log scale. Points with Y <= 0 cannot be
	// placed on it and are left out. Bars and Heatmap reject it.
	LogY bool

	// Width and Height are the image size in inches; zero means
	// DefaultWidth × DefaultHeight.
	Width, Height float64

	// DPI is the resolution in pixels per inch; zero means DefaultDPI.
	DPI int

	// Smooth, in [0, 1), is the weight of the exponential moving average
	// that Lines draws over each series' faint raw curve, as TensorBoard's
	// smoothing slider does (0.9 suits a noisy training loss); zero draws
	// the raw curves alone. A Series may set its own (see Series.Smooth).
	Smooth float64

	// ColorLabel names what a heat map's colours stand for, with units; it
	// is written beside the colour scale. Only Heatmap uses it.
	ColorLabel string
}

// pixels returns the image size in pixels, after defaults.
func (f Figure) pixels() (w, h int) {
	wi, hi, dpi := f.size()
	return int(wi*float64(dpi) + 0.5), int(hi*float64(dpi) + 0.5)
}

// size returns the figure size in inches and its resolution, after defaults.
func (f Figure) size() (w, h float64, dpi int) {
	w, h, dpi = f.Width, f.Height, f.DPI
	if w == 0 {
		w = DefaultWidth
	}
	if h == 0 {
		h = DefaultHeight
	}
	if dpi == 0 {
		dpi = DefaultDPI
	}
	return w, h, dpi
}

func (f Figure) validate() error {
	w, h, dpi := f.size()
	if !(w > 0) || !(h > 0) || math.IsInf(w, 0) || math.IsInf(h, 0) {
		return fmt.Errorf("figure size %gx%g in: must be positive", w, h)
	}
	if dpi < 0 {
		return fmt.Errorf("figure DPI %d: must be positive", dpi)
	}
	if err := checkSmooth(f.Smooth); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	if pw, ph := f.pixels(); pw < 1 || ph < 1 || pw > maxPixels || ph > maxPixels {
		return fmt.Errorf("figure %gx%g in at %d dpi is %dx%d px: each side must be 1..%d", w, h, dpi, pw, ph, maxPixels)
	}
	return nil
}

// newPlot returns a gonum plot with the figure's title, labels and Y scale.
func (f Figure) newPlot() *gplot.Plot {
	p := gplot.New()
	p.Title.Text = f.Title
	p.X.Label.Text = f.XLabel
	p.Y.Label.Text = f.YLabel
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	if f.LogY {
		p.Y.Scale = gplot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	return p
}

// drawPlot draws p on c, with legend, if not nil, in a column to the right
// of the plot, where it cannot hide the data. A log Y axis whose data is a
// single value is widened to a factor of 2 either side (gonum would widen
// it by ±1, which may cross zero).
func drawPlot(c draw.Canvas, p *gplot.Plot, legend *gplot.Legend) {
	if _, log := p.Y.Scale.(gplot.LogScale); log && p.Y.Min == p.Y.Max {
		p.Y.Min, p.Y.Max = p.Y.Min/2, p.Y.Max*2
	}
	if legend == nil {
		p.Draw(c)
		return
	}
	legend.Top = true
	legend.ThumbnailWidth = legendThumbWidth
	if p.Title.Text != "" {
		legend.YOffs = -(p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding)
	}
	r := legend.Rectangle(c)
	legend.Draw(c)
	p.Draw(draw.Crop(c, 0, -(r.Max.X - r.Min.X + 2*vg.Millimeter), 0, 0))
}

// legendFor returns legend if a chart of n series needs one (n > 1), else
// nil.
func legendFor(legend *gplot.Legend, n int) *gplot.Legend {
	if n < 2 {
		return nil
	}
	return legend
}

// plainTicks is gonum's default ticker with trailing zeros dropped from
// the labels ("250" rather than "250.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []gplot.Tick {
	ts := gplot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ts {
		if strings.Contains(t.Label, ".") && !strings.ContainsAny(t.Label, "eE") {
			ts[i].Label = strings.TrimRight(strings.TrimRight(t.Label, "0"), ".")
		}
	}
	return ts
}

// logTicks labels a log axis: at powers of ten when the range spans two
// decades or more, otherwise at the usual linear positions, so that a short
// range such as a loss falling from 4 to 1.5 still gets labelled ticks.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []gplot.Tick {
	if min > 0 && max/min >= 100 {
		return gplot.LogTicks{Prec: -1}.Ticks(min, max)
	}
	var ts []gplot.Tick
	for _, t := range (plainTicks{}).Ticks(min, max) {
		if t.Value > 0 {
			ts = append(ts, t)
		}
	}
	return ts
}

// render draws a figure with paint and writes it to path as a PNG. The
// drawing is done before the file is opened; a panic inside gonum (it
// panics on some degenerate inputs) is returned as an error.
func render(path string, f Figure, paint func(c draw.Canvas) error) (err error) {
	if err := f.validate(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	w, h, dpi := f.size()
	img := vgimg.NewWith(
		vgimg.UseWH(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch),
		vgimg.UseDPI(dpi),
	)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plot %s: rendering failed: %v", path, r)
		}
	}()
	if err := paint(draw.New(img)); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicio.Write(path, 0o644, func(wr io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(wr)
		return err
	})
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// translucent returns c at the given opacity (0–255), for filled areas.
func translucent(c color.Color, alpha uint8) color.Color {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	n.A = alpha
	return n
}

// errNoData is returned when nothing in the input can be drawn.
var errNoData = errors.New("no finite data to draw")
