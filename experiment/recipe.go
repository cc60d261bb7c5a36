package experiment

import (
	"fmt"
	"math"
	"runtime"
	"sort"

	"github.com/hiddenlab/hiddenlab/recipe"
)

// Train is the recipe's train section.
type Train struct {
	Steps           int       `key:"steps" required:"true"`
	Batch           int       `key:"batch"`
	Optimizer       Optimizer `key:"optimizer"`
	Schedule        Schedule  `key:"schedule"`
	Clip            float64   `key:"clip"` // global grad-norm limit (0: off)
	Seed            uint64    `key:"seed"`
	Device          string    `key:"device"` // cpu, cuda, cuda:N or auto
	Threads         int       `key:"threads"`
	Precision       string    `key:"precision"` // fp32, or bf16 (autocast; no loss scaling needed)
	TF32            bool      `key:"tf32"`      // TensorFloat-32 for fp32 matmuls on the GPU
	EvalEvery       int       `key:"eval_every"`
	CheckpointEvery int       `key:"checkpoint_every"`
	LogEvery        int       `key:"log_every"`
	// InitFrom loads weights before training: a run directory, a checkpoint
	// directory, a .safetensors file, or the name of an earlier stage.
	// Parameters the source lacks (e.g. inserted codebooks) keep their
	// initialisation.
	InitFrom string `key:"init_from"`
	// MaxMemory caps the memory preflight's estimate, in GiB (0: the
	// machine's available memory).
	MaxMemory float64 `key:"max_memory"`
}

// MaxThreads is the largest train.threads accepted: 4× the machine's cores.
func MaxThreads() int { return 4 * runtime.NumCPU() }

// Optimizer configures the optimizer.
type Optimizer struct {
	Name        string    `key:"name"` // adamw or sgd
	LR          float64   `key:"lr"`
	WeightDecay float64   `key:"weight_decay"` // on matrices and embeddings only
	Betas       []float64 `key:"betas"`
	Eps         float64   `key:"eps"`
	Momentum    float64   `key:"momentum"` // sgd
}

// Schedule configures the learning-rate schedule.
type Schedule struct {
	Name      string  `key:"name"` // constant, cosine or linear
	Warmup    int     `key:"warmup"`
	MinFactor float64 `key:"min_factor"` // final LR as a fraction of the peak
}

// Output configures the run directory.
type Output struct {
	// Dir is the run directory; empty: runs/<name>/<timestamp>.
	Dir             string `key:"dir"`
	KeepCheckpoints int    `key:"keep_checkpoints"`
	Progress        bool   `key:"progress"` // a live progress bar when stderr is a terminal
	// TensorBoard writes event files into the run directory (on by default).
	TensorBoard bool `key:"tensorboard"`
}

// Header is the part of a recipe every run reads.
type Header struct {
	Name   string `key:"name"`
	Family string `key:"-"`
}

func defaultTrain() Train {
	return Train{
		Batch:     16,
		Optimizer: Optimizer{Name: "adamw", LR: 1e-3, WeightDecay: 0.1, Betas: []float64{0.9, 0.95}, Eps: 1e-8},
		Schedule:  Schedule{Name: "cosine", MinFactor: 0.1},
		Clip:      1.0, Seed: 1, Device: "cpu", Threads: 2, Precision: "fp32",
		EvalEvery: 0, CheckpointEvery: 0, LogEvery: 10,
	}
}

// Validate checks value ranges the decoder cannot.
func (t *Train) Validate() error {
	check := func(ok bool, key, format string, args ...any) error {
		if ok {
			return nil
		}
		return &recipe.KeyError{Key: "train." + key, Reason: fmt.Sprintf(format, args...)}
	}
	for _, err := range []error{
		check(t.Steps > 0, "steps", "must be positive, got %d", t.Steps),
		check(t.Batch > 0, "batch", "must be positive, got %d", t.Batch),
		check(t.Threads > 0, "threads", "must be positive, got %d", t.Threads),
		check(t.Threads <= MaxThreads(), "threads", "%d is more than 4× this machine's %d cores", t.Threads, runtime.NumCPU()),
		check(t.Optimizer.Name == "adamw" || t.Optimizer.Name == "sgd", "optimizer.name", "want adamw or sgd, got %q", t.Optimizer.Name),
		check(t.Optimizer.LR > 0 && !math.IsInf(t.Optimizer.LR, 0), "optimizer.lr", "must be positive, got %v", t.Optimizer.LR),
		check(t.Optimizer.WeightDecay >= 0, "optimizer.weight_decay", "must not be negative, got %v", t.Optimizer.WeightDecay),
		check(len(t.Optimizer.Betas) == 2 && t.Optimizer.Betas[0] >= 0 && t.Optimizer.Betas[0] < 1 &&
			t.Optimizer.Betas[1] >= 0 && t.Optimizer.Betas[1] < 1, "optimizer.betas", "want two numbers in [0, 1), got %v", t.Optimizer.Betas),
		check(t.Optimizer.Eps >= 0, "optimizer.eps", "must not be negative, got %v", t.Optimizer.Eps),
		check(t.Optimizer.Momentum >= 0 && t.Optimizer.Momentum < 1, "optimizer.momentum", "want a number in [0, 1), got %v", t.Optimizer.Momentum),
		check(t.Schedule.Warmup >= 0, "schedule.warmup", "must not be negative, got %d", t.Schedule.Warmup),
		check(t.Schedule.MinFactor >= 0 && t.Schedule.MinFactor <= 1, "schedule.min_factor", "want a number in [0, 1], got %v", t.Schedule.MinFactor),
		check(t.Clip >= 0, "clip", "must not be negative, got %v", t.Clip),
		check(t.Precision == "fp32" || t.Precision == "bf16", "precision", "want fp32 or bf16, got %q", t.Precision),
		check(t.EvalEvery >= 0, "eval_every", "must not be negative, got %d", t.EvalEvery),
		check(t.CheckpointEvery >= 0, "checkpoint_every", "must not be negative, got %d", t.CheckpointEvery),
		check(t.LogEvery >= 0, "log_every", "must not be negative, got %d", t.LogEvery),
		check(t.MaxMemory >= 0, "max_memory", "must not be negative, got %v", t.MaxMemory),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Recipe is a recipe being built: the raw layers plus the typed sections
// decoded so far, which form the resolved recipe saved with the run.
type Recipe struct {
	Raw      *recipe.Raw
	Name     string
	Family   string
	Train    Train
	Output   Output
	resolved map[string]any
}

// Decode decodes a section (e.g. "model", "data", "eval") into dst, a
// pointer to a struct holding the defaults, and records it in the resolved
// recipe.
func (r *Recipe) Decode(section string, dst any) error {
	if err := r.Raw.Decode(section, dst); err != nil {
		return err
	}
	r.resolved[section] = recipe.Encode(dst)
	return nil
}

// Decoded reports whether a section has been decoded (read by the family).
func (r *Recipe) Decoded(section string) bool {
	_, ok := r.resolved[section]
	return ok
}

// Record replaces a section of the resolved recipe, for families that fill
// in defaults after decoding.
func (r *Recipe) Record(section string, v any) { r.resolved[section] = recipe.Encode(v) }

// Resolved is the recipe with every decoded section's defaults filled in.
func (r *Recipe) Resolved() map[string]any {
	out := map[string]any{"name": r.Name}
	keys := make([]string, 0, len(r.resolved))
	for k := range r.resolved {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[k] = r.resolved[k]
	}
	return out
}

// NewRecipe decodes the sections every run has and checks the top level.
// A value out of range is reported with the source that set it (the file,
// an environment variable or the command line).
func NewRecipe(raw *recipe.Raw) (*Recipe, error) {
	if err := raw.CheckTopLevel("data", "eval", "model", "name", "output", "stages", "train"); err != nil {
		return nil, err
	}
	r := &Recipe{Raw: raw, Train: defaultTrain(), Output: Output{KeepCheckpoints: 2, Progress: true, TensorBoard: true}, resolved: map[string]any{}}
	merged := raw.Merged()
	if n, ok := merged["name"]; ok {
		s, isStr := n.(string)
		if !isStr || s == "" {
			return nil, &recipe.SourceError{Source: raw.Path, Err: &recipe.KeyError{Key: "name", Reason: "expected a non-empty string"}}
		}
		r.Name = s
	}
	var fam struct {
		Family string `key:"family" required:"true"`
	}
	model := raw.Section("model")
	if model == nil {
		return nil, &recipe.SourceError{Source: raw.Path, Err: &recipe.KeyError{Key: "model", Reason: "required, but missing"}}
	}
	f, ok := model["family"]
	if !ok {
		return nil, &recipe.SourceError{Source: raw.Path, Err: &recipe.KeyError{Key: "model.family", Reason: "required, but missing (known families: " + familyNames() + ")"}}
	}
	if fam.Family, ok = f.(string); !ok {
		return nil, &recipe.SourceError{Source: raw.Path, Err: &recipe.KeyError{Key: "model.family", Reason: "expected a string, got " + fmt.Sprint(f)}}
	}
	if _, known := families[fam.Family]; !known {
		return nil, &recipe.SourceError{Source: raw.Path, Err: &recipe.KeyError{Key: "model.family",
			Reason: fmt.Sprintf("unknown family %q (known: %s)", fam.Family, familyNames())}}
	}
	r.Family = fam.Family
	if err := r.Decode("train", &r.Train); err != nil {
		return nil, err
	}
	if err := r.Train.Validate(); err != nil {
		return nil, BlameSource(raw, err)
	}
	if err := r.Decode("output", &r.Output); err != nil {
		return nil, err
	}
	if r.Name == "" {
		r.Name = NameOf(raw.Path)
	}
	return r, nil
}

// OpenRecipe reads a recipe file, such as a run directory's resolved
// recipe.yaml, for tools that rebuild a run's model outside a run (e.g.
// analyses of a finished run): the top level is checked and the train and
// output sections are decoded as for a run; the family's sections are left
// to the caller (r.Decode).
func OpenRecipe(path, configsDir string) (*Recipe, error) {
	raw, err := recipe.Load(path, configsDir, nil, nil)
	if err != nil {
		return nil, err
	}
	return NewRecipe(raw)
}

// BlameSource wraps a *recipe.KeyError in a *recipe.SourceError naming the
// source that set the key: the highest-precedence layer that has it, or
// "default" when no layer sets it.
func BlameSource(raw *recipe.Raw, err error) error {
	ke, ok := err.(*recipe.KeyError)
	if !ok {
		return err
	}
	return &recipe.SourceError{Source: raw.SourceOf(ke.Key), Err: ke}
}
