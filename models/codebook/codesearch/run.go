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
	"fmt"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
)

// Run is a codebook run directory loaded for analysis: its resolved recipe,
// data and model with the latest checkpoint's weights, in eval mode.
type Run struct {
	Dir    string // the run (or stage) directory holding recipe.yaml
	Recipe *experiment.Recipe
	Data   lm.Data
	Model  *codebook.Model
	Step   int // the checkpoint's step
	run    *rundir.Run
}

// ResolveDir returns the directory holding a codebook run's recipe and
// checkpoints: dir itself, or for a staged run the last stage directory
// whose family is codebook.
func ResolveDir(dir string) (string, error) { return rundir.ResolveDir(dir, "codebook") }

// Open loads the run in dir (a run directory, a stage directory, or a
// staged run's top directory: its last codebook stage) onto device through
// rundir.Open, which rebuilds it as the codebook family does and loads the
// latest checkpoint.
func Open(dir string, device torch.Device) (*Run, error) {
	run, err := rundir.Open(dir, rundir.OpenOptions{Device: device, Family: "codebook"})
	if err != nil {
		return nil, err
	}
	x := run.Experiment.(lm.Opened).LM()
	m := x.M.(*codebook.Model)
	if len(m.Sites) == 0 {
		run.Close()
		return nil, fmt.Errorf("%s: the model has no codebooks (model.codebook.at is empty)", run.Dir)
	}
	return &Run{Dir: run.Dir, Recipe: run.Recipe, Data: x.D, Model: m, Step: run.Step, run: run}, nil
}

// Close frees the model.
func (r *Run) Close() { r.run.Close() }

// Books lists the run's codebooks in forward order.
func (r *Run) Books() []BookInfo {
	var out []BookInfo
	for _, s := range r.Model.Sites {
		l := r.Model.Layers[s]
		out = append(out, BookInfo{Site: s.String(), Groups: l.G, Codes: l.C, K: l.K})
	}
	return out
}
