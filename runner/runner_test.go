package runner_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/experiment"
	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// tinyRecipe is a GPT on a small TokFSM that trains in about a second.
const tinyRecipe = `
name: tiny
model: {family: gpt, width: 32, layers: 1, heads: 2}
data:
  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 17, eval_seqs: 32}
train:
  steps: 12
  batch: 8
  optimizer: {name: adamw, lr: 3.0e-3}
  schedule: {name: cosine, warmup: 2}
  threads: 1
  eval_every: 4
  checkpoint_every: 4
  log_every: 2
eval: {samples: 1, sample_len: 8}
output: {progress: false}
`

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func run(t *testing.T, path string, overrides ...string) (string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	return runner.Run(runner.Options{Recipe: path, ConfigsDir: filepath.Dir(path), Overrides: append(overrides, "output.dir="+dir)})
}

// TestRecipeErrors: bad recipes fail before anything is built, with a message
// naming the file (or override), the key path and what was expected.
func TestRecipeErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", tinyRecipe)
	cases := []struct {
		name      string
		body      string
		overrides []string
		env       []string
		want      string
	}{
		{"unknown key", strings.Replace(tinyRecipe, "steps: 12", "stpes: 12", 1), nil, nil,
			`bad.yaml: train.stpes: unknown key (did you mean "steps"?); known keys: batch, checkpoint_every, clip, device, eval_every, init_from, log_every, max_memory, optimizer, precision, schedule, seed, steps, tf32, threads`},
		{"wrong type", strings.Replace(tinyRecipe, "steps: 12", "steps: twelve", 1), nil, nil,
			`bad.yaml: train.steps: expected an integer, got string "twelve"`},
		{"wrong type nested", strings.Replace(tinyRecipe, "lr: 3.0e-3", "lr: fast", 1), nil, nil,
			`bad.yaml: train.optimizer.lr: expected a number, got string "fast"`},
		{"missing required", strings.Replace(tinyRecipe, "steps: 12", "", 1), nil, nil,
			`bad.yaml: train.steps: required, but missing`},
		{"missing model key", strings.Replace(tinyRecipe, "width: 32, ", "", 1), nil, nil,
			`bad.yaml: model.width: required, but missing`},
		{"unknown family", strings.Replace(tinyRecipe, "family: gpt", "family: lstm", 1), nil, nil,
			`bad.yaml: model.family: unknown family "lstm" (known: codebook, gpt`},
		{"unknown model key", strings.Replace(tinyRecipe, "heads: 2", "heads: 2, k: 8", 1), nil, nil,
			`bad.yaml: model.k: unknown key`},
		{"unknown top-level key", tinyRecipe + "trian: {}\n", nil, nil,
			`bad.yaml: trian: unknown key (did you mean "train"?); known keys: data, eval, model, name, output, stages, train`},
		{"bad value", strings.Replace(tinyRecipe, "name: adamw", "name: lion", 1), nil, nil,
			`bad.yaml: train.optimizer.name: want adamw or sgd, got "lion"`},
		{"bad data kind", strings.Replace(tinyRecipe, "kind: tokfsm", "kind: tokfsm2", 1), nil, nil,
			`data.tokfsm: given, but data.kind is "tokfsm2"`},
		{"not yaml", "model: [unclosed", nil, nil, `bad.yaml: not valid YAML`},
		{"bad override syntax", tinyRecipe, []string{"train.steps"}, nil, `command line: override "train.steps": want key.path=value`},
		{"bad override type", tinyRecipe, []string{"train.steps=abc"}, nil, `command line: train.steps: expected an integer, got string "abc"`},
		{"bad override key", tinyRecipe, []string{"train.stepz=3"}, nil, `command line: train.stepz: unknown key (did you mean "steps"?)`},
		{"bad environment", tinyRecipe, nil, []string{"HIDDENLAB_TRAIN__BATCH=big"}, `environment HIDDENLAB_TRAIN__BATCH: train.batch: expected an integer, got string "big"`},
		{"missing base", "base: nowhere.yaml\n" + tinyRecipe, nil, nil, `bad.yaml: base: base "nowhere.yaml" not found`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "bad.yaml", c.body)
			// Without a valid override the run directory would default to runs/ here.
			env := append([]string{"HIDDENLAB_OUTPUT__DIR=" + filepath.Join(t.TempDir(), "run")}, c.env...)
			_, err := runner.Run(runner.Options{Recipe: p, ConfigsDir: dir, Overrides: c.overrides, Env: env,
				StopAfter: 1, Log: t.Logf})
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
	_, err := runner.Run(runner.Options{Recipe: "no-such-recipe", RecipesDir: dir})
	require.ErrorContains(t, err, `recipe "no-such-recipe" not found`)
	require.ErrorContains(t, err, "good.yaml", "lists the recipes that exist")
	_ = good
}

// TestCompositionAndPrecedence: base < recipe < environment < command line,
// and the resolved recipe saved with the run shows the result.
func TestCompositionAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "base.yaml", strings.Replace(tinyRecipe, "name: tiny", "name: base", 1))
	p := writeFile(t, dir, "child.yaml", "base: base.yaml\nname: child\ntrain: {steps: 6, batch: 4}\n")
	out := filepath.Join(t.TempDir(), "run")
	_, err := runner.Run(runner.Options{Recipe: p, ConfigsDir: dir, Env: []string{"HIDDENLAB_TRAIN__BATCH=6", "HIDDENLAB_TRAIN__LOG_EVERY=3"},
		Overrides: []string{"train.batch=5", "output.dir=" + out}})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(out, rundir.RecipeFile))
	require.NoError(t, err)
	resolved := string(b)
	require.Contains(t, resolved, "name: child")
	require.Contains(t, resolved, "steps: 6")     // recipe over base
	require.Contains(t, resolved, "batch: 5")     // command line over environment
	require.Contains(t, resolved, "log_every: 3") // environment over base
	require.Contains(t, resolved, "width: 32")    // from the base
	require.Contains(t, resolved, "min_factor: 0.1", "defaults are filled in")
	s, err := rundir.ReadSummary(out)
	require.NoError(t, err)
	require.Equal(t, 6, s.Steps)
}

// withoutTiming drops the wall-time fields from metrics.jsonl.
func withoutTiming(t *testing.T, dir string) []string {
	t.Helper()
	recs, err := rundir.ReadMetrics(dir)
	require.NoError(t, err)
	var out []string
	for _, r := range recs {
		for _, k := range rundir.TimingKeys {
			delete(r.Values, k)
		}
		r.At, r.Time = 0, time.Time{}
		b, _ := json.Marshal(r)
		out = append(out, string(b))
	}
	return out
}

// TestRunDirectoryAndDeterminism: a run writes a self-describing directory,
// and the same recipe, seed and threads give identical metrics.
func TestRunDirectoryAndDeterminism(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", tinyRecipe)
	baseline := torch.LiveTensors()
	a, err := run(t, p)
	require.NoError(t, err)
	require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after a run")
	for _, f := range []string{rundir.RecipeFile, rundir.EnvFile, rundir.MetricsFile, rundir.SummaryFile, rundir.ReportFile,
		"plots/loss.png", "checkpoints/latest"} {
		require.FileExists(t, filepath.Join(a, f))
	}
	s, err := rundir.ReadSummary(a)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	require.Equal(t, 12, s.Steps)
	require.Less(t, s.Eval["loss"], math.Log(9), "learns below the uniform loss over the 9 tokens")
	report, _ := os.ReadFile(filepath.Join(a, rundir.ReportFile))
	require.Contains(t, string(report), "## Final numbers")
	require.Contains(t, string(report), "## Samples")
	require.Contains(t, string(report), "## Environment")
	sec := rundir.FamilySection(a)
	require.Contains(t, sec, "## Samples", "the family's section is found in report.md")
	require.NotContains(t, sec, "## Environment")
	var env rundir.Environment
	b, _ := os.ReadFile(filepath.Join(a, rundir.EnvFile))
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, torch.Version(), env.Torch)
	require.Equal(t, 1, env.Threads)

	b2, err := run(t, p)
	require.NoError(t, err)
	ma, mb := withoutTiming(t, a), withoutTiming(t, b2)
	require.NotEmpty(t, ma)
	require.Equal(t, ma, mb, "same recipe, seed and threads: identical metrics")
	c, err := run(t, p, "train.seed=2")
	require.NoError(t, err)
	require.NotEqual(t, ma, withoutTiming(t, c), "another seed differs")
}

// TestBF16Precision: train.precision: bf16 trains under CPU autocast.
func TestBF16Precision(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", tinyRecipe)
	dir, err := run(t, p, "train.precision=bf16")
	require.NoError(t, err)
	s, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	require.Less(t, s.Eval["loss"], math.Log(9))
	_, err = run(t, p, "train.precision=fp8")
	require.ErrorContains(t, err, `train.precision: want fp32 or bf16, got "fp8"`)
}

// TestResumeEqualsUninterrupted: a run stopped at step 6 (as by SIGINT) and
// resumed logs exactly what an uninterrupted run logs.
func TestResumeEqualsUninterrupted(t *testing.T) {
	p := writeFile(t, t.TempDir(), "tiny.yaml", strings.Replace(tinyRecipe, "width: 32", "width: 32, dropout: 0.1", 1))
	full, err := run(t, p)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "run")
	_, err = runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir}, StopAfter: 6})
	require.ErrorIs(t, err, runner.ErrInterrupted)
	s, err := rundir.ReadSummary(dir)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusInterrupt, s.Status)
	require.Equal(t, 6, s.Steps)
	_, err = runner.Run(runner.Options{Resume: dir})
	require.NoError(t, err)
	s, _ = rundir.ReadSummary(dir)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	require.Equal(t, withoutTiming(t, full), withoutTiming(t, dir))
	var env rundir.Environment
	b, _ := os.ReadFile(filepath.Join(dir, rundir.EnvFile))
	require.NoError(t, json.Unmarshal(b, &env))
	require.Len(t, env.Resumes, 1)
}

// failing is a test family whose loss turns NaN, or whose step panics, at a
// given step.
type failing struct {
	mode string
}

type failingExp struct {
	s    *nn.Store
	w    *torch.Tensor
	mode string
}

func (f failing) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	var cfg struct {
		Family string `key:"family"`
	}
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	s := nn.NewStore()
	w := s.Root().Param("w", torch.Ones([]int{3}))
	return &failingExp{s: s, w: w, mode: f.mode}, nil
}

func (e *failingExp) Store() *nn.Store { return e.s }
func (e *failingExp) Loss(step int) (*torch.Tensor, experiment.Logs) {
	if step == 5 {
		if e.mode == "panic" {
			panic("something broke inside the step")
		}
		return e.w.Sum().MulScalar(math.NaN()), nil
	}
	return e.w.Square().Sum(), experiment.Logs{"tokens": 1}
}
func (e *failingExp) Eval() experiment.Logs         { return experiment.Logs{"loss": 1} }
func (e *failingExp) Report(string) (string, error) { return "", nil }
func (e *failingExp) Close()                        { e.s.Close() }

func init() {
	experiment.Register("test-nan", failing{mode: "nan"})
	experiment.Register("test-panic", failing{mode: "panic"})
}

// TestFailuresBecomeReports: a NaN loss stops the run before the update and
// keeps the last good checkpoint; a panic inside a step becomes an error in
// the report; neither crashes the process.
func TestFailuresBecomeReports(t *testing.T) {
	for _, c := range []struct{ family, want string }{
		{"test-nan", "step 5: loss is NaN: stopping before the update; the last good checkpoint is kept"},
		{"test-panic", "step 5: internal error: something broke inside the step"},
	} {
		t.Run(c.family, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "r.yaml", fmt.Sprintf(
				"model: {family: %s}\ntrain: {steps: 10, checkpoint_every: 2, eval_every: 2, threads: 1}\noutput: {progress: false}\n", c.family))
			dir, err := run(t, p)
			require.ErrorContains(t, err, c.want)
			s, rerr := rundir.ReadSummary(dir)
			require.NoError(t, rerr)
			require.Equal(t, rundir.StatusFailed, s.Status)
			require.Contains(t, s.Error, c.want)
			report, _ := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
			require.Contains(t, string(report), c.want)
			latest, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "latest"))
			require.Equal(t, "step-000000004\n", string(latest), "the last good checkpoint stays")
		})
	}
}

// TestStages: a staged recipe trains stage by stage, the second starting from
// the first's weights, and a rerun skips completed stages.
func TestStages(t *testing.T) {
	body := tinyRecipe + `
stages:
  - name: pre
    train: {steps: 4}
  - name: fine
    train: {steps: 4, init_from: pre}
`
	p := writeFile(t, t.TempDir(), "staged.yaml", body)
	dir := filepath.Join(t.TempDir(), "run")
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	_, err := runner.Run(runner.Options{Recipe: p, Overrides: []string{"output.dir=" + dir}, Log: logf})
	require.NoError(t, err)
	for _, st := range []string{"0-pre", "1-fine"} {
		s, err := rundir.ReadSummary(filepath.Join(dir, st))
		require.NoError(t, err, st)
		require.Equal(t, rundir.StatusCompleted, s.Status)
	}
	require.Contains(t, strings.Join(logs, "\n"), "initialised from "+filepath.Join(dir, "0-pre"))
	report, _ := os.ReadFile(filepath.Join(dir, rundir.ReportFile))
	require.Contains(t, string(report), "[fine](1-fine/report.md)")
	require.Contains(t, rundir.FamilySection(dir), "## Samples", "a staged run's family section is its last stage's")
	logs = nil
	_, err = runner.Run(runner.Options{Resume: dir, Log: logf})
	require.NoError(t, err)
	require.Contains(t, strings.Join(logs, "\n"), "stage fine: already completed, skipping")
}
