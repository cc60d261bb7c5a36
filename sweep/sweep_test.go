package sweep_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/hiddenlab/hiddenlab/sweep"
)

const recipe = `
name: tiny
model: {family: gpt, width: 16, layers: 1, heads: 2}
data:
  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 9, eval_seqs: 16}
train: {steps: 6, batch: 4, threads: 1, eval_every: 3, log_every: 3, optimizer: {name: adamw, lr: 3.0e-3}}
eval: {samples: 0}
`

const experiment = `
name: demo
recipe: %RECIPE%
seeds: [1, 2]
workers: 2
threads: 1
overrides: ["train.steps=6"]
grid:
  model.width: [16, 32]
metrics: [eval.loss, eval.accuracy, params]
curves: [eval.loss]
dir: %DIR%
`

func TestExpansion(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "e.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`
recipe: r.yaml
seeds: [1, 2, 3]
runs:
  - {name: small, set: {model.width: 16}}
  - {name: big, set: {model.width: 64, model.heads: 4}}
grid:
  train.optimizer.lr: [0.001, 0.01]
`), 0o644))
	e, err := sweep.Load(p)
	require.NoError(t, err)
	var names []string
	for _, pt := range e.Points() {
		names = append(names, pt.Name)
	}
	require.Equal(t, []string{"small,lr=0.001", "small,lr=0.01", "big,lr=0.001", "big,lr=0.01"}, names)
	require.Equal(t, []string{"model.heads=4", "model.width=64", "train.optimizer.lr=0.01"}, e.Points()[3].Overrides)
	require.Len(t, e.Jobs(), 12)
	args := e.Args(e.Jobs()[0])
	require.Equal(t, "r.yaml", args[0])
	require.Contains(t, args, "train.seed=1")
	require.Contains(t, args, "output.dir="+filepath.Join("sweeps", "e", "small,lr=0.001", "seed-1"))

	for _, c := range []struct{ body, want string }{
		{"seeds: [1]\n", "recipe: required"},
		{"recipe: r\nbogus: 1\n", p + ": bogus: unknown key; known keys: curves, dir, grid, metrics, name, overrides, recipe, runs, seeds, threads, workers"},
		{"recipe: r\nseed: [1]\n", `seed: unknown key (did you mean "seeds"?)`},
		{"recipe: r\nruns: [{name: a, sett: {a: 1}}]\n", `runs[0].sett: unknown key (did you mean "set"?)`},
		{"recipe: r\nworkers: two\n", `workers: expected an integer, got string "two"`},
		{"recipe: r\ngrid: {model.width: 16}\n", `grid.model.width: expected a list, got integer 16`},
		{"recipe: r\nruns: [{set: {a: 1}}]\n", "runs[0].name: required"},
		{"recipe: r\nruns: [{name: a}, {name: a}]\n", `duplicate name "a"`},
	} {
		require.NoError(t, os.WriteFile(p, []byte(c.body), 0o644))
		_, err := sweep.Load(p)
		require.ErrorContains(t, err, c.want)
	}
}

// TestLoadRepositoryExperiments: every experiments/*.yaml reads under the
// strict loader.
func TestLoadRepositoryExperiments(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "experiments", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		e, err := sweep.Load(p)
		require.NoError(t, err, p)
		require.NotEmpty(t, e.Points(), p)
	}
}

// TestSweepRunsAndTabulates builds the hiddenlab binary and runs a 4-run
// sweep (2 widths × 2 seeds) with 2 workers, then checks the table, and that
// a rerun skips the finished runs.
func TestSweepRunsAndTabulates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and trains 4 tiny models")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hiddenlab")
	build := exec.Command("go", "build", "-o", bin, "github.com/hiddenlab/hiddenlab/cmd/hiddenlab")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	rp := filepath.Join(dir, "tiny.yaml")
	require.NoError(t, os.WriteFile(rp, []byte(recipe), 0o644))
	ep := filepath.Join(dir, "demo.yaml")
	body := strings.NewReplacer("%RECIPE%", rp, "%DIR%", filepath.Join(dir, "sweep")).Replace(experiment)
	require.NoError(t, os.WriteFile(ep, []byte(body), 0o644))
	e, err := sweep.Load(ep)
	require.NoError(t, err)

	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, f) }
	results, err := sweep.Run(context.Background(), e, sweep.Options{Binary: bin, Log: logf, Cores: 2})
	require.NoError(t, err)
	require.Len(t, results, 4)
	for _, r := range results {
		require.NoError(t, r.Err)
		require.False(t, r.Skipped)
		require.Equal(t, sweep.Done, sweep.StateOf(r.Job.Dir))
	}
	md, err := os.ReadFile(filepath.Join(e.Dir, "results.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "| config | n | eval.loss | eval.accuracy | params |")
	require.Contains(t, string(md), "| width=16 | 2 |")
	require.Contains(t, string(md), "| width=32 | 2 |")
	csv, err := os.ReadFile(filepath.Join(e.Dir, "results.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, "config,n,eval.loss_mean,eval.loss_std,eval.accuracy_mean,eval.accuracy_std,params_mean,params_std,seeds", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "width=16,2,"))
	require.FileExists(t, filepath.Join(e.Dir, "bar_eval_loss.png"))
	require.FileExists(t, filepath.Join(e.Dir, "curve_eval_loss.png"))
	// runs.csv: one row per run with the grid as columns, loaded by a short
	// script (Python's csv module) into per-run rows.
	script := `import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(len(rows))
for r in rows:
    print(r["config"], r["model.width"], r["seed"], r["status"], float(r["eval.loss"]) > 0, int(r["params"]) > 0)
`
	py, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(e.Dir, "runs.csv")).CombinedOutput()
	require.NoError(t, err, "%s", py)
	require.Equal(t, "4\nwidth=16 16 1 completed True True\nwidth=16 16 2 completed True True\n"+
		"width=32 32 1 completed True True\nwidth=32 32 2 completed True True\n", string(py))
	require.Contains(t, string(md), "- `eval.loss`: eval cross-entropy (nats/token)")
	rows := sweep.Rows(e)
	require.Equal(t, []int{1, 2}, rows[0].Seeds)
	require.Less(t, rows[0].Mean("params"), rows[1].Mean("params"))
	require.Greater(t, rows[0].Std("eval.loss"), 0.0, "seeds differ")

	// A rerun skips everything that finished.
	results, err = sweep.Run(context.Background(), e, sweep.Options{Binary: bin, Log: logf, Cores: 2})
	require.NoError(t, err)
	for _, r := range results {
		require.True(t, r.Skipped)
	}
	// An interrupted run is resumed, not restarted.
	job := e.Jobs()[0]
	require.NoError(t, os.Remove(filepath.Join(job.Dir, "summary.json")))
	require.Equal(t, sweep.Interrupted, sweep.StateOf(job.Dir))
	results, err = sweep.Run(context.Background(), e, sweep.Options{Binary: bin, Log: logf, Cores: 2})
	require.NoError(t, err)
	require.False(t, results[0].Skipped)
	log, _ := os.ReadFile(filepath.Join(job.Dir, "run.log"))
	require.Contains(t, string(log), "-resume "+job.Dir)
	require.Equal(t, sweep.Done, sweep.StateOf(job.Dir))
	require.Equal(t, rows[0].Values["eval.loss"], sweep.Rows(e)[0].Values["eval.loss"], "the resumed run keeps its numbers")
}

// TestEmitClusterJobs: the Slurm script and the Kubernetes manifest are valid
// (bash -n; YAML) and name every configuration × seed exactly once.
func TestEmitClusterJobs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "e.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`
name: Demo Sweep
recipe: recipes/x.yaml
seeds: [1, 2]
workers: 3
threads: 2
runs:
  - {name: "with space", set: {eval.prompts: ["Once upon a time", "it's"]}}
  - {name: b, set: {model.width: 64}}
grid:
  train.optimizer.lr: [0.001, 0.01]
dir: `+filepath.Join(dir, "out")+`
`), 0o644))
	e, err := sweep.Load(p)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(e.Dir, 0o755))
	jobs := e.Jobs()
	require.Len(t, jobs, 8)

	sp, err := sweep.Emit(e, "slurm", "./bin/hiddenlab", "", "")
	require.NoError(t, err)
	script, _ := os.ReadFile(sp)
	out, err := exec.Command("bash", "-n", sp).CombinedOutput()
	require.NoError(t, err, "bash -n: %s", out)
	require.Contains(t, string(script), "#SBATCH --array=0-7%3")
	require.Contains(t, string(script), "#SBATCH --cpus-per-task=2")
	for _, j := range jobs {
		require.Equal(t, 1, strings.Count(string(script), "dir="+shellish(j.Dir)+";"), j.Dir)
	}
	// Running task 0 with a stand-in binary passes the quoted arguments intact.
	fake := filepath.Join(dir, "fake.sh")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/bash\nprintf '%s\\n' \"$@\"\n"), 0o755))
	body := strings.ReplaceAll(string(script), "./bin/hiddenlab", fake)
	cmd := exec.Command("bash", "-c", body)
	cmd.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID=0")
	got, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", got)
	require.Contains(t, string(got), "eval.prompts=[Once upon a time, it's]\n", "one argument, quotes intact")
	require.Contains(t, string(got), "train.seed=1\n")

	kp, err := sweep.Emit(e, "k8s", "hiddenlab", "registry/hiddenlab:1", "claim")
	require.NoError(t, err)
	b, _ := os.ReadFile(kp)
	var job map[string]any
	require.NoError(t, yaml.Unmarshal(b, &job))
	spec := job["spec"].(map[string]any)
	require.Equal(t, "Indexed", spec["completionMode"])
	require.Equal(t, 8, spec["completions"])
	require.Equal(t, 3, spec["parallelism"])
	require.Equal(t, "hiddenlab-demo-sweep", job["metadata"].(map[string]any)["name"])
	container := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	require.Equal(t, "registry/hiddenlab:1", container["image"])
	cmdText := container["command"].([]any)[2].(string)
	for _, j := range jobs {
		require.Equal(t, 1, strings.Count(cmdText, "dir="+shellish(j.Dir)+";"), j.Dir)
	}
	_, err = sweep.Emit(e, "pbs", "", "", "")
	require.ErrorContains(t, err, `-emit "pbs": want slurm or k8s`)
}

// shellish quotes a directory the way the generated scripts do.
func shellish(s string) string {
	if strings.ContainsAny(s, " '") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
