package sweep

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/plot"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/stats"
)

// Row is one configuration's results over its seeds.
type Row struct {
	Point  string
	Seeds  []int
	Values map[string][]float64 // per metric, one value per completed seed
}

// Mean and Std (sample standard deviation, n-1) of a metric.
func (r Row) Mean(metric string) float64 { return stats.Mean(r.Values[metric]) }

// Std is the sample standard deviation of a metric over seeds (0 for one seed).
func (r Row) Std(metric string) float64 { return stats.Std(r.Values[metric]) }

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
		s, err := rundir.ReadSummary(j.Dir)
		if err != nil || s.Status != rundir.StatusCompleted {
			continue
		}
		rows[i].Seeds = append(rows[i].Seeds, j.Seed)
		for _, m := range e.Metrics {
			if v, ok := s.Metric(m); ok {
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
			rec = append(rec, strconv.FormatFloat(r.Mean(m), 'g', -1, 64), strconv.FormatFloat(r.Std(m), 'g', -1, 64))
		}
		w.Write(append(rec, strings.Trim(fmt.Sprint(r.Seeds), "[]")))
	}
	w.Flush()
	if err := atomicio.WriteFile(filepath.Join(e.Dir, "results.csv"), []byte(csvBuf.String()), 0o644); err != nil {
		return err
	}
	if err := writeRuns(e); err != nil {
		return err
	}
	// Markdown: mean ± std with the mean rounded where the std's second
	// significant digit is; counts with thousands separators; a legend.
	var md strings.Builder
	fmt.Fprintf(&md, "# Sweep %s\n\nRecipe `%s`, seeds %v, %d configuration(s); mean ± sample std over the completed seeds (n). Per-run values at full precision: `runs.csv`.\n\n", e.Name, e.Recipe, e.Seeds, len(rows))
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
			md.WriteString(" " + meanStd(r.Mean(m), r.Std(m), len(r.Values[m])) + " |")
		}
		md.WriteString("\n")
	}
	md.WriteString("\nColumns:\n\n")
	for _, m := range e.Metrics {
		fmt.Fprintf(&md, "- `%s`: %s\n", m, metricLabel(m))
	}
	figs := plots(e, rows)
	if len(figs) > 0 {
		md.WriteString("\n")
		for _, f := range figs {
			fmt.Fprintf(&md, "![%s](%s)\n", f, f)
		}
	}
	if bad := Unreadable(e); len(bad) > 0 {
		md.WriteString("\nNot tabulated (damaged run files):\n\n")
		for _, b := range bad {
			fmt.Fprintf(&md, "- %s\n", b)
			fmt.Fprintf(os.Stderr, "sweep: not tabulated: %s\n", b)
		}
	}
	return atomicio.WriteFile(filepath.Join(e.Dir, "results.md"), []byte(md.String()), 0o644)
}

// Unreadable lists the jobs whose summary.json, or metrics.jsonl (for a
// completed run, when the sweep plots curves), cannot be read, with why:
// such runs are left out of the tables and plots, and said to be.
func Unreadable(e *Experiment) []string {
	var out []string
	for _, j := range e.Jobs() {
		s, err := rundir.ReadSummary(j.Dir)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				out = append(out, err.Error())
			}
			continue
		}
		if s.Status != rundir.StatusCompleted || len(e.Curves) == 0 {
			continue
		}
		if _, err := rundir.ReadMetrics(j.Dir); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

// meanStd renders mean ± std: the std to two significant digits and the
// mean to the same decimal place; integers (counts) with thousands
// separators and without "± 0"; one seed without ±.
func meanStd(mean, std float64, n int) string {
	if math.IsNaN(mean) {
		return "–"
	}
	if mean == math.Trunc(mean) && std == 0 && math.Abs(mean) < 1e15 {
		return stats.Thousands(int(mean))
	}
	if n < 2 || std == 0 {
		return strconv.FormatFloat(mean, 'g', 4, 64)
	}
	// Decimals that show the std's second significant digit.
	dec := max(0, 1-int(math.Floor(math.Log10(std))))
	if dec > 12 {
		return fmt.Sprintf("%.3g ± %.2g", mean, std)
	}
	return fmt.Sprintf("%.*f ± %.*f", dec, mean, dec, std)
}

// metricLabel describes a metric column: plot.Label for train./eval. keys,
// and the summary's own fields.
func metricLabel(m string) string {
	switch m {
	case "params":
		return "parameters (count)"
	case "wall_s":
		return "wall time of the run (s)"
	case "tok_per_s":
		return "mean training throughput (tokens/s)"
	}
	if k, ok := strings.CutPrefix(m, "extra."); ok {
		return "family result " + k + " (summary.json extra)"
	}
	return plot.Label(m)
}

// writeRuns writes runs.csv: one row per run (every configuration and seed,
// finished or not) with the configuration's overrides as columns, the seed,
// status, wall time, parameters and every final train, eval and numeric
// extra metric of its summary at full precision.
func writeRuns(e *Experiment) error {
	jobs := e.Jobs()
	sums := make([]*rundir.Summary, len(jobs))
	params := map[string]bool{}
	metrics := map[string]bool{}
	for i, j := range jobs {
		for _, o := range j.Point.Overrides {
			k, _, _ := strings.Cut(o, "=")
			params[k] = true
		}
		s, err := rundir.ReadSummary(j.Dir)
		if err != nil {
			continue
		}
		sums[i] = s
		for k := range s.Train {
			metrics["train."+k] = true
		}
		for k := range s.Eval {
			metrics["eval."+k] = true
		}
		for k, v := range s.Extra {
			if _, ok := v.(float64); ok {
				metrics["extra."+k] = true
			}
		}
	}
	pcols, mcols := sortedSet(params), sortedSet(metrics)
	var buf strings.Builder
	w := csv.NewWriter(&buf)
	w.Write(append(append(append([]string{"config"}, pcols...), "seed", "status", "wall_s", "params", "tok_per_s"), append(mcols, "dir")...))
	full := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for i, j := range jobs {
		set := map[string]string{}
		for _, o := range j.Point.Overrides {
			k, v, _ := strings.Cut(o, "=")
			set[k] = v
		}
		rec := []string{j.Point.Name}
		for _, k := range pcols {
			rec = append(rec, set[k])
		}
		rec = append(rec, strconv.Itoa(j.Seed))
		s := sums[i]
		if s == nil {
			rec = append(rec, "missing", "", "", "")
			for range mcols {
				rec = append(rec, "")
			}
		} else {
			rec = append(rec, s.Status, full(s.WallS), strconv.Itoa(s.Params), full(s.TokPerS))
			for _, m := range mcols {
				if v, ok := s.Metric(m); ok {
					rec = append(rec, full(v))
				} else {
					rec = append(rec, "")
				}
			}
		}
		w.Write(append(rec, j.Dir))
	}
	w.Flush()
	return atomicio.WriteFile(filepath.Join(e.Dir, "runs.csv"), []byte(buf.String()), 0o644)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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
		if err := plot.Bars(filepath.Join(e.Dir, rel), plot.Figure{Title: m + " (mean ± std over seeds)", YLabel: metricLabel(m)},
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
			if err := plot.Bands(filepath.Join(e.Dir, rel), plot.Figure{Title: c + " vs step (mean ± std over seeds)", XLabel: "step", YLabel: metricLabel(c)}, bands...); err == nil {
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
		recs, err := rundir.ReadMetrics(j.Dir)
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
		b.Mean = append(b.Mean, stats.Mean(bySteps[s]))
		b.Std = append(b.Std, stats.Std(bySteps[s]))
	}
	return b, true
}
