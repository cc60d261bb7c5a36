package rundir_test

import (
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/hiddenlab/hiddenlab/families" // registers the model families
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// exampleRecipe is a one-layer GPT on a small TokFSM: 4 steps, evaluated and
// checkpointed every 2, in well under a second.
const exampleRecipe = `
name: tiny
model: {family: gpt, width: 16, layers: 1, heads: 2}
data:
  kind: tokfsm
  tokfsm: {states: 8, edges: 2, seq_len: 9, eval_seqs: 8}
train:
  steps: 4
  batch: 4
  optimizer: {name: adamw, lr: 3.0e-3}
  threads: 1
  eval_every: 2
  checkpoint_every: 2
  log_every: 2
eval: {samples: 1, sample_len: 4}
output: {progress: false}
`

// Example runs a tiny recipe with the engine, then reads its run directory
// back: summary.json, metrics.jsonl, and the model itself through Open.
func Example() {
	tmp, err := os.MkdirTemp("", "rundir-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "tiny.yaml")
	if err := os.WriteFile(path, []byte(exampleRecipe), 0o644); err != nil {
		panic(err)
	}
	dir, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(tmp, "run")}})
	if err != nil {
		panic(err)
	}

	sum, err := rundir.ReadSummary(dir)
	if err != nil {
		panic(err)
	}
	fmt.Println("status:", sum.Status, "family:", sum.Family, "steps:", sum.Steps, "of", sum.StepsPlan)

	recs, err := rundir.ReadMetrics(dir)
	if err != nil {
		panic(err)
	}
	evals := 0
	for _, r := range recs {
		if r.Split == "eval" {
			evals++
		}
	}
	fmt.Println("eval records:", evals)

	torch.RunLocked(func() { // Open builds the model: on the device goroutine
		run, err := rundir.Open(dir, rundir.OpenOptions{Device: torch.CPU})
		if err != nil {
			panic(err)
		}
		defer run.Close()
		fmt.Println("reopened:", run.Recipe.Family, "at step", run.Step, "with", run.Experiment.Store().NumParams(nil) == sum.Params, "parameter count")
	})
	// Output:
	// status: completed family: gpt steps: 4 of 4
	// eval records: 2
	// reopened: gpt at step 4 with true parameter count
}
