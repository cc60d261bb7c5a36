package runner

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"hiddenlab/internal/atomicio"
	"hiddenlab/plot"
	"hiddenlab/recipe"
)

// figure is a plot written into a run directory.
type figure struct {
	Title string
	Path  string // relative to the run directory
}

// writePlots draws the run's curves from metrics.jsonl into plots/: the loss
// (train and eval), the learning rate, and one figure per other eval metric.
func writePlots(dir string) []figure {
	recs, err := ReadMetrics(dir)
	if err != nil || len(recs) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, PlotsDir), 0o755); err != nil {
		return nil
	}
	series := func(split, key string) plot.Series { return Curve(recs, split, key, split+" "+key) }
	var figs []figure
	draw := func(name, title, ylabel string, logY bool, ss ...plot.Series) {
		fig := plot.Figure{Title: title, XLabel: "step", YLabel: ylabel, LogY: logY}
		if rel, ok := DrawCurves(dir, name, fig, ss...); ok {
			figs = append(figs, figure{Title: title, Path: rel})
		}
	}
	evalLoss := series("eval", "loss")
	evalLoss.Dashed = false
	draw("loss", "Loss", "cross-entropy (nats)", false, series("train", "loss"), evalLoss)
	draw("lr", "Learning rate", "lr", false, series("train", "lr"))
	keys := map[string]bool{}
	for _, r := range recs {
		if r.Split == "eval" {
			for k := range r.Values {
				keys[k] = true
			}
		}
	}
	var names []string
	for k := range keys {
		if k != "loss" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		draw("eval_"+sanitize(k), "eval "+k, k, false, series("eval", k))
	}
	return figs
}

// Curve is one metric over training steps: the values of key in the records
// of split ("train" or "eval"), as a series named name (plot.Lines skips
// NaN points).
func Curve(recs []Record, split, key, name string) plot.Series {
	s := plot.Series{Name: name}
	for _, r := range recs {
		if v, ok := r.Values[key]; ok && r.Split == split {
			s.X = append(s.X, float64(r.Step))
			s.Y = append(s.Y, v)
		}
	}
	return s
}

// DrawCurves draws the series that have points as a line figure into
// dir/plots/name.png and returns its path relative to dir; ok is false when
// no series has a point or the figure could not be written.
func DrawCurves(dir, name string, fig plot.Figure, ss ...plot.Series) (rel string, ok bool) {
	var keep []plot.Series
	for _, s := range ss {
		if len(s.X) > 0 {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return "", false
	}
	rel = filepath.Join(PlotsDir, name+".png")
	if err := plot.Lines(filepath.Join(dir, rel), fig, keep...); err != nil {
		return "", false
	}
	return rel, true
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// metricsTable renders final train and eval values side by side.
func metricsTable(train, eval Logs) string {
	keys := map[string]bool{}
	for k := range train {
		keys[k] = true
	}
	for k := range eval {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		if k != "tok_per_s" && k != "tokens" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| metric | train (last log) | eval (final) |\n|---|---|---|\n")
	cell := func(l Logs, k string) string {
		if v, ok := l[k]; ok {
			return formatValue(v)
		}
		return ""
	}
	for _, k := range names {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", k, cell(train, k), cell(eval, k))
	}
	return b.String()
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1e-3:
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.3e", v)
}

// writeReport writes report.md: what ran, how it ended, the final numbers, the
// curves, the family's section, the recipe and the environment.
func writeReport(dir string, r *Recipe, s Summary, figs []figure, family string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n\n", s.Name, s.Status)
	fmt.Fprintf(&b, "Family **%s**; %d of %d steps; %s parameters; %.1f s wall", s.Family, s.Steps, s.StepsPlan, Thousands(s.Params), s.WallS)
	if s.TokPerS > 0 {
		fmt.Fprintf(&b, "; %.0f tokens/s", s.TokPerS)
	}
	b.WriteString(".\n\n")
	if s.Error != "" {
		fmt.Fprintf(&b, "**Error:** %s\n\n", s.Error)
		if s.Status == StatusInterrupt || strings.Contains(s.Error, "checkpoint") || s.Steps > 0 {
			fmt.Fprintf(&b, "Resume from the last checkpoint with `make run RESUME=%s`.\n\n", dir)
		}
	}
	b.WriteString("## Final numbers\n\n")
	b.WriteString(metricsTable(s.Train, s.Eval))
	if len(figs) > 0 {
		b.WriteString("\n## Curves\n\n")
		for _, f := range figs {
			fmt.Fprintf(&b, "![%s](%s)\n", f.Title, f.Path)
		}
	}
	if family != "" {
		fmt.Fprintf(&b, "\n%s\n%s\n%s\n", familyBegin, strings.TrimSpace(family), familyEnd)
	}
	if res, err := recipe.Marshal(r.Resolved()); err == nil {
		fmt.Fprintf(&b, "\n## Recipe\n\nResolved from `%s` (full file: `%s`):\n\n```yaml\n%s```\n", r.Raw.Path, RecipeFile, res)
	}
	if env, err := os.ReadFile(filepath.Join(dir, EnvFile)); err == nil {
		fmt.Fprintf(&b, "\n## Environment\n\n```json\n%s```\n", env)
	}
	fmt.Fprintf(&b, "\nFiles: `%s` (train and eval logs), `%s`, `%s/` (latest: `%s/latest`).\n",
		MetricsFile, SummaryFile, CheckpointDir, CheckpointDir)
	return atomicio.WriteFile(filepath.Join(dir, ReportFile), []byte(b.String()), 0o644)
}

// The family's section of report.md stands between these markers (HTML
// comments: invisible in rendered Markdown), so tools can find it.
const (
	familyBegin = "<!-- family section -->"
	familyEnd   = "<!-- end of family section -->"
)

// FamilySection returns the model family's section of a run's report.md
// (for a staged run, of its last stage that has one), or "" when there is
// none.
func FamilySection(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, ReportFile)); err == nil {
		s := string(b)
		if i := strings.Index(s, familyBegin); i >= 0 {
			s = s[i+len(familyBegin):]
			if j := strings.Index(s, familyEnd); j >= 0 {
				return strings.TrimSpace(s[:j])
			}
		}
	}
	stages, _ := filepath.Glob(filepath.Join(dir, "[0-9]*-*", ReportFile))
	sort.Strings(stages)
	for i := len(stages) - 1; i >= 0; i-- {
		if sec := FamilySection(filepath.Dir(stages[i])); sec != "" {
			return sec
		}
	}
	return ""
}

// writeStagedReport links the stages' reports from the top of a staged run.
func writeStagedReport(dir string, raw *recipe.Raw, stages []string) error {
	var b strings.Builder
	name, _ := raw.Merged()["name"].(string)
	if name == "" {
		name = trimExt(raw.Path)
	}
	fmt.Fprintf(&b, "# %s\n\nStaged run of `%s`.\n\n| stage | status | steps | eval |\n|---|---|---|---|\n", name, raw.Path)
	for i, st := range stages {
		sdir := fmt.Sprintf("%d-%s", i, st)
		s, err := ReadSummary(filepath.Join(dir, sdir))
		if err != nil {
			fmt.Fprintf(&b, "| [%s](%s/%s) | missing | | |\n", st, sdir, ReportFile)
			continue
		}
		var ev []string
		for _, k := range sortedKeys(s.Eval) {
			ev = append(ev, fmt.Sprintf("%s %s", k, formatValue(s.Eval[k])))
		}
		fmt.Fprintf(&b, "| [%s](%s/%s) | %s | %d/%d | %s |\n", st, sdir, ReportFile, s.Status, s.Steps, s.StepsPlan, strings.Join(ev, ", "))
	}
	return atomicio.WriteFile(filepath.Join(dir, ReportFile), []byte(b.String()), 0o644)
}

func sortedKeys(l Logs) []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Thousands writes n in decimal with comma thousands separators
// (1234567 → "1,234,567"), as reports and benchmark tables print counts.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + Thousands(-n)
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
