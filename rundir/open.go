package rundir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Run is a finished (or checkpointed) run reopened for analysis: its
// resolved recipe and its experiment rebuilt by the family, with the latest
// checkpoint's weights loaded and the model in eval mode.
type Run struct {
	Dir        string // the run or stage directory that holds recipe.yaml
	Recipe     *experiment.Recipe
	Experiment experiment.Experiment
	Checkpoint string // the checkpoint directory the weights came from
	Step       int    // its step
}

// OpenOptions say which run to open and where.
type OpenOptions struct {
	Device torch.Device
	// Family picks, in a staged run, the last stage of this family; empty:
	// the last stage. A run of another family is an error.
	Family string
}

// Open rebuilds the run in dir (a run directory, a stage directory, or a
// staged run's top directory) through the family registry: the family's
// Build makes the experiment from the saved recipe exactly as training did
// (writing nothing), and the latest checkpoint's weights are loaded. It
// must run on the device goroutine (torch.RunLocked); Close frees it there.
func Open(dir string, o OpenOptions) (*Run, error) {
	sdir, err := ResolveDir(dir, o.Family)
	if err != nil {
		return nil, err
	}
	r, err := LoadRecipe(sdir)
	if err != nil {
		return nil, err
	}
	if o.Family != "" && r.Family != o.Family {
		return nil, fmt.Errorf("%s: model.family is %s (want a %s run)", sdir, r.Family, o.Family)
	}
	fam, ok := experiment.Lookup(r.Family)
	if !ok {
		return nil, fmt.Errorf("%s: model.family %q is not registered (known: %v)", sdir, r.Family, experiment.Families())
	}
	ckpt, err := checkpoint.Latest(filepath.Join(sdir, CheckpointDir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (has the run saved a checkpoint?)", sdir, err)
	}
	st, err := readState(ckpt)
	if err != nil {
		return nil, err
	}
	torch.ManualSeed(r.Train.Seed)
	exp, err := fam.Build(r, experiment.Env{Device: o.Device, World: 1})
	if err != nil {
		return nil, fmt.Errorf("%s: rebuilding the %s model: %w", sdir, r.Family, err)
	}
	if err := checkpoint.LoadWeights(filepath.Join(ckpt, checkpoint.ModelFile), exp.Store(), nn.LoadOptions{}); err != nil {
		exp.Close()
		return nil, err
	}
	exp.Store().Train(false)
	return &Run{Dir: sdir, Recipe: r, Experiment: exp, Checkpoint: ckpt, Step: int(st.Step)}, nil
}

// Close frees the experiment.
func (r *Run) Close() { r.Experiment.Close() }

// ResolveDir returns the directory holding a run's recipe and checkpoints:
// dir itself, or for a staged run its last stage directory (of family, when
// family is not empty).
func ResolveDir(dir, family string) (string, error) {
	stages, err := StageDirs(dir)
	if err != nil {
		return "", err
	}
	if len(stages) == 0 {
		return dir, nil
	}
	for i := len(stages) - 1; i >= 0; i-- {
		if family == "" {
			return stages[i], nil
		}
		if r, err := LoadRecipe(stages[i]); err == nil && r.Family == family {
			return stages[i], nil
		}
	}
	return "", fmt.Errorf("%s: no stage directory of family %s (stages: %v)", dir, family, stages)
}

func readState(ckpt string) (checkpoint.State, error) {
	var st checkpoint.State
	path := filepath.Join(ckpt, checkpoint.StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}
