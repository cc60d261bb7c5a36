package runner

import (
	"path/filepath"
	"sort"
	"strings"

	"hiddenlab/torch"
	"hiddenlab/torch/nn"
	"hiddenlab/torch/optim"
)

// Logs are named scalar metrics of one step or evaluation.
type Logs map[string]float64

// Experiment is what a model family builds from a recipe: a model, its data,
// and how to train and score it. All its methods run on the device goroutine,
// each inside a tensor scope the runner closes.
type Experiment interface {
	// Store holds the parameters that train and are checkpointed.
	Store() *nn.Store
	// Loss returns the training loss of step (built from that step's batch,
	// a pure function of the seed and the step, so resumed runs see the same
	// data) and the step's logs ("tokens" counts tokens for throughput).
	Loss(step int) (*torch.Tensor, Logs)
	// Eval scores the model on held-out data.
	Eval() Logs
	// Report writes the final artifacts (samples, tables, figures) into dir
	// and returns a Markdown section for report.md.
	Report(dir string) (string, error)
	// Close frees the model and data.
	Close()
}

// Grouper is implemented by experiments that split their parameters into
// optimizer groups themselves (e.g. codebooks with their own LR). Others get
// decay on matrices and embeddings, none on biases and norms.
type Grouper interface {
	Groups(o Optimizer) []*optim.Group
}

// Sharder is implemented by experiments that split each batch across
// data-parallel processes (lm.Experiment does); others train every rank on
// the same data, which is correct but gains nothing.
type Sharder interface {
	SetShard(rank, world int) error
}

// Env is what a family gets to build an experiment.
type Env struct {
	// Dir is the run (or stage) directory; empty on data-parallel ranks other
	// than 0, which write nothing.
	Dir    string
	Device torch.Device // where tensors go
	Log    func(format string, args ...any)
	// Rank and World describe data-parallel training (World 1: one process).
	Rank, World int
}

// Family builds experiments from recipes; families register by name.
type Family interface {
	// Build decodes the family's sections of r (model, data, eval) with
	// r.Decode and returns the experiment.
	Build(r *Recipe, env Env) (Experiment, error)
}

var families = map[string]Family{}

// Register makes a family available to recipes as model.family: name.
// It panics on a duplicate name.
func Register(name string, f Family) {
	if _, dup := families[name]; dup {
		panic("runner: family " + name + " registered twice")
	}
	families[name] = f
}

func familyNames() string {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none registered"
	}
	return strings.Join(names, ", ")
}

// defaultGroups puts matrices and embeddings (2+ dims) under weight decay and
// biases and norm gains (1 dim) without it, as nanoGPT does.
func defaultGroups(s *nn.Store, o Optimizer) []*optim.Group {
	var decay, plain []*nn.Param
	for _, p := range s.Params() {
		if !p.T.RequiresGrad() {
			continue
		}
		if p.T.Dim() >= 2 {
			decay = append(decay, p)
		} else {
			plain = append(plain, p)
		}
	}
	return []*optim.Group{
		group("decay", decay, o, o.LR, o.WeightDecay),
		group("no_decay", plain, o, o.LR, 0),
	}
}

// group builds an optimizer group from the recipe's optimizer settings.
func group(name string, ps []*nn.Param, o Optimizer, lr, wd float64) *optim.Group {
	g := &optim.Group{Name: name, Params: ps, LR: lr, WeightDecay: wd, Eps: o.Eps, Momentum: o.Momentum}
	if len(o.Betas) == 2 {
		g.Beta1, g.Beta2 = o.Betas[0], o.Betas[1]
	}
	return g
}

// Group is a helper for Groupers: an optimizer group with the recipe's betas,
// eps and momentum and the given LR and weight decay.
func Group(name string, ps []*nn.Param, o Optimizer, lr, wd float64) *optim.Group {
	return group(name, ps, o, lr, wd)
}

func trimExt(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
