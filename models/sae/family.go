package sae

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Config is an sae recipe's model section.
type Config struct {
	Family string `key:"family"`
	// Source is the run directory whose model the SAE reads (a run, stage
	// or staged run directory; relative paths are resolved against the
	// working directory and recorded absolute).
	Source string `key:"source" required:"true"`
	// Site is the hook site, by ParseSite name: blocks.1.hook_resid_post,
	// blocks.0.hook_mlp_out, blocks.0.attn.hook_z (heads flattened), …
	Site string `key:"site" required:"true"`
	Kind string `key:"kind"` // topk (default) or relu
	// Latents is d_sae; 0: expansion × d_in.
	Latents   int `key:"latents"`
	Expansion int `key:"expansion"`
	K         int `key:"k"` // topk: active latents per token
	// AuxK and AuxCoef are Gao et al.'s auxiliary loss (topk): the top
	// aux_k dead latents reconstruct the residual, weighted aux_coef
	// (defaults d_in/2 and 1/32).
	AuxK    int     `key:"aux_k"`
	AuxCoef float64 `key:"aux_coef"`
	L1      float64 `key:"l1"` // relu: L1 coefficient (inputs normalised to E‖x‖² = d_in)
	// DeadTokens is the window: a latent that has not fired for this many
	// training tokens is dead (AuxK, resampling, the dead-latent metric).
	DeadTokens int `key:"dead_tokens"`
	// ResampleEvery resamples dead latents every so many steps (relu; 0: never).
	ResampleEvery int `key:"resample_every"`
}

// DefaultConfig is the model section's defaults.
func DefaultConfig() Config {
	return Config{Kind: string(TopK), Expansion: 8, K: 8, AuxCoef: 1.0 / 32, L1: 5, DeadTokens: 100_000}
}

// EvalConfig is an sae recipe's eval section.
type EvalConfig struct {
	Batch      int `key:"batch"`       // sequences per eval batch (train.batch when 0)
	MaxBatches int `key:"max_batches"` // 0: the whole held-out split
	// DenseThreshold: latents firing on more than this fraction of eval
	// tokens are dense (0.1 when 0).
	DenseThreshold float64 `key:"dense_threshold"`
	// Compare runs the codes vs SAE latents vs neurons comparison when the
	// source is a codebook run: per FSM state on TokFSM (see Compare), per
	// regex feature on text with compare.regexes (see CompareRegexes).
	Compare *CompareConfig `key:"compare"`
}

// Family builds this family's experiments (registered by package families).
type Family struct{}

// Experiment trains an SAE on a frozen source model's activations.
type Experiment struct {
	Cfg        Config
	Evaluation EvalConfig
	Src        *Source
	SAE        *SAE
	Batch      int
	fitted     bool
	last       experiment.Logs
	table      *Comparison
	regexTable *RegexComparison
}

func (Family) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	cfg := DefaultConfig()
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	ev := EvalConfig{}
	if err := r.Decode("eval", &ev); err != nil {
		return nil, err
	}
	cfg.Family = r.Family
	if abs, err := filepath.Abs(cfg.Source); err == nil {
		cfg.Source = abs
	}
	if err := Kind(cfg.Kind).valid(); err != nil {
		return nil, lm.CheckKeys(r, lm.Check{Key: "model.kind", Reason: err.Error()})
	}
	if err := lm.CheckKeys(r,
		lm.Check{OK: cfg.Latents >= 0, Key: "model.latents", Reason: fmt.Sprintf("must not be negative (0: expansion × d_in), got %d", cfg.Latents)},
		lm.Check{OK: cfg.Latents > 0 || cfg.Expansion > 0, Key: "model.expansion", Reason: fmt.Sprintf("must be positive when latents is 0, got %d", cfg.Expansion)},
		lm.Check{OK: cfg.Kind != string(TopK) || cfg.K > 0, Key: "model.k", Reason: fmt.Sprintf("must be positive, got %d", cfg.K)},
		lm.Check{OK: cfg.AuxK >= 0, Key: "model.aux_k", Reason: fmt.Sprintf("must not be negative, got %d", cfg.AuxK)},
		lm.Check{OK: cfg.AuxCoef >= 0, Key: "model.aux_coef", Reason: fmt.Sprintf("must not be negative, got %v", cfg.AuxCoef)},
		lm.Check{OK: cfg.L1 >= 0, Key: "model.l1", Reason: fmt.Sprintf("must not be negative, got %v", cfg.L1)},
		lm.Check{OK: cfg.DeadTokens > 0, Key: "model.dead_tokens", Reason: fmt.Sprintf("must be positive, got %d", cfg.DeadTokens)},
		lm.Check{OK: cfg.ResampleEvery >= 0, Key: "model.resample_every", Reason: fmt.Sprintf("must not be negative, got %d", cfg.ResampleEvery)},
		lm.Check{OK: ev.Batch >= 0, Key: "eval.batch", Reason: fmt.Sprintf("must not be negative, got %d", ev.Batch)},
		lm.Check{OK: ev.MaxBatches >= 0, Key: "eval.max_batches", Reason: fmt.Sprintf("must not be negative, got %d", ev.MaxBatches)},
		lm.Check{OK: ev.DenseThreshold >= 0 && ev.DenseThreshold <= 1, Key: "eval.dense_threshold", Reason: fmt.Sprintf("must be in [0, 1], got %v", ev.DenseThreshold)},
	); err != nil {
		return nil, err
	}
	src, err := OpenSource(cfg.Source, cfg.Site, env.Device)
	if err != nil {
		return nil, fmt.Errorf("%s: model.source: %w", r.Raw.Path, err)
	}
	if cfg.Latents == 0 {
		cfg.Latents = cfg.Expansion * src.DIn
	}
	if cfg.AuxK == 0 {
		cfg.AuxK = max(1, src.DIn/2)
	}
	if cfg.Kind == string(TopK) && cfg.K > cfg.Latents {
		src.Close()
		return nil, lm.CheckKeys(r, lm.Check{Key: "model.k", Reason: fmt.Sprintf("%d exceeds the %d latents", cfg.K, cfg.Latents)})
	}
	if ev.Batch == 0 {
		ev.Batch = r.Train.Batch
	}
	if ev.DenseThreshold == 0 {
		ev.DenseThreshold = 0.1
	}
	if ev.Compare != nil {
		if err := ev.Compare.check(); err != nil {
			src.Close()
			return nil, fmt.Errorf("%s: %w", r.Raw.Path, err)
		}
		ev.Compare.fill()
	}
	r.Record("model", &cfg)
	r.Record("eval", &ev)
	torch.ManualSeed(r.Train.Seed) // the source's rebuild reseeded
	a := NewSAE(Kind(cfg.Kind), src.DIn, cfg.Latents, cfg.K)
	if err := a.Store().To(env.Device); err != nil {
		a.Close()
		src.Close()
		return nil, err
	}
	return &Experiment{Cfg: cfg, Evaluation: ev, Src: src, SAE: a, Batch: r.Train.Batch}, nil
}

// Store implements experiment.Experiment: the SAE's parameters only.
func (e *Experiment) Store() *nn.Store { return e.SAE.Store() }

// Close frees the SAE and the source model.
func (e *Experiment) Close() {
	e.SAE.Close()
	e.Src.Close()
}

// ids is a [rows, T] tensor of flat token ids.
func (e *Experiment) ids(x []int64) *torch.Tensor {
	T := e.Src.LM.D.Context()
	return torch.FromSlice(x, []int{len(x) / T, T}, e.Src.Device())
}

// Loss implements experiment.Experiment: renormalise the decoder (after
// the previous step's update), stream this step's activations, fit the
// input scale and b_dec on the first batch, resample dead latents (relu),
// and return the SAE loss.
func (e *Experiment) Loss(step int) (*torch.Tensor, experiment.Logs) {
	a := e.SAE
	a.NormalizeDecoder()
	xs, _ := e.Src.LM.D.Batch(step, e.Batch)
	x := e.Src.Acts(e.ids(xs))
	if !e.fitted {
		if !a.Fitted() {
			a.Fit(x)
		}
		e.fitted = true
	}
	xn := x.MulScalar(a.scaleValue())
	logs := experiment.Logs{"tokens": float64(x.Size(0))}
	if a.Kind == ReLU && e.Cfg.ResampleEvery > 0 && step > 0 && step%e.Cfg.ResampleEvery == 0 {
		logs["resampled"] = float64(a.Resample(xn, e.Cfg.DeadTokens))
	}
	l := a.TrainLoss(xn, a.DeadMask(e.Cfg.DeadTokens), e.Cfg.AuxK, e.Cfg.AuxCoef, e.Cfg.L1)
	a.Track(l.Latent)
	logs["mse"], logs["nmse"], logs["l0"] = l.MSE, l.NMSE, l.L0
	logs["dead_fraction"] = float64(l.Dead) / float64(a.DSAE())
	if a.Kind == TopK {
		logs["auxk"] = l.AuxK
	} else {
		logs["l1"] = l.L1
	}
	return l.Total, logs
}

// Metrics are an SAE's evaluation, as SAELens reports them.
type Metrics struct {
	Tokens int
	// L0 is the mean number of active latents per token.
	L0 float64
	// NMSE is Σ‖x − x̂‖² / Σ‖x − x̄‖² over the eval tokens (x̄ their mean):
	// Gao et al.'s normalised MSE, the fraction of variance unexplained.
	NMSE float64
	// ExplainedVariance is SAELens's: 1 − Σ‖x − x̂‖²/Σ‖x − x̄‖² per eval
	// batch (x̄ the batch mean), averaged over batches.
	ExplainedVariance float64
	// CE of the clean model, with the site zero-ablated and with the SAE's
	// reconstruction spliced in (nats/token on the held-out split), and the
	// CE loss recovered (CE_zero − CE_spliced)/(CE_zero − CE_clean).
	CEClean, CEZero, CESpliced, CERecovered float64
	// Dead latents have not fired in the last dead_tokens training tokens;
	// dense ones fire on more than dense_threshold of the eval tokens.
	Dead, Dense, Latents int
}

// Logs is m as metrics records.
func (m Metrics) Logs() experiment.Logs {
	return experiment.Logs{"l0": m.L0, "nmse": m.NMSE, "explained_variance": m.ExplainedVariance,
		"ce_clean": m.CEClean, "ce_zero": m.CEZero, "ce_spliced": m.CESpliced, "ce_recovered": m.CERecovered,
		"dead_latents": float64(m.Dead), "dense_latents": float64(m.Dense),
		"dead_fraction": float64(m.Dead) / float64(m.Latents), "dense_fraction": float64(m.Dense) / float64(m.Latents)}
}

// Evaluate computes the metrics on the source's held-out split.
func (e *Experiment) Evaluate() Metrics {
	a := e.SAE
	a.NormalizeDecoder()
	m := Metrics{Latents: a.DSAE()}
	var sqErr, l0, evSum float64
	var sumSq float64
	var sum []float64
	var ce [3]float64
	freq := make([]float64, a.DSAE())
	scored, batches := 0.0, 0
	for b := range e.Src.LM.D.Eval(e.Evaluation.Batch) {
		if e.Evaluation.MaxBatches > 0 && batches >= e.Evaluation.MaxBatches {
			break
		}
		batches++
		torch.NoGrad(func() {
			torch.WithScope(func() {
				X := e.ids(b.X)
				Y := torch.FromSlice(b.Y, X.Shape(), X.Device())
				var mask *torch.Tensor
				if b.Mask != nil {
					mask = torch.FromSlice(b.Mask, nil, X.Device())
				}
				ceOf := func(logits *torch.Tensor) float64 {
					o := torch.DefaultCrossEntropy
					o.Reduction = torch.ReduceNone
					per := torch.CrossEntropyWith(logits.Reshape(-1, logits.Size(-1)), Y.Reshape(-1), o)
					if mask != nil {
						per = per.Mul(mask)
					}
					return per.Sum().Item()
				}
				clean, x := e.Src.Forward(X, nil)
				ce[0] += ceOf(clean)
				zero, _ := e.Src.Forward(X, func(x *torch.Tensor) *torch.Tensor { return torch.ZerosLike(x) })
				ce[1] += ceOf(zero)
				spliced, _ := e.Src.Forward(X, a.Reconstruct)
				ce[2] += ceOf(spliced)
				scored += float64(b.Scored)

				c := a.scaleValue()
				xn := x.MulScalar(c)
				z := a.Encode(xn)
				xhat := a.Decode(z)
				se := xn.Sub(xhat).Square().Sum()
				sqErr += se.Item()
				evSum += 1 - se.Item()/xn.Sub(xn.MeanKeep(0)).Square().Sum().ClampMin(1e-12).Item()
				active := z.GtScalar(0).To(torch.Float32)
				l0 += active.Sum().Item()
				for i, v := range active.Sum(0).To(torch.Float64).To(torch.CPU).Float64s() {
					freq[i] += v
				}
				xs := xn.To(torch.Float64)
				sumSq += xs.Square().Sum().Item()
				s := xs.Sum(0).To(torch.CPU).Float64s()
				if sum == nil {
					sum = make([]float64, len(s))
				}
				for i, v := range s {
					sum[i] += v
				}
				m.Tokens += x.Size(0)
			})
		})
	}
	if m.Tokens == 0 {
		return m
	}
	N := float64(m.Tokens)
	total := sumSq
	for _, v := range sum {
		total -= v * v / N
	}
	m.L0 = l0 / N
	m.NMSE = sqErr / math.Max(total, 1e-12)
	m.ExplainedVariance = evSum / float64(batches)
	m.CEClean, m.CEZero, m.CESpliced = ce[0]/scored, ce[1]/scored, ce[2]/scored
	m.CERecovered = (m.CEZero - m.CESpliced) / (m.CEZero - m.CEClean)
	torch.WithScope(func() {
		for _, d := range a.DeadMask(e.Cfg.DeadTokens).To(torch.CPU).Bools() {
			if d {
				m.Dead++
			}
		}
	})
	for _, f := range freq {
		if f/N > e.Evaluation.DenseThreshold {
			m.Dense++
		}
	}
	return m
}

// Eval implements experiment.Experiment.
func (e *Experiment) Eval() experiment.Logs {
	e.last = e.Evaluate().Logs()
	return e.last
}

// Report implements experiment.Experiment: the SAE's metrics and, with
// eval.compare on a codebook source, the comparison table: per FSM state
// on TokFSM, per regex feature on text (eval.compare.regexes; with
// compare_regex.json and the bar chart compare_regex.png in dir).
func (e *Experiment) Report(dir string) (string, error) {
	m := e.Evaluate()
	e.last = m.Logs()
	var b strings.Builder
	c := e.Cfg
	fmt.Fprintf(&b, "## Sparse autoencoder\n\n")
	arch := fmt.Sprintf("TopK (Gao et al. 2024), k = %d, AuxK with aux_k = %d, α = %g", c.K, c.AuxK, c.AuxCoef)
	if c.Kind == string(ReLU) {
		arch = fmt.Sprintf("ReLU + L1 (Bricken et al. 2023), λ = %g, resampling every %d steps", c.L1, c.ResampleEvery)
	}
	fmt.Fprintf(&b, "%s on `%s` of the %s run `%s` (step %d): d_in = %d, %d latents; dead = no firing in the last %d training tokens.\n\n",
		arch, c.Site, e.Src.Run.Recipe.Family, c.Source, e.Src.Run.Step, e.Src.DIn, c.Latents, c.DeadTokens)
	b.WriteString("| L0 | normalised MSE | explained variance | CE clean | CE zero-ablated | CE spliced | CE recovered | dead latents | dense latents (> " +
		fmt.Sprintf("%g", e.Evaluation.DenseThreshold*100) + "% of tokens) | eval tokens |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %.2f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %d (%.1f%%) | %d (%.1f%%) | %d |\n\n",
		m.L0, m.NMSE, m.ExplainedVariance, m.CEClean, m.CEZero, m.CESpliced, m.CERecovered,
		m.Dead, 100*float64(m.Dead)/float64(m.Latents), m.Dense, 100*float64(m.Dense)/float64(m.Latents), m.Tokens)
	b.WriteString("Definitions as SAELens reports them: L0 mean active latents per token; normalised MSE Σ‖x − x̂‖²/Σ‖x − x̄‖² over the eval tokens; " +
		"explained variance 1 − that ratio per eval batch, averaged; CE recovered (CE_zero − CE_spliced)/(CE_zero − CE_clean), with the site's activation replaced by zeros or by the SAE's reconstruction.\n")
	if e.Evaluation.Compare != nil {
		t, err := e.Compare(*e.Evaluation.Compare)
		if err != nil {
			return "", err
		}
		if t != nil {
			e.table = t
			b.WriteString("\n" + t.Markdown())
		}
		rt, err := e.CompareRegexes(*e.Evaluation.Compare)
		if err != nil {
			return "", err
		}
		if rt != nil {
			if err := rt.Save(dir); err != nil {
				return "", err
			}
			e.regexTable = rt
			b.WriteString("\n" + rt.Markdown(e.neuronName))
		}
	}
	return b.String(), nil
}

// Extra implements experiment.Summarizer: the final metrics.
func (e *Experiment) Extra() map[string]any {
	out := map[string]any{}
	for k, v := range e.last {
		out["sae_"+k] = v
	}
	if e.table != nil {
		out["sae_compare"] = e.table.Extra()
	}
	if e.regexTable != nil {
		out["sae_compare_regex"] = e.regexTable.Extra()
	}
	return out
}
