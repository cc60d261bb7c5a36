package mohd

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/stats"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// EvalConfig is a mohd recipe's eval section.
type EvalConfig struct {
	lm.EvalConfig `key:",inline"`
	// AnalysisSeqs is the number of held-out sequences of the activation-flow
	// and router-health analysis written at the end of the run (0: none).
	AnalysisSeqs int `key:"analysis_seqs"`
	// RecallSlots caps the SynthStories recall slots scored at each
	// evaluation (0: all).
	RecallSlots int `key:"recall_slots"`
}

// Build decodes a mohd model section into a model on the data's
// vocabulary, recording the resolved section.
func Build(r *experiment.Recipe, env experiment.Env, d lm.Data) (*Model, error) {
	cfg := DefaultConfig()
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	if err := lm.FitData(r, d, &cfg.Vocab, &cfg.Context); err != nil {
		return nil, err
	}
	cfg.resolve()
	cfg.Family = r.Family
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Raw.Path, err)
	}
	r.Record("model", &cfg)
	m, err := NewModel(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Raw.Path, err)
	}
	// Parameters are created on the CPU (so a seed gives the same model
	// everywhere) and moved to the run's device.
	if err := m.store.To(env.Device); err != nil {
		m.Close()
		return nil, fmt.Errorf("moving the model to %v: %w", env.Device, err)
	}
	return m, nil
}

// Family builds this family's experiments (registered by package families).
type Family struct{}

// Build implements experiment.Family: the data, the model, and the eval section
// (the LM keys plus analysis_seqs and recall_slots).
func (Family) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	d, m, err := lm.BuildModel(r, env, Build)
	if err != nil {
		return nil, err
	}
	ev := EvalConfig{EvalConfig: lm.DefaultEval()}
	if err := r.Decode("eval", &ev); err != nil {
		m.Close()
		return nil, err
	}
	if ev.Batch == 0 {
		ev.Batch = r.Train.Batch
	}
	if err := lm.CheckKeys(r,
		lm.Check{OK: ev.AnalysisSeqs >= 0, Key: "eval.analysis_seqs", Reason: fmt.Sprintf("must not be negative (0: no analysis), got %d", ev.AnalysisSeqs)},
		lm.Check{OK: ev.RecallSlots >= 0, Key: "eval.recall_slots", Reason: fmt.Sprintf("must not be negative (0: all), got %d", ev.RecallSlots)},
	); err != nil {
		m.Close()
		return nil, err
	}
	if err := lm.CheckEval(r, ev.EvalConfig); err != nil {
		m.Close()
		return nil, err
	}
	r.Record("eval", &ev)
	total, active, err := CountParams(m.Store(), m.Config)
	if err != nil {
		m.Close()
		return nil, err
	}
	e := &mohdExperiment{
		Experiment: &lm.Experiment{M: m, D: d, Evaluation: ev.EvalConfig, Batch: r.Train.Batch, Device: env.Device},
		m:          m, eval: ev, seed: r.Train.Seed, total: total, active: active,
	}
	e.stories, _ = d.(*lm.StoriesData)
	return e, nil
}

// experiment is an LM experiment of a MoHD model: router health at every
// evaluation, recall accuracy on SynthStories, step timing, and the
// parameter accounting and activation-flow analysis in the report.
type mohdExperiment struct {
	*lm.Experiment
	m             *Model
	eval          EvalConfig
	seed          uint64
	stories       *lm.StoriesData
	total, active Params // counted over the module tree
	health        []RouterHealth
	recall        float64
	analysis      *Analysis
	// Step timing: the intervals between consecutive Loss calls (one
	// forward, backward and update each), leaving out those with an
	// evaluation.
	last      time.Time
	evaluated bool
	steps     []float64
}

// Loss implements experiment.Experiment, timing the steps.
func (e *mohdExperiment) Loss(step int) (*torch.Tensor, experiment.Logs) {
	now := time.Now()
	if !e.last.IsZero() && !e.evaluated {
		e.steps = append(e.steps, now.Sub(e.last).Seconds())
	}
	e.last, e.evaluated = now, false
	return e.Experiment.Loss(step)
}

// Eval implements experiment.Experiment: the LM metrics, recall accuracy on
// SynthStories, and the routers' health on the held-out split.
func (e *mohdExperiment) Eval() experiment.Logs {
	e.evaluated = true
	e.m.Stats = NewRouterStats(e.seed)
	defer func() { e.m.Stats = nil }()
	logs := e.Experiment.Eval()
	for k, v := range e.metrics() {
		logs[k] = v
	}
	e.health = e.m.Stats.Health()
	for k, v := range routerSummary(e.health) {
		logs[k] = v
	}
	return logs
}

// metrics is the family's part of Eval: recall accuracy on SynthStories.
func (e *mohdExperiment) metrics() experiment.Logs {
	if e.stories == nil {
		return nil
	}
	stats := e.m.Stats
	e.m.Stats = nil
	defer func() { e.m.Stats = stats }()
	e.recall = RecallAccuracy(e.m, e.stories, e.Evaluation.Batch, e.eval.RecallSlots)
	return experiment.Logs{"recall_accuracy": e.recall}
}

// RecallAccuracy scores the SynthStories recall slots (at most limit; 0:
// all): the share of slots where the argmax next token after the context
// window ending just before the colour word is the colour's first letter.
// Slots closer to the start of the split than one context are skipped.
func RecallAccuracy(m lm.Model, d *lm.StoriesData, batch, limit int) float64 {
	T, valid := d.Context(), d.Valid()
	var xs []int64
	var want []int64
	for _, s := range d.Slots {
		if s.Offset < T {
			continue
		}
		if limit > 0 && len(want) == limit {
			break
		}
		for _, id := range valid[s.Offset-T : s.Offset] {
			xs = append(xs, int64(id))
		}
		want = append(want, d.Encode(s.Color[:1])[0])
	}
	if len(want) == 0 {
		return 0
	}
	hits := 0
	for i := 0; i < len(want); i += batch {
		n := min(batch, len(want)-i)
		torch.WithScope(func() {
			dev := m.Store().Params()[0].T.Device()
			logits := m.Forward(torch.FromSlice(xs[i*T:(i+n)*T], []int{n, T}, dev))
			got := logits.Select(1, T-1).Argmax(-1, false).Int64s()
			for j, g := range got {
				if g == want[i+j] {
					hits++
				}
			}
		})
	}
	return float64(hits) / float64(len(want))
}

// section is the report's MoHD section: the configuration, the parameter
// accounting (formula vs counter), the routers' health at the final
// evaluation and, with eval.analysis_seqs, the activation-flow analysis.
func (e *mohdExperiment) section(dir string) (string, error) {
	c := e.m.Config
	var b strings.Builder
	b.WriteString("## MoHD\n\n")
	if c.Vanilla {
		fmt.Fprintf(&b, "Vanilla (dense) block: D = %d, d_a = %d (%d heads × %d), d_ff = %d, %d layers.\n\n", c.Width, c.AttnWidth(), c.Heads, c.HeadDim, c.FFN, c.Layers)
	} else {
		fmt.Fprintf(&b, "D = %d in N = %d groups of g = %d; N_s = %d shared, K = %d of N_r = %d routed: d_act = %d, δ = %.3f. d_a = %d (%d heads × %d), d_ff = %d, %d layers. scale: %s, fusion: %s (write %s), router: %s (std %g, renorm %v), balance λ = %g, path: %s.\n\n",
			c.Width, c.Groups, c.G(), c.Shared, c.TopK, c.Routed(), c.ActiveWidth(), c.Delta(), c.AttnWidth(), c.Heads, c.HeadDim, c.FFN, c.Layers,
			c.Scale, c.Fusion, c.FusionWrite, c.Router, c.RouterStd, c.Renorm, c.Balance, c.Path)
	}
	ft, fa := c.TotalParams(), c.ActiveParams()
	b.WriteString("### Parameters (brief §2.3; counter = the module tree's tensors)\n\n| term | total (formula) | total (counter) | activated/token (formula) | activated/token (counter) |\n|---|---|---|---|---|\n")
	row := func(name string, f func(Params) int) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, stats.Thousands(f(ft)), stats.Thousands(f(e.total)), stats.Thousands(f(fa)), stats.Thousands(f(e.active)))
	}
	row("attention", func(p Params) int { return p.Attn })
	row("FFN", func(p Params) int { return p.FFN })
	row("routers", func(p Params) int { return p.Router })
	row("fusion", func(p Params) int { return p.Fusion })
	row("**non-embedding (§2.3)**", Params.NonEmbedding)
	row("RMSNorm gains", func(p Params) int { return p.Norm })
	row("embedding + head", func(p Params) int { return p.Embedding })
	if med := median(e.steps); med > 0 {
		fmt.Fprintf(&b, "\nMedian training step (forward, backward, update; evaluations left out): %.1f ms over %d steps.\n", 1e3*med, len(e.steps))
	}
	if e.stories != nil {
		fmt.Fprintf(&b, "\nSynthStories recall accuracy (final evaluation): %.3f.\n", e.recall)
	}
	if e.eval.AnalysisSeqs > 0 {
		a, err := Analyze(e.m, e.D, e.eval.AnalysisSeqs, c.Groups, e.seed)
		if err != nil {
			return "", err
		}
		a.Model = "This model"
		md, err := a.WriteFiles(dir)
		if err != nil {
			return "", err
		}
		e.analysis = a
		b.WriteString("\n" + md)
	} else if len(e.health) > 0 {
		b.WriteString("\n" + routersMarkdown(e.health))
	}
	return b.String(), nil
}

// Extra implements the runner's summary extension (extra.<key> in sweep
// tables): parameter counts, median step time, router health, recall
// accuracy and the activation-flow summary.
func (e *mohdExperiment) Extra() map[string]any {
	out := map[string]any{
		"params_total": e.total.NonEmbedding(), "params_active": e.active.NonEmbedding(),
		"params_norm": e.total.Norm, "params_embedding": e.total.Embedding, "delta": e.m.Config.Delta(),
	}
	if med := median(e.steps); med > 0 {
		out["step_ms"] = 1e3 * med
	}
	if e.analysis != nil {
		for k, v := range e.analysis.Summary() {
			out[k] = v
		}
	}
	// The final evaluation's router health (the whole held-out split) over
	// the analysis's (a few sequences).
	for k, v := range routerSummary(e.health) {
		out[k] = v
	}
	if e.stories != nil {
		out["recall_accuracy"] = e.recall
	}
	return out
}

// Generate implements lm.Generator: each prompt is extended token by token,
// re-running the model on the last context tokens (no KV cache).
func (m *Model) Generate(prompts [][]int64, o nn.GenerateOptions) ([][]int64, error) {
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
	}
	out := make([][]int64, len(prompts))
	was := m.store.Training()
	m.store.Train(false)
	defer m.store.Train(was)
	dev := m.Embed.Weight.Device()
	err := torch.Try(func() {
		torch.NoGrad(func() {
			for i, p := range prompts {
				seq := slices.Clone(p)
				for n := 0; n < o.MaxNew; n++ {
					var next int64
					torch.WithScope(func() {
						ctx := seq[max(0, len(seq)-m.Config.Context):]
						logits := m.Forward(torch.FromSlice(ctx, []int{1, len(ctx)}, dev)).Select(1, -1)
						next = o.Sample(logits).Int64s()[0]
					})
					seq = append(seq, next)
					out[i] = append(out[i], next)
					if next == o.Stop {
						break
					}
				}
			}
		})
	})
	return out, err
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Report implements experiment.Experiment: the LM report (data, samples)
// followed by the family's section.
func (e *mohdExperiment) Report(dir string) (string, error) {
	return e.Experiment.ReportWith(dir, e.section)
}
