package rundir

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hiddenlab/hiddenlab/plot"
)

// The markers around the family's section of report.md.
const (
	FamilyBegin = "<!-- family section -->"
	FamilyEnd   = "<!-- end of family section -->"
)

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

// FamilySection returns the model family's section of a run's report.md
// (for a staged run, of its last stage that has one), or "" when there is
// none.
func FamilySection(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, ReportFile)); err == nil {
		s := string(b)
		if i := strings.Index(s, FamilyBegin); i >= 0 {
			s = s[i+len(FamilyBegin):]
			if j := strings.Index(s, FamilyEnd); j >= 0 {
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
