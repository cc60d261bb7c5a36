// Package experiment is the contract between the training engine (package
// runner) and the model families (packages under models/): what a family
// builds from a recipe (an Experiment), what it is given to build it (an
// Env), the typed recipe sections every run has (Train, Output), and the
// registry that maps model.family names to families.
//
// Families import this package, never the engine. Optional capabilities are
// small named interfaces an Experiment may implement (Grouper, Sharder,
// Summarizer), as net/http's Flusher is to a ResponseWriter.
package experiment

import (
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// Logs are named scalar metrics of one step or evaluation.
type Logs map[string]float64

// Experiment is what a model family builds from a recipe: a model, its data,
// and how to train and score it. All its methods run on the device goroutine,
// each inside a tensor scope the engine closes.
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
// DefaultGroups.
type Grouper interface {
	Groups(o Optimizer) []*optim.Group
}

// Sharder is implemented by experiments that split each batch across
// data-parallel processes (lm.Experiment does); others train every rank on
// the same data, which is correct but gains nothing.
type Sharder interface {
	SetShard(rank, world int) error
}

// Summarizer is implemented by experiments with family-specific final
// results; they are stored under "extra" in the run's summary.json.
type Summarizer interface {
	Extra() map[string]any
}

// Record is one step's training logs or one evaluation.
type Record struct {
	Step   int       // optimizer steps taken
	Split  string    // "train" or "eval"
	Values Logs      // the metrics
	At     float64   // elapsed seconds of the run (across resumes)
	Time   time.Time // wall clock when it was recorded
	// Histograms are distributions logged with an evaluation by an
	// experiment that is a Histogrammer (sinks that draw them, TensorBoard,
	// do; metrics.jsonl keeps the scalars only).
	Histograms map[string][]float64
}

// Histogrammer is implemented by experiments with distributions to log at
// each evaluation, such as the codebook family's code usage.
type Histogrammer interface {
	Histograms() map[string][]float64
}

// Sink receives a run's records as the engine produces them: the run
// directory's metrics.jsonl, TensorBoard event files, the console.
type Sink interface {
	Write(r Record) error
	Close() error
}

// Env is what a family gets to build an experiment.
type Env struct {
	// Dir is the run (or stage) directory; empty on data-parallel ranks other
	// than 0, which write nothing, and when a finished run is reopened for
	// analysis (nothing is written then either).
	Dir    string
	Device torch.Device // where tensors go
	Log    func(format string, args ...any)
	// Rank and World describe data-parallel training (World 1: one process).
	Rank, World int
}

// Logf logs through e.Log when it is set.
func (e Env) Logf(format string, args ...any) {
	if e.Log != nil {
		e.Log(format, args...)
	}
}

// Family builds experiments from recipes.
type Family interface {
	// Build decodes the family's sections of r (model, data, eval) with
	// r.Decode and returns the experiment.
	Build(r *Recipe, env Env) (Experiment, error)
}

var families = map[string]Family{}

// Register makes a family available to recipes as model.family: name. It
// panics on a duplicate name (a programming error in the one registration
// list, package families).
func Register(name string, f Family) {
	if _, dup := families[name]; dup {
		panic("experiment: family " + name + " registered twice")
	}
	families[name] = f
}

// Lookup returns the family registered under name.
func Lookup(name string) (Family, bool) {
	f, ok := families[name]
	return f, ok
}

// Families lists the registered family names in order.
func Families() []string {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func familyNames() string {
	if len(families) == 0 {
		return "none registered"
	}
	return strings.Join(Families(), ", ")
}

// DefaultGroups puts matrices and embeddings (2+ dims) under weight decay and
// biases and norm gains (1 dim) without it, as nanoGPT does.
func DefaultGroups(s *nn.Store, o Optimizer) []*optim.Group {
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
		Group("decay", decay, o, o.LR, o.WeightDecay),
		Group("no_decay", plain, o, o.LR, 0),
	}
}

// Group is an optimizer group with the recipe's betas, eps and momentum and
// the given LR and weight decay.
func Group(name string, ps []*nn.Param, o Optimizer, lr, wd float64) *optim.Group {
	g := &optim.Group{Name: name, Params: ps, LR: lr, WeightDecay: wd, Eps: o.Eps, Momentum: o.Momentum}
	if len(o.Betas) == 2 {
		g.Beta1, g.Beta2 = o.Betas[0], o.Betas[1]
	}
	return g
}

// NameOf is a recipe's default name: its file name without the extension.
func NameOf(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
