package runner

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/plot"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/stats"
)

// figure is a plot written into a run directory.
type figure struct {
	Title string
	Path  string // relative to the run directory
}

// writePlots draws the run's curves from metrics.jsonl into plots/, one
// quantity per figure so no curve is squashed by another's scale:
// cross-entropy (the train CE — the "ce" term when the loss is composite —
// beside the eval loss), the total train loss with its auxiliary terms when
// the loss is composite, the gradient norm, the learning rate, and one
// figure per other train or eval metric. Axis labels come from
// plot.Label; train curves with many points are drawn smoothed (EMA) over
// the faint raw curve.
func writePlots(dir string) []figure {
	recs, err := rundir.ReadMetrics(dir)
	if err != nil || len(recs) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, rundir.PlotsDir), 0o755); err != nil {
		return nil
	}
	keys := map[string]map[string]bool{"train": {}, "eval": {}}
	points := 0
	for _, r := range recs {
		if keys[r.Split] == nil {
			continue
		}
		if r.Split == "train" {
			points++
		}
		for k := range r.Values {
			keys[r.Split][k] = true
		}
	}
	smooth := 0.0
	if points >= 40 {
		smooth = 0.8
	}
	series := func(split, key, name string) plot.Series {
		s := rundir.Curve(recs, split, key, name)
		if split == "train" {
			s.Smooth = smooth
		} else {
			s.Smooth = -1
		}
		return s
	}
	var figs []figure
	draw := func(name, title, ylabel string, ss ...plot.Series) {
		fig := plot.Figure{Title: title, XLabel: "step", YLabel: ylabel}
		if rel, ok := rundir.DrawCurves(dir, name, fig, ss...); ok {
			figs = append(figs, figure{Title: title, Path: rel})
		}
	}
	composite := keys["train"]["ce"]
	trainCE := "loss"
	if composite {
		trainCE = "ce"
	}
	draw("loss", "Cross-entropy", "cross-entropy (nats/token)",
		series("train", trainCE, "train"), series("eval", "loss", "eval"))
	done := map[string]bool{"loss": true, "ce": true, "lr": true, "grad_norm": true,
		"tokens": true, "tokens_seen": true, "tok_per_s": true}
	if composite {
		draw("train_loss", "Train loss (cross-entropy + auxiliary terms)", plot.Label("train.loss"),
			series("train", "loss", "total"), series("train", "ce", "cross-entropy"))
	}
	draw("grad_norm", "Gradient norm", plot.Label("grad_norm"), series("train", "grad_norm", "train"))
	draw("lr", "Learning rate", plot.Label("lr"), series("train", "lr", "train"))
	for _, split := range []string{"train", "eval"} {
		var names []string
		for k := range keys[split] {
			if !done[k] || (split == "eval" && k != "loss") {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			if split == "eval" && k == "loss" {
				continue
			}
			draw(split+"_"+sanitize(k), plot.Label(split+"."+k), plot.Label(split+"."+k), series(split, k, split))
		}
	}
	return figs
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
func metricsTable(train, eval experiment.Logs) string {
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
	cell := func(l experiment.Logs, k string) string {
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
func writeReport(dir string, r *experiment.Recipe, s rundir.Summary, figs []figure, family string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n\n", s.Name, s.Status)
	fmt.Fprintf(&b, "Family **%s**; %d of %d steps; %s parameters; %.1f s wall", s.Family, s.Steps, s.StepsPlan, stats.Thousands(s.Params), s.WallS)
	if s.TokPerS > 0 {
		fmt.Fprintf(&b, "; %.0f tokens/s", s.TokPerS)
	}
	b.WriteString(".\n\n")
	if s.Error != "" {
		fmt.Fprintf(&b, "**Error:** %s\n\n", s.Error)
		if s.Status == rundir.StatusInterrupt || strings.Contains(s.Error, "checkpoint") || s.Steps > 0 {
			fmt.Fprintf(&b, "Resume from the last checkpoint with `make run RESUME=%s`.\n\n", dir)
		}
	}
	b.WriteString("## Final numbers\n\n")
	b.WriteString(metricsTable(s.Train, s.Eval))
	if _, composite := s.Train["ce"]; composite {
		b.WriteString("\nThe train **loss** is the objective: cross-entropy (**ce**) plus the family's auxiliary terms (the other train rows); the eval **loss** is cross-entropy alone, so compare eval loss with train ce.\n")
	}
	if len(figs) > 0 {
		b.WriteString("\n## Curves\n\n")
		for _, f := range figs {
			fmt.Fprintf(&b, "![%s](%s)\n", f.Title, f.Path)
		}
	}
	if family != "" {
		fmt.Fprintf(&b, "\n%s\n%s\n%s\n", rundir.FamilyBegin, strings.TrimSpace(family), rundir.FamilyEnd)
	}
	if res, err := recipe.Marshal(r.Resolved()); err == nil {
		fmt.Fprintf(&b, "\n## Recipe\n\nResolved from `%s` (full file: `%s`):\n\n```yaml\n%s```\n", r.Raw.Path, rundir.RecipeFile, res)
	}
	if env, err := os.ReadFile(filepath.Join(dir, rundir.EnvFile)); err == nil {
		fmt.Fprintf(&b, "\n## Environment\n\n```json\n%s```\n", env)
	}
	fmt.Fprintf(&b, "\nFiles: `%s` (train and eval logs), `%s`, `%s/` (latest: `%s/latest`).\n",
		rundir.MetricsFile, rundir.SummaryFile, rundir.CheckpointDir, rundir.CheckpointDir)
	return atomicio.WriteFile(filepath.Join(dir, rundir.ReportFile), []byte(b.String()), 0o644)
}

// writeStagedReport links the stages' reports from the top of a staged run.
func writeStagedReport(dir string, raw *recipe.Raw, stages []string) error {
	var b strings.Builder
	name, _ := raw.Merged()["name"].(string)
	if name == "" {
		name = experiment.NameOf(raw.Path)
	}
	fmt.Fprintf(&b, "# %s\n\nStaged run of `%s`.\n\n| stage | status | steps | eval |\n|---|---|---|---|\n", name, raw.Path)
	for i, st := range stages {
		sdir := fmt.Sprintf("%d-%s", i, st)
		s, err := rundir.ReadSummary(filepath.Join(dir, sdir))
		if err != nil {
			fmt.Fprintf(&b, "| [%s](%s/%s) | missing | | |\n", st, sdir, rundir.ReportFile)
			continue
		}
		var ev []string
		for _, k := range sortedKeys(s.Eval) {
			ev = append(ev, fmt.Sprintf("%s %s", k, formatValue(s.Eval[k])))
		}
		fmt.Fprintf(&b, "| [%s](%s/%s) | %s | %d/%d | %s |\n", st, sdir, rundir.ReportFile, s.Status, s.Steps, s.StepsPlan, strings.Join(ev, ", "))
	}
	return atomicio.WriteFile(filepath.Join(dir, rundir.ReportFile), []byte(b.String()), 0o644)
}

func sortedKeys(l experiment.Logs) []string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
