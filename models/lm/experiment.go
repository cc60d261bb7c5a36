package lm

import (
	"fmt"
	"math"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Model is what an LM experiment trains: token ids [B, T] → logits [B, T, V].
type Model interface {
	Store() *nn.Store
	Forward(ids *torch.Tensor) *torch.Tensor
	Close()
}

// AuxLosser is a Model with extra loss terms after its last Forward (e.g.
// codebook reconstruction, MoHD load balance), added to the cross-entropy.
type AuxLosser interface {
	AuxLoss() (*torch.Tensor, experiment.Logs)
}

// Generator is a Model that can sample continuations.
type Generator interface {
	Generate(prompts [][]int64, o nn.GenerateOptions) ([][]int64, error)
}

// EvalConfig is the recipe's eval section for language models.
type EvalConfig struct {
	Batch       int      `key:"batch"`       // eval batch size (train.batch when 0)
	MaxBatches  int      `key:"max_batches"` // 0: the whole held-out split
	Samples     int      `key:"samples"`     // sampled continuations in the report
	SampleLen   int      `key:"sample_len"`  // new tokens per sample
	Temperature float64  `key:"temperature"`
	TopK        int      `key:"top_k"`
	Prompts     []string `key:"prompts"` // text prompts (empty: start from the start token)
}

// DefaultEval is the eval section's defaults.
func DefaultEval() EvalConfig {
	return EvalConfig{Samples: 4, SampleLen: 200, Temperature: 0.8, TopK: 40}
}

// Validate checks the eval section's ranges when the recipe loads (before
// anything trains: a bad value must not surface only at the first
// evaluation). The error is a *recipe.KeyError; blame it on its source with
// experiment.BlameSource (or CheckEval).
func (c EvalConfig) Validate() error {
	return FirstBad(
		Check{c.Batch >= 0, "eval.batch", fmt.Sprintf("must not be negative (0: train.batch), got %d", c.Batch)},
		Check{c.MaxBatches >= 0, "eval.max_batches", fmt.Sprintf("must not be negative (0: the whole held-out split), got %d", c.MaxBatches)},
		Check{c.Samples >= 0, "eval.samples", fmt.Sprintf("must not be negative, got %d", c.Samples)},
		Check{c.SampleLen >= 0, "eval.sample_len", fmt.Sprintf("must not be negative, got %d", c.SampleLen)},
		Check{c.Temperature >= 0 && !math.IsInf(c.Temperature, 0), "eval.temperature",
			fmt.Sprintf("must be a finite number ≥ 0 (0: greedy), got %v", c.Temperature)},
		Check{c.TopK >= 0, "eval.top_k", fmt.Sprintf("must not be negative (0: no cut-off), got %d", c.TopK)},
	)
}

// CheckEval validates an eval section, naming the key and the source (file,
// environment variable or command line) that set it.
func CheckEval(r *experiment.Recipe, c EvalConfig) error {
	return experiment.BlameSource(r.Raw, c.Validate())
}

// Check is one range check of a recipe key: OK false reports Key with Reason.
type Check struct {
	OK     bool
	Key    string
	Reason string
}

// FirstBad returns the first failing check as a *recipe.KeyError (nil when
// all pass).
func FirstBad(checks ...Check) error {
	for _, c := range checks {
		if !c.OK {
			return &recipe.KeyError{Key: c.Key, Reason: c.Reason}
		}
	}
	return nil
}

// CheckKeys is FirstBad with the failing key blamed on its source.
func CheckKeys(r *experiment.Recipe, checks ...Check) error {
	if err := FirstBad(checks...); err != nil {
		return experiment.BlameSource(r.Raw, err)
	}
	return nil
}

// Experiment trains a Model on Data with next-token cross-entropy. Families
// embed it and extend Eval and Report by defining their own, which call
// these first.
type Experiment struct {
	M          Model
	D          Data
	Evaluation EvalConfig
	Batch      int
	Device     torch.Device
	// Rank and World shard each batch across data-parallel processes: this
	// process trains rows [Rank·Batch/World, (Rank+1)·Batch/World) of the
	// global batch (World 0 or 1: all rows).
	Rank, World int
	samples     []string
}

// SetShard implements experiment.Sharder: data-parallel ranks split the global
// batch, so World processes see exactly the batch one process would.
func (e *Experiment) SetShard(rank, world int) error {
	if world > 1 && e.Batch%world != 0 {
		return fmt.Errorf("train.batch %d does not split evenly over %d data-parallel processes", e.Batch, world)
	}
	e.Rank, e.World = rank, world
	return nil
}

// NewExperiment builds an experiment of m on d with the recipe's train batch
// and eval section (decoded here).
func NewExperiment(r *experiment.Recipe, env experiment.Env, m Model, d Data) (*Experiment, error) {
	ev := DefaultEval()
	if err := r.Decode("eval", &ev); err != nil {
		return nil, err
	}
	if err := CheckEval(r, ev); err != nil {
		return nil, err
	}
	if ev.Batch == 0 {
		ev.Batch = r.Train.Batch
	}
	r.Record("eval", &ev)
	return &Experiment{M: m, D: d, Evaluation: ev, Batch: r.Train.Batch, Device: env.Device}, nil
}

// Store implements experiment.Experiment.
func (e *Experiment) Store() *nn.Store { return e.M.Store() }

func (e *Experiment) tensors(x, y []int64, rows int) (*torch.Tensor, *torch.Tensor) {
	T := len(x) / rows
	X := torch.FromSlice(x, []int{rows, T}, e.Device)
	Y := torch.FromSlice(y, []int{rows, T}, e.Device)
	return X, Y
}

// Loss implements experiment.Experiment: cross-entropy of step's batch, plus the
// model's auxiliary losses.
func (e *Experiment) Loss(step int) (*torch.Tensor, experiment.Logs) {
	x, y := e.D.Batch(step, e.Batch)
	rows := e.Batch
	if e.World > 1 {
		rows = e.Batch / e.World
		T := len(x) / e.Batch
		x, y = x[e.Rank*rows*T:(e.Rank+1)*rows*T], y[e.Rank*rows*T:(e.Rank+1)*rows*T]
	}
	X, Y := e.tensors(x, y, rows)
	ce := nn.LMLoss(e.M.Forward(X), Y, -100)
	logs := experiment.Logs{"tokens": float64(len(x))}
	loss := ce
	if a, ok := e.M.(AuxLosser); ok {
		aux, al := a.AuxLoss()
		if aux != nil {
			loss = ce.Add(aux)
			logs["ce"] = ce.Item()
		}
		for k, v := range al {
			logs[k] = v
		}
	}
	return loss, logs
}

// Eval implements experiment.Experiment: mean cross-entropy (nats/token),
// perplexity and next-token accuracy over the held-out split.
func (e *Experiment) Eval() experiment.Logs {
	var nll, correct, n float64
	batches := 0
	for b := range e.D.Eval(e.Evaluation.Batch) {
		if e.Evaluation.MaxBatches > 0 && batches >= e.Evaluation.MaxBatches {
			break
		}
		batches++
		torch.WithScope(func() {
			rows := len(b.X) / e.D.Context()
			X, Y := e.tensors(b.X, b.Y, rows)
			logits := e.M.Forward(X)
			V := logits.Size(-1)
			o := torch.DefaultCrossEntropy
			o.Reduction = torch.ReduceNone
			per := torch.CrossEntropyWith(logits.Reshape(-1, V), Y.Reshape(-1), o)
			hit := logits.Argmax(-1, false).Reshape(-1).Eq(Y.Reshape(-1)).To(torch.Float32)
			if b.Mask != nil {
				m := torch.FromSlice(b.Mask, nil, e.Device)
				per, hit = per.Mul(m), hit.Mul(m)
			}
			nll += per.Sum().Item()
			correct += hit.Sum().Item()
			n += float64(b.Scored)
		})
	}
	return experiment.Logs{"loss": nll / n, "ppl": math.Exp(nll / n), "accuracy": correct / n}
}

// Report implements experiment.Experiment: the data and the samples.
func (e *Experiment) Report(dir string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "## Data\n\n%s\n", e.D.Describe())
	if g, ok := e.M.(Generator); ok && e.Evaluation.Samples > 0 {
		samples, err := e.Sample(g)
		if err != nil {
			return "", err
		}
		e.samples = samples
		fmt.Fprintf(&b, "\n## Samples\n\n%d continuation(s) of %d tokens, temperature %g, top-k %d", len(samples), e.sampleLen(), e.Evaluation.Temperature, e.Evaluation.TopK)
		if e.sampleLen() < e.Evaluation.SampleLen {
			fmt.Fprintf(&b, " (eval.sample_len %d is capped by the context of %d tokens)", e.Evaluation.SampleLen, e.D.Context())
		}
		b.WriteString(":\n\n")
		for i, s := range samples {
			fmt.Fprintf(&b, "**Sample %d**\n\n```\n%s\n```\n\n", i+1, strings.TrimSpace(s))
		}
	}
	return b.String(), nil
}

// ReportWith is Report followed by a family's own section, for families
// that embed Experiment and add their analyses to the report.
func (e *Experiment) ReportWith(dir string, section func(dir string) (string, error)) (string, error) {
	base, err := e.Report(dir)
	if err != nil {
		return "", err
	}
	sec, err := section(dir)
	if err != nil {
		return "", err
	}
	return base + "\n" + sec, nil
}

// Samples returns the texts sampled for the report.
func (e *Experiment) Samples() []string { return e.samples }

// Sample draws the report's continuations (prompts cycle when fewer than samples).
func (e *Experiment) Sample(g Generator) ([]string, error) {
	prompts := make([][]int64, e.Evaluation.Samples)
	texts := make([]string, e.Evaluation.Samples)
	for i := range prompts {
		prompts[i] = []int64{e.D.Start()}
		if len(e.Evaluation.Prompts) > 0 {
			texts[i] = e.Evaluation.Prompts[i%len(e.Evaluation.Prompts)]
			prompts[i] = append(prompts[i], e.D.Encode(texts[i])...)
		}
	}
	n := e.sampleLen()
	out, err := g.Generate(prompts, nn.GenerateOptions{MaxNew: n, Stop: -1,
		Sampling: nn.Sampling{Temperature: e.Evaluation.Temperature, TopK: e.Evaluation.TopK}})
	if err != nil {
		return nil, err
	}
	res := make([]string, len(out))
	for i, ids := range out {
		res[i] = texts[i] + e.D.Decode(ids)
	}
	return res, nil
}

// sampleLen is the number of new tokens per sample: eval.sample_len, capped
// so that the longest prompt (with its start token) plus the sample fits the
// context.
func (e *Experiment) sampleLen() int {
	longest := 1
	for _, p := range e.Evaluation.Prompts {
		longest = max(longest, 1+len(e.D.Encode(p)))
	}
	return max(0, min(e.Evaluation.SampleLen, e.D.Context()-longest))
}

// Opened is an experiment built on this package's Experiment; families
// that embed *Experiment inherit it, so code that reopens a run
// (rundir.Open) reaches the model and data without knowing the family.
type Opened interface {
	LM() *Experiment
}

// LM implements Opened.
func (e *Experiment) LM() *Experiment { return e }

// Close implements experiment.Experiment.
func (e *Experiment) Close() { e.M.Close() }

// FitData fills a model section's vocab and context from the data when they
// are 0 and checks that the model covers the data (errors name the key and
// the source that set it). Every LM family's model section goes through it.
func FitData(r *experiment.Recipe, d Data, vocab, context *int) error {
	if *vocab == 0 {
		*vocab = d.Vocab()
	}
	if *context == 0 {
		*context = d.Context()
	}
	switch {
	case *vocab < d.Vocab():
		return experiment.BlameSource(r.Raw, &recipe.KeyError{Key: "model.vocab",
			Reason: fmt.Sprintf("%d is smaller than the data's vocabulary %d", *vocab, d.Vocab())})
	case *context < d.Context():
		return experiment.BlameSource(r.Raw, &recipe.KeyError{Key: "model.context",
			Reason: fmt.Sprintf("%d is shorter than the data's sequences (%d)", *context, d.Context())})
	}
	return nil
}

// Build is the family Build glue every LM family shares: the recipe's data
// section, the model that build makes on that data, and the LM experiment
// with the recipe's eval section. Families with their own eval section use
// BuildModel and make their experiment from the data and model it returns.
func Build[M Model](r *experiment.Recipe, env experiment.Env, build func(*experiment.Recipe, experiment.Env, Data) (M, error)) (*Experiment, error) {
	d, m, err := BuildModel(r, env, build)
	if err != nil {
		return nil, err
	}
	e, err := NewExperiment(r, env, m, d)
	if err != nil {
		m.Close()
		return nil, err
	}
	return e, nil
}

// BuildModel loads the recipe's data (writing its tokenizer into env.Dir)
// and builds the model on it.
func BuildModel[M Model](r *experiment.Recipe, env experiment.Env, build func(*experiment.Recipe, experiment.Env, Data) (M, error)) (Data, M, error) {
	var zero M
	d, _, err := LoadData(r, env.Dir, r.Train.Seed)
	if err != nil {
		return nil, zero, err
	}
	m, err := build(r, env, d)
	if err != nil {
		return nil, zero, err
	}
	return d, m, nil
}
