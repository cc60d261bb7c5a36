package sweep

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"hiddenlab/internal/atomicio"
	"hiddenlab/plot"
	"hiddenlab/runner"
)

// Row is one configuration's results over its seeds.
type Row struct {
	Point  string
	Seeds  []int
	Values map[string][]float64 // per metric, one value per completed seed
}

// Mean and Std (sample standard deviation, n-1) of a metric.
func (r Row) Mean(metric string) float64 { return mean(r.Values[metric]) }

// Std is the sample standard deviation of a metric over seeds (0 for one seed).
func (r Row) Std(metric string) float64 { return std(r.Values[metric]) }

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func std(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m, s := mean(xs), 0.0
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}

// metric reads a dotted metric from a summary.
func metric(s *runner.Summary, name string) (float64, bool) {
	section, key, _ := strings.Cut(name, ".")
	switch section {
	case "eval":
		v, ok := s.Eval[key]
		return v, ok
	case "train":
		v, ok := s.Train[key]
		return v, ok
	case "extra":
		switch x := s.Extra[key].(type) {
		case float64:
			return x, true
		case int:
			return float64(x), true
		}
		return 0, false
	case "params":
		return float64(s.Params), true
	case "wall_s":
		return s.WallS, true
	case "tok_per_s":
		return s.TokPerS, true
	}
	return 0, false
}

// Rows collects the completed runs' metrics per configuration.
func Rows(e *Experiment) []Row {
	var rows []Row
	byName := map[string]int{}
	for _, j := range e.Jobs() {
		i, ok := byName[j.Point.Name]
		if !ok {
			i = len(rows)
			byName[j.Point.Name] = i
			rows = append(rows, Row{Point: j.Point.Name, Values: map[string][]float64{}})
		}
		s, err := runner.ReadSummary(j.Dir)
		if err != nil || s.Status != runner.StatusCompleted {
			continue
		}
		rows[i].Seeds = append(rows[i].Seeds, j.Seed)
		for _, m := range e.Metrics {
			if v, ok := metric(s, m); ok {
				rows[i].Values[m] = append(rows[i].Values[m], v)
			}
		}
	}
	return rows
}

// Tabulate writes results.csv, results.md and plots for the completed runs.
func Tabulate(e *Experiment) error {
	rows := Rows(e)
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return err
	}
	// CSV: one row per configuration, mean and std per metric, and the seeds.
	var csvBuf strings.Builder
	w := csv.NewWriter(&csvBuf)
	header := []string{"config", "n"}
	for _, m := range e.Metrics {
		header = append(header, m+"_mean", m+"_std")
	}
	w.Write(append(header, "seeds"))
	for _, r := range rows {
		rec := []string{r.Point, fmt.Sprint(len(r.Seeds))}
		for _, m := range e.Metrics {
			rec = append(rec, fmt.Sprintf("%.6g", r.Mean(m)), fmt.Sprintf("%.6g", r.Std(m)))
		}
		w.Write(append(rec, strings.Trim(fmt.Sprint(r.Seeds), "[]")))
	}
	w.Flush()
	if err := atomicio.WriteFile(filepath.Join(e.Dir, "results.csv"), []byte(csvBuf.String()), 0o644); err != nil {
		return err
	}
	// Markdown: mean ± std.
	var md strings.Builder
	fmt.Fprintf(&md, "# Sweep %s\n\nRecipe `%s`, seeds %v, %d configuration(s); mean ± std over completed seeds.\n\n", e.Name, e.Recipe, e.Seeds, len(rows))
	md.WriteString("| config | n |")
	for _, m := range e.Metrics {
		md.WriteString(" " + m + " |")
	}
	md.WriteString("\n|---|---|" + strings.Repeat("---|", len(e.Metrics)) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&md, "| %s | %d |", r.Point, len(r.Seeds))
		for _, m := range e.Metrics {
			if len(r.Values[m]) == 0 {
				md.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&md, " %s ± %s |", format(r.Mean(m)), format(r.Std(m)))
		}
		md.WriteString("\n")
	}
	figs := plots(e, rows)
	if len(figs) > 0 {
		md.WriteString("\n")
		for _, f := range figs {
			fmt.Fprintf(&md, "![%s](%s)\n", f, f)
		}
	}
	return atomicio.WriteFile(filepath.Join(e.Dir, "results.md"), []byte(md.String()), 0o644)
}

func format(v float64) string {
	if math.Abs(v) >= 1000 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// plots draws a bar chart per metric and mean ± std curves per eval metric.
func plots(e *Experiment, rows []Row) []string {
	var out []string
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = r.Point
	}
	for _, m := range e.Metrics {
		vals, errs := make([]float64, len(rows)), make([]float64, len(rows))
		for i, r := range rows {
			vals[i], errs[i] = r.Mean(m), r.Std(m)
		}
		rel := "bar_" + strings.NewReplacer(".", "_", "/", "_").Replace(m) + ".png"
		if err := plot.Bars(filepath.Join(e.Dir, rel), plot.Figure{Title: m + " (mean ± std over seeds)", YLabel: m},
			plot.BarGroup{Name: m, Labels: labels, Values: vals, Err: errs}); err == nil {
			out = append(out, rel)
		}
	}
	for _, c := range e.Curves {
		var bands []plot.Band
		for _, p := range e.Points() {
			if b, ok := curve(e, p.Name, c); ok {
				bands = append(bands, b)
			}
		}
		rel := "curve_" + strings.NewReplacer(".", "_", "/", "_").Replace(c) + ".png"
		if len(bands) > 0 {
			if err := plot.Bands(filepath.Join(e.Dir, rel), plot.Figure{Title: c + " vs step (mean ± std over seeds)", XLabel: "step", YLabel: c}, bands...); err == nil {
				out = append(out, rel)
			}
		}
	}
	return out
}

// curve averages a metric's eval (or train: "train.loss") curve over seeds.
func curve(e *Experiment, point, name string) (plot.Band, bool) {
	split, key, ok := strings.Cut(name, ".")
	if !ok {
		split, key = "eval", name
	}
	bySteps := map[int][]float64{}
	for _, j := range e.Jobs() {
		if j.Point.Name != point || StateOf(j.Dir) != Done {
			continue
		}
		recs, err := runner.ReadMetrics(j.Dir)
		if err != nil {
			continue
		}
		for _, r := range recs {
			if v, ok := r.Values[key]; ok && r.Split == split {
				bySteps[r.Step] = append(bySteps[r.Step], v)
			}
		}
	}
	if len(bySteps) == 0 {
		return plot.Band{}, false
	}
	steps := make([]int, 0, len(bySteps))
	for s := range bySteps {
		steps = append(steps, s)
	}
	sort.Ints(steps)
	b := plot.Band{Name: point}
	for _, s := range steps {
		b.X = append(b.X, float64(s))
		b.Mean = append(b.Mean, mean(bySteps[s]))
		b.Std = append(b.Std, std(bySteps[s]))
	}
	return b, true
}
