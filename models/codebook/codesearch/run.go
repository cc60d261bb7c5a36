// Package codesearch is the interpretability toolkit of a trained codebook
// run (Tamkin et al. 2023, §4): it rebuilds the run's model from its
// directory, caches the code ids of every codebook over a dataset, lists the
// contexts where a code fires, searches codes for regex features against
// the best-neuron baseline, finds topic codes, and draws the figures. The
// hiddenlab codebook command is a thin layer over it.
//
// Everything that touches tensors (Open, BuildCache, Neurons) must run on
// one goroutine locked to its thread (torch.RunLocked); a loaded Cache is
// plain Go.
package codesearch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"hiddenlab/models/codebook"
	"hiddenlab/models/lm"
	"hiddenlab/runner"
	"hiddenlab/torch"
	"hiddenlab/torch/checkpoint"
	"hiddenlab/torch/nn"
)

// Run is a codebook run directory loaded for analysis: its resolved recipe,
// data and model with the latest checkpoint's weights, in eval mode.
type Run struct {
	Dir    string // the run (or stage) directory holding recipe.yaml
	Recipe *runner.Recipe
	Data   lm.Data
	Model  *codebook.Model
	Step   int // the checkpoint's step
}

// ResolveDir returns the directory holding a codebook run's recipe and
// checkpoints: dir itself, or for a staged run the last stage directory
// whose family is codebook.
func ResolveDir(dir string) (string, error) {
	stages, err := runner.StageDirs(dir)
	if err != nil {
		return "", err
	}
	if len(stages) == 0 {
		return dir, nil
	}
	for i := len(stages) - 1; i >= 0; i-- {
		r, err := runner.LoadRecipe(stages[i])
		if err == nil && r.Family == "codebook" {
			return stages[i], nil
		}
	}
	return "", fmt.Errorf("%s: no stage directory of family codebook (stages: %v)", dir, stages)
}

// Open loads the run in dir (a run directory, a stage directory, or a
// staged run's top directory: its last codebook stage) onto device: it
// decodes the resolved recipe, rebuilds the data and the model as the
// codebook family does (codebook.Build) and loads the latest checkpoint.
func Open(dir string, device torch.Device) (*Run, error) {
	sdir, err := ResolveDir(dir)
	if err != nil {
		return nil, err
	}
	r, err := runner.LoadRecipe(sdir)
	if err != nil {
		return nil, err
	}
	if r.Family != "codebook" {
		return nil, fmt.Errorf("%s: family %s has no codebooks (want a codebook run)", sdir, r.Family)
	}
	ckpt, err := checkpoint.Latest(filepath.Join(sdir, runner.CheckpointDir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (has the run saved a checkpoint?)", sdir, err)
	}
	var st checkpoint.State
	b, err := os.ReadFile(filepath.Join(ckpt, checkpoint.StateFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(ckpt, checkpoint.StateFile), err)
	}
	d, _, err := lm.LoadData(r, "", r.Train.Seed)
	if err != nil {
		return nil, err
	}
	torch.ManualSeed(r.Train.Seed)
	m, err := codebook.Build(r, runner.Env{Dir: sdir, Device: device}, d)
	if err != nil {
		return nil, err
	}
	if len(m.Sites) == 0 {
		m.Close()
		return nil, fmt.Errorf("%s: the model has no codebooks (model.codebook.at is empty)", sdir)
	}
	if err := checkpoint.LoadWeights(filepath.Join(ckpt, checkpoint.ModelFile), m.Store(), nn.LoadOptions{}); err != nil {
		m.Close()
		return nil, err
	}
	m.Store().Train(false)
	return &Run{Dir: sdir, Recipe: r, Data: d, Model: m, Step: int(st.Step)}, nil
}

// Close frees the model.
func (r *Run) Close() { r.Model.Close() }

// Books lists the run's codebooks in forward order.
func (r *Run) Books() []BookInfo {
	var out []BookInfo
	for _, s := range r.Model.Sites {
		l := r.Model.Layers[s]
		out = append(out, BookInfo{Site: s.String(), Groups: l.G, Codes: l.C, K: l.K})
	}
	return out
}
