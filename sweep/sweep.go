// Package sweep runs a grid of recipe variants over seeds in parallel worker
// processes, under a thread budget, and tabulates and plots the results. A
// sweep is re-runnable: finished runs are skipped and interrupted ones
// resumed.
package sweep

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
)

// Experiment is an experiments/*.yaml file, read with the recipe package's
// strict decoder (unknown keys are errors with a "did you mean" hint).
type Experiment struct {
	Name    string `key:"name"`
	Recipe  string `key:"recipe" required:"true"` // recipe name or path
	Seeds   []int  `key:"seeds"`
	Workers int    `key:"workers"`
	Threads int    `key:"threads"` // libtorch threads per run
	// Overrides apply to every run.
	Overrides []string `key:"overrides"`
	// Runs are named configurations (key.path: value overrides).
	Runs []Config `key:"runs"`
	// Grid crosses every listed value of each key with the runs.
	Grid map[string][]any `key:"grid"`
	// Metrics are the table's columns: eval.<k>, train.<k>, extra.<k>,
	// params, wall_s or tok_per_s of each run's summary.json.
	Metrics []string `key:"metrics"`
	// Curves are eval metrics plotted against steps (mean ± std over seeds).
	Curves []string `key:"curves"`
	// Dir is where runs go (default sweeps/<name>).
	Dir string `key:"dir"`

	path string
}

// Config is one point of the sweep.
type Config struct {
	Name string         `key:"name" required:"true"`
	Set  map[string]any `key:"set"`
}

// Load reads and checks an experiment file as recipes are read: strictly
// (an unknown key, a wrong type or a missing required key is an error naming
// the file and the key path, with a "did you mean" hint).
func Load(path string) (*Experiment, error) {
	var e Experiment
	if err := recipe.DecodeFile(path, &e); err != nil {
		return nil, err
	}
	e.path = path
	if e.Name == "" {
		e.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	bad := func(key, format string, args ...any) error {
		return &recipe.SourceError{Source: path, Err: &recipe.KeyError{Key: key, Reason: fmt.Sprintf(format, args...)}}
	}
	switch {
	case e.Recipe == "":
		return nil, bad("recipe", "expected a recipe name or path")
	case len(e.Seeds) == 0:
		e.Seeds = []int{1}
	}
	if e.Threads == 0 {
		e.Threads = 1
	}
	if e.Workers == 0 {
		e.Workers = max(1, runtime.NumCPU()/e.Threads)
	}
	if e.Workers < 1 || e.Threads < 1 {
		return nil, bad("workers", "workers and threads must be positive")
	}
	if e.Dir == "" {
		e.Dir = filepath.Join("sweeps", e.Name)
	}
	if len(e.Metrics) == 0 {
		e.Metrics = []string{"eval.loss"}
	}
	seen := map[string]bool{}
	for i, c := range e.Runs {
		if c.Name == "" {
			return nil, bad(fmt.Sprintf("runs[%d].name", i), "expected a non-empty name")
		}
		if seen[c.Name] {
			return nil, bad(fmt.Sprintf("runs[%d].name", i), "duplicate name %q", c.Name)
		}
		seen[c.Name] = true
	}
	keys := make([]string, 0, len(e.Grid))
	for k := range e.Grid {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(e.Grid[k]) == 0 {
			return nil, bad("grid."+k, "needs at least one value")
		}
	}
	return &e, nil
}

// Point is one configuration of the sweep: its name and its overrides.
type Point struct {
	Name      string
	Overrides []string
}

// Points expands the runs and the grid into configurations.
func (e *Experiment) Points() []Point {
	base := []Point{{Name: "", Overrides: nil}}
	if len(e.Runs) > 0 {
		base = nil
		for _, c := range e.Runs {
			base = append(base, Point{Name: c.Name, Overrides: setOverrides(c.Set)})
		}
	}
	keys := make([]string, 0, len(e.Grid))
	for k := range e.Grid {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var next []Point
		for _, p := range base {
			for _, v := range e.Grid[k] {
				name := fmt.Sprintf("%s=%s", shortKey(k), formatValue(v))
				if p.Name != "" {
					name = p.Name + "," + name
				}
				next = append(next, Point{Name: name, Overrides: append(append([]string{}, p.Overrides...), k+"="+formatValue(v))})
			}
		}
		base = next
	}
	if len(base) == 1 && base[0].Name == "" {
		base[0].Name = "base"
	}
	return base
}

func setOverrides(set map[string]any) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, k+"="+formatValue(set[k]))
	}
	return out
}

// formatValue renders a YAML value as an override value (flow style).
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "\n") { // lists and maps in flow style
		var node yaml.Node
		node.Encode(v)
		node.Style = yaml.FlowStyle
		b, _ = yaml.Marshal(&node)
		s = strings.TrimSpace(string(b))
	}
	return s
}

// shortKey is the last segment of a key path (model.codebook.k → k).
func shortKey(k string) string {
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// Job is one run of the sweep.
type Job struct {
	Point Point
	Seed  int
	Dir   string
}

// StudyRuns lists Jobs as the runs a study reads (rundir.Completed).
func (e *Experiment) StudyRuns() []rundir.SweepRun {
	var runs []rundir.SweepRun
	for _, j := range e.Jobs() {
		runs = append(runs, rundir.SweepRun{Config: j.Point.Name, Seed: j.Seed, Dir: j.Dir})
	}
	return runs
}

// Jobs lists every (configuration, seed) run in order.
func (e *Experiment) Jobs() []Job {
	var jobs []Job
	for _, p := range e.Points() {
		for _, s := range e.Seeds {
			jobs = append(jobs, Job{Point: p, Seed: s, Dir: filepath.Join(e.Dir, sanitize(p.Name), fmt.Sprintf("seed-%d", s))})
		}
	}
	return jobs
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=', r == ',', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Args are the hiddenlab run arguments of a job (recipe, overrides).
func (e *Experiment) Args(j Job) []string {
	args := []string{e.Recipe}
	args = append(args, e.Overrides...)
	args = append(args, j.Point.Overrides...)
	return append(args, fmt.Sprintf("train.seed=%d", j.Seed), fmt.Sprintf("train.threads=%d", e.Threads),
		"output.dir="+j.Dir, "output.progress=false")
}
