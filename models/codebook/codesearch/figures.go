package codesearch

import (
	"errors"
	"math"

	"github.com/hiddenlab/hiddenlab/plot"
)

// SiteUsage summarises a site's code usage over the cache.
type SiteUsage struct {
	BookInfo
	Used, Total int // codes active at least once, codes in all groups
}

// Unused is the share of the site's codes never active in the cache.
func (u SiteUsage) Unused() float64 {
	if u.Total == 0 {
		return 0
	}
	return 1 - float64(u.Used)/float64(u.Total)
}

// UsageBySite counts, per site, the codes active at least once.
func (c *Cache) UsageBySite() []SiteUsage {
	var out []SiteUsage
	byName := map[string]int{}
	for _, bi := range c.Books {
		byName[bi.Site] = len(out)
		out = append(out, SiteUsage{BookInfo: bi})
	}
	for _, b := range c.AllBooks() {
		u := &out[byName[b.Site]]
		for _, n := range c.Usage(b) {
			u.Total++
			if n > 0 {
				u.Used++
			}
		}
	}
	return out
}

// UsageFigure draws the histogram of code usage over every codebook of the
// cache: log10(1 + activations) per code, so unused codes sit at 0.
func (c *Cache) UsageFigure(path string) error {
	var vals []float64
	for _, b := range c.AllBooks() {
		for _, n := range c.Usage(b) {
			vals = append(vals, math.Log10(1+float64(n)))
		}
	}
	return plot.Histogram(path, plot.Figure{Title: "Code usage over the cache (all codebooks)",
		XLabel: "log10(1 + activations of a code)", YLabel: "codes", LogY: true}, vals, 40)
}

// ErrNothingToPlot reports searches without any code to draw.
var ErrNothingToPlot = errors.New("no code found: nothing to plot")

// SearchFigure draws code precision against the best neuron's at the same
// recall: with one search, for each codebook's best code; with several, for
// each query's best code.
func SearchFigure(path string, results []*SearchResult) error {
	var labels []string
	var codes, neurons []float64
	if len(results) == 1 {
		seen := map[string]bool{}
		for _, h := range results[0].Hits { // a codebook's hits come most precise first
			if seen[h.Book] {
				continue
			}
			seen[h.Book] = true
			labels = append(labels, h.Book)
			codes = append(codes, h.Precision)
			neurons = append(neurons, neuronValue(h))
		}
	} else {
		for _, r := range results {
			if h, ok := r.Best(); ok {
				labels = append(labels, r.Pattern)
				codes = append(codes, h.Precision)
				neurons = append(neurons, neuronValue(h))
			}
		}
	}
	if len(labels) == 0 {
		return ErrNothingToPlot
	}
	title := "Code precision vs the best neuron at the same recall"
	if len(results) == 1 {
		title = "Precision for " + results[0].Pattern + ": best code per codebook vs best neuron"
	}
	return plot.Bars(path, plot.Figure{Title: title, YLabel: "precision"},
		plot.BarGroup{Name: "code", Labels: labels, Values: codes},
		plot.BarGroup{Name: "best neuron", Labels: labels, Values: neurons})
}

// neuronValue is h's neuron precision, or NaN (no bar) without a baseline.
func neuronValue(h Hit) float64 {
	if h.Neuron == "" {
		return math.NaN()
	}
	return h.NeuronPrecision
}
