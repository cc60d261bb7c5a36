package plot

import (
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
)

// Histogram writes a histogram of values to path as a PNG: the range from
// the smallest to the largest finite value is cut into bins bins of equal
// width and each bar's height is the count of values in it. NaN and ±Inf
// values are left out. When all values are equal the bins span value ± 0.5.
// With fig.LogY empty bins are not drawn. It is an error if bins < 1 or no
// value is finite.
func Histogram(path string, fig Figure, values []float64, bins int) error {
	if bins < 1 {
		return fmt.Errorf("plot %s: histogram needs at least 1 bin, got %d", path, bins)
	}
	hb, width, err := binValues(values, bins)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return render(path, fig, func(c draw.Canvas) error {
		p := fig.newPlot()
		h := &plotter.Histogram{
			Bins:      hb,
			Width:     width,
			FillColor: translucent(seriesColor(0), 0xc0),
			LineStyle: draw.LineStyle{Color: seriesColor(0), Width: 0.5},
			LogY:      fig.LogY,
		}
		p.Add(h)
		drawPlot(c, p, nil)
		return nil
	})
}

// binValues counts the finite values into n bins of equal width spanning
// their range, and returns the bins and their width.
func binValues(values []float64, n int) ([]plotter.HistogramBin, float64, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if finite(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if lo > hi {
		return nil, 0, fmt.Errorf("histogram of %d values: %w", len(values), errNoData)
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	width := (hi - lo) / float64(n)
	bins := make([]plotter.HistogramBin, n)
	for i := range bins {
		bins[i].Min = lo + float64(i)*width
		bins[i].Max = lo + float64(i+1)*width
	}
	bins[n-1].Max = hi
	for _, v := range values {
		if !finite(v) {
			continue
		}
		// The quotient can round across a bin edge; count v in the bin
		// whose [Min, Max) holds it (the last bin also holds hi).
		i := min(max(int((v-lo)/width), 0), n-1)
		if i > 0 && v < bins[i].Min {
			i--
		} else if i < n-1 && v >= bins[i].Max {
			i++
		}
		bins[i].Weight++
	}
	return bins, width, nil
}
