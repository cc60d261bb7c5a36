package hrpo

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/stats"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// Family builds this family's experiments (registered by package families).
type Family struct{}

// Experiment is an hrpo run: the SFT warm-up (data.phase: sft) or the RL
// stage (data.phase: rl) of one arm.
type Experiment struct {
	M *Model
	// Ref is the frozen reference policy π_ref (rl phase): its weights are
	// the policy's at step 0, i.e. the SFT checkpoint, kept in the store as
	// persistent buffers "reference.*" so that a resumed run has them.
	Ref *nn.GPT

	model   ModelConfig
	data    DataConfig
	eval    EvalConfig
	store   *nn.Store
	task    reasoning.Task
	seed    uint64 // data stream
	batch   int    // SFT rows, or RL prompts, per step
	evalSet []reasoning.Problem
	final   *finalEval
	// gsmTrain and gsmTest are the GSM8K problems of task gsm8k that fit
	// the context (SFT rows and RL prompts; evaluation).
	gsmTrain, gsmTest []reasoning.Problem
}

// Build implements experiment.Family.
func (Family) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	mc, dc, ec := DefaultModel(), DefaultData(), DefaultEval()
	if err := r.Decode("model", &mc); err != nil {
		return nil, err
	}
	if err := r.Decode("data", &dc); err != nil {
		return nil, err
	}
	if err := r.Decode("eval", &ec); err != nil {
		return nil, err
	}
	codec, err := loadCodec(r, dc)
	if err != nil {
		return nil, err
	}
	if mc.Vocab == 0 {
		mc.Vocab = reasoning.VocabSize
		if codec != nil {
			mc.Vocab = codec.Tok.VocabSize()
		}
	}
	arm, task, err := validate(r.Raw.Path, mc, dc, ec)
	if err != nil {
		return nil, reblame(r, err)
	}
	if codec != nil {
		if err := checkText(r.Raw.Path, mc, dc, ec, task, codec); err != nil {
			return nil, err
		}
	} else if mc.Vocab < reasoning.VocabSize {
		return nil, keyError(r.Raw.Path, "model.vocab", "%d is smaller than the task vocabulary %d", mc.Vocab, reasoning.VocabSize)
	}
	if dc.Seed == 0 {
		dc.Seed = r.Train.Seed
	}
	mc.Family = r.Family
	r.Record("model", &mc)
	r.Record("data", &dc)
	r.Record("eval", &ec)

	e := &Experiment{model: mc, data: dc, eval: ec, task: task, seed: dc.Seed, batch: r.Train.Batch}
	if dc.Phase == "sft" {
		arm = GRPO // the warm-up feeds plain tokens; the gate is added by the RL stage
	}
	m, err := NewModel(mc, arm)
	if err != nil {
		return nil, fmt.Errorf("%s: model: %w", r.Raw.Path, err)
	}
	m.Text = codec
	e.M, e.store = m, m.GPT.Store
	if dc.Phase == "rl" {
		if e.Ref, err = newReference(m); err != nil {
			e.Close()
			return nil, fmt.Errorf("%s: reference model: %w", r.Raw.Path, err)
		}
	}
	if err := e.to(env.Device); err != nil {
		e.Close()
		return nil, fmt.Errorf("moving the model to %v: %w", env.Device, err)
	}
	if task == reasoning.GSM8K {
		if e.gsmTrain, e.gsmTest, err = loadGSM8K(r.Raw.Path, mc, dc, ec, codec, env.Log); err != nil {
			e.Close()
			return nil, err
		}
	}
	if e.evalSet, err = e.evalProblems(ec.PerK); err != nil {
		e.Close()
		return nil, keyError(r.Raw.Path, "eval", "%v", err)
	}
	return e, nil
}

// NewModel builds the policy of an arm: a GPT from the model section and,
// for gated arms, the gate (frozen for FrozenGate).
func NewModel(mc ModelConfig, arm Arm) (*Model, error) {
	g, err := nn.NewGPT(mc.Net())
	if err != nil {
		return nil, err
	}
	m := &Model{GPT: g, Arm: arm, Tau: mc.Tau, TopK: mc.TopK, LossTau: mc.LossTemperature}
	if arm.Gated() {
		m.Gate, err = NewGate(g.Store.Root().Sub("gate"), mc.Width, mc.Gate.C, mc.Gate.RMin, mc.Gate.RMax, GateInit(mc.Gate.Init))
		if err != nil {
			g.Close()
			return nil, err
		}
		if arm == FrozenGate {
			g.Store.Freeze(IsGateParam)
		}
	}
	return m, nil
}

// newReference builds π_ref, a frozen GPT of m's configuration whose
// weights are registered in m's store as persistent buffers
// "reference.<name>": checkpointed and restored with the policy, never
// trained.
func newReference(m *Model) (*nn.GPT, error) {
	ref, err := nn.NewGPT(m.GPT.Config)
	if err != nil {
		return nil, err
	}
	ref.Store.Freeze(nil)
	ref.Store.Train(false)
	root := m.GPT.Store.Root().Sub("reference")
	for _, p := range ref.Store.StateDict() {
		root.Buffer(p.Name, p.T, true)
	}
	return ref, nil
}

// Net converts the model section into nn's GPT configuration with gpt's
// own conversion, so every architecture option of the gpt family (the
// Hugging Face ones included: kv_heads, mlp_width, gated_mlp, the bias
// overrides, attn_scale, windows, norm_eps) means the same in hrpo.
func (mc ModelConfig) Net() nn.GPTConfig {
	c := mc.Config
	if c.Vocab == 0 {
		c.Vocab = reasoning.VocabSize
	}
	if c.Context == 0 {
		c.Context = DefaultModel().Context
	}
	return c.GPTConfig(nil) // vocab and context are set: no data is consulted
}

func (e *Experiment) to(d torch.Device) error {
	if err := e.store.To(d); err != nil {
		return err
	}
	if e.Ref != nil {
		return e.Ref.Store.To(d)
	}
	return nil
}

// Store implements experiment.Experiment.
func (e *Experiment) Store() *nn.Store { return e.store }

// Close implements experiment.Experiment.
func (e *Experiment) Close() {
	e.store.Close() // frees the reference weights too (they are its buffers)
	if e.Ref != nil {
		e.Ref.Store.Close()
	}
}

// Groups implements experiment.Grouper: the policy's matrices (train.optimizer
// LR and weight decay), its biases and norm gains (no decay), the gate
// linears and Λ (model.gate LRs, weight decay on both, as the paper's
// patch_trainer_optimizer). Frozen parameters are left out.
func (e *Experiment) Groups(o experiment.Optimizer) []*optim.Group {
	var decay, plain, gate, lambda []*nn.Param
	for _, p := range e.store.Params() {
		switch {
		case !p.T.RequiresGrad():
		case IsLambda(p.Name):
			lambda = append(lambda, p)
		case IsGateParam(p.Name):
			gate = append(gate, p)
		case p.T.Dim() >= 2:
			decay = append(decay, p)
		default:
			plain = append(plain, p)
		}
	}
	groups := []*optim.Group{
		experiment.Group("policy", decay, o, o.LR, o.WeightDecay),
		experiment.Group("policy_no_decay", plain, o, o.LR, 0),
	}
	if len(gate) > 0 {
		groups = append(groups, experiment.Group("gate", gate, o, e.model.Gate.LR, e.model.Gate.WeightDecay))
	}
	if len(lambda) > 0 {
		groups = append(groups, experiment.Group("lambda", lambda, o, e.model.Gate.LambdaLR, e.model.Gate.WeightDecay))
	}
	return groups
}

// Loss implements experiment.Experiment: the SFT cross-entropy, or the RL
// policy loss after this step's rollouts.
func (e *Experiment) Loss(step int) (*torch.Tensor, experiment.Logs) {
	if e.data.Phase == "sft" {
		return e.sftLoss(step)
	}
	return e.rlLoss(step)
}

// sftLoss is next-token cross-entropy on the target tokens of an SFT
// batch (think span, ####, answer, EOS), plain embeddings.
func (e *Experiment) sftLoss(step int) (*torch.Tensor, experiment.Logs) {
	var b *reasoning.Batch
	var err error
	if e.task == reasoning.GSM8K {
		b = &reasoning.Batch{Problems: drawProblems(e.gsmTrain, e.seed^gsmSFTStream, step, e.batch)}
	} else if b, err = e.data.sftMix().Batch(e.seed, step, e.batch, e.data.sftMix().MaxLen()); err != nil {
		panic(err)
	}
	if e.M.Text != nil {
		if b, err = e.M.Text.Batch(b.Problems, e.model.Context); err != nil {
			panic(err)
		}
	}
	dev := e.M.E().Device()
	x := torch.FromSlice(b.Inputs, []int{b.B, b.T - 1}, dev)
	y := torch.FromSlice(b.Targets, []int{b.B, b.T - 1}, dev)
	loss := nn.LMLoss(e.M.GPT.Forward(x, nil), y, reasoning.IgnoreIndex)
	tokens := 0.0
	for _, v := range b.TargetMask {
		tokens += float64(v)
	}
	return loss, experiment.Logs{"tokens": tokens}
}

// Prompts returns step's RL prompts: train.batch problems, a pure function
// of the data seed and the step.
func (e *Experiment) Prompts(step int) ([]reasoning.Problem, error) {
	if e.task == reasoning.GSM8K {
		return drawProblems(e.gsmTrain, e.seed, step, e.batch), nil
	}
	return reasoning.Prompts(e.seed<<32|uint64(step), e.batch, e.task, e.data.K.reasoning())
}

// rlLoss runs one on-policy HRPO step: G rollouts of each prompt in one
// batched KV-cache decode (no gradient), binary rewards, group-standardised
// advantages, one teacher-forced forward over the buffered hybrid inputs,
// the reference forward on token ids, and the loss of [PolicyLoss].
func (e *Experiment) rlLoss(step int) (*torch.Tensor, experiment.Logs) {
	if step == 0 {
		// π_ref is the policy before any RL update: the init_from weights.
		torch.NoGrad(func() { copyWeights(e.Ref, e.M.GPT) })
	}
	problems, err := e.Prompts(step)
	if err != nil {
		panic(err)
	}
	G := e.data.Group
	rows := make([]reasoning.Problem, 0, len(problems)*G)
	prompts := make([][]int32, 0, cap(rows))
	for _, p := range problems {
		for range G {
			rows = append(rows, p)
			prompts = append(prompts, e.M.PromptIDs(p))
		}
	}
	var ro *Rollout
	torch.NoGrad(func() { ro, err = e.M.Rollout(prompts, RolloutOptions{MaxNew: e.data.MaxNew}) })
	if err != nil {
		panic(err)
	}
	completions := e.M.TaskTokens(ro.Completions, rows)
	rewards := Rewards(completions, rows)
	adv, err := Advantages(rewards, G)
	if err != nil {
		panic(err)
	}
	dev := e.M.E().Device()
	logits, in := e.M.Forward(ro)
	logp := e.M.LogProbs(logits, ro.IDs)
	var refLogp *torch.Tensor
	torch.NoGrad(func() { refLogp = e.M.ReferenceLogProbs(e.Ref, ro) })
	advT := torch.FromSlice(float32s(adv), []int{len(adv)}, dev)
	loss, kl := PolicyLoss(logp, refLogp, advT, ro.Mask, e.model.Beta)

	logs := rolloutLogs(ro, completions, rows, rewards, G)
	if e.M.Text != nil {
		logs["tokens"] = ro.Mask.Sum().Item() // tokenizer ids, not task words
	}
	logs["kl"] = kl.Item()
	logs["kl_tokens"] = TokenKL(logp, refLogp, ro.Mask).Item()
	torch.NoGrad(func() {
		for k, v := range e.M.gateLogs(ro, in) {
			logs[k] = v
		}
	})
	return loss, logs
}

// copyWeights copies src's parameters into dst (same configuration).
func copyWeights(dst, src *nn.GPT) {
	for _, p := range dst.Store.StateDict() {
		p.T.CopyFrom(src.Store.Get(p.Name).T)
	}
}

func float32s(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// rolloutLogs are the per-step metrics of brief §8.5 that need only the
// completions (in task tokens: ro.Completions, or their parse for a text
// tokenizer): reward, its group spread, lengths, format and faithfulness,
// and the think-span entropy.
func rolloutLogs(ro *Rollout, completions [][]int32, rows []reasoning.Problem, rewards []float64, G int) experiment.Logs {
	var st reasoning.Stats
	for i, c := range completions {
		st.Add(c, rows[i])
	}
	stdSum, zero := 0.0, 0
	for g := 0; g < len(rewards); g += G {
		_, std := stats.MeanStd(rewards[g : g+G])
		stdSum += std
		if std == 0 {
			zero++
		}
	}
	groups := float64(len(rewards) / G)
	logs := experiment.Logs{
		"reward": st.Accuracy(), "reward_std": stdSum / groups, "zero_var": float64(zero) / groups,
		"length": st.MeanLength(), "think_len": st.MeanThinkLength(), "format": st.FormatRate(),
		"skip": st.MeanSkipRate(), "tokens": float64(st.Tokens),
	}
	if f := st.Faithfulness(); !math.IsNaN(f) {
		logs["faith"] = f
	}
	// Entropy of p at think-span tokens (including the last one, which is
	// sampled but not fed back).
	ent := ro.Entropy.Float32s()
	sum, n := 0.0, 0
	for b := range ro.Completions {
		for t := range ro.ThinkLen[b] {
			sum += float64(ent[b*ro.N+t])
			n++
		}
	}
	if n > 0 {
		logs["entropy"] = sum / float64(n)
	}
	return logs
}

// gateLogs are the gate statistics of one step (brief §2, §8.5) over the
// fed-back think tokens of the teacher-forced forward: embeds_ratio (mean
// of mean_d(a)) and hidden_ratio (mean of √(1 − mean_d(a)²)), named as in
// the official code; the 10/50/90% quantiles of the elementwise
// √(1 − a²); the quantiles of σ(Λ)^c over dimensions; mean r and i; the
// norm ratio ‖√(1−a²+ε)·i·ĥ‖ / ‖a·ê‖; and latent_share, the share of
// completion tokens fed a latent.
func (m *Model) gateLogs(ro *Rollout, in Input) experiment.Logs {
	logs := experiment.Logs{}
	if m.Gate != nil {
		q := quantiles(m.Gate.Decay().Float32s(), 0.1, 0.5, 0.9)
		logs["decay_q10"], logs["decay_q50"], logs["decay_q90"] = q[0], q[1], q[2]
	}
	if ro.N < 2 {
		return logs
	}
	think := ro.Think.Narrow(1, 0, ro.N-1)
	nThink := think.To(torch.Float32).Sum().Item()
	logs["latent_share"] = nThink / ro.Mask.Sum().Item()
	if in.A == nil || nThink == 0 {
		return logs
	}
	mask := think.To(torch.Float32)
	mean := func(x *torch.Tensor) float64 { return x.Mul(mask).Sum().Item() / nThink }
	a := in.A.Detach()
	er := a.Mean(-1)
	logs["embeds_ratio"] = mean(er)
	logs["hidden_ratio"] = mean(er.Square().RSubScalar(1).ClampMin(0).Sqrt())
	logs["gate_r"] = mean(in.R.Detach().Mean(-1))
	logs["gate_i"] = mean(in.I.Detach().Mean(-1))
	hid := a.Square().RSubScalar(1).ClampMin(0).Sqrt()
	q := quantiles(hid.Index(think).Float32s(), 0.1, 0.5, 0.9)
	logs["hidden_q10"], logs["hidden_q50"], logs["hidden_q90"] = q[0], q[1], q[2]
	e := m.GPT.Embed(ro.IDs.Narrow(1, 0, ro.N-1))
	latent := a.Square().RSubScalar(1).AddScalar(GateEps).Sqrt().Mul(in.I.Detach()).Mul(ro.Latents())
	logs["norm_ratio"] = mean(latent.Norm(2, -1).Div(a.Mul(e).Norm(2, -1)))
	return logs
}

// quantiles returns the qs-quantiles of xs (linear interpolation).
func quantiles(xs []float32, qs ...float64) []float64 {
	s := make([]float64, len(xs))
	for i, x := range xs {
		s[i] = float64(x)
	}
	sort.Float64s(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		if len(s) == 0 {
			out[i] = math.NaN()
			continue
		}
		pos := q * float64(len(s)-1)
		lo := int(math.Floor(pos))
		hi := min(lo+1, len(s)-1)
		out[i] = s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
	}
	return out
}

// Eval implements experiment.Experiment: greedy rollouts on the held-out set,
// accuracy and lengths by K, with the arm's input and, for latent arms,
// with the latent switched off (off_*).
func (e *Experiment) Eval() experiment.Logs {
	o := RolloutOptions{MaxNew: e.eval.MaxNew, Greedy: true}
	res, err := e.M.Evaluate(e.evalSet, o, e.eval.Batch)
	if err != nil {
		panic(err)
	}
	logs := experiment.Logs(Summarize(res).Logs(""))
	if e.M.Arm.Latent() {
		o.LatentOff = true
		off, err := e.M.Evaluate(e.evalSet, o, e.eval.Batch)
		if err != nil {
			panic(err)
		}
		for k, v := range Summarize(off).Logs("off_") {
			logs[k] = v
		}
	}
	return logs
}

// reblame names the source that set the key of a range error (the file, an
// environment variable or the command line) instead of the recipe file.
func reblame(r *experiment.Recipe, err error) error {
	var se *recipe.SourceError
	var ke *recipe.KeyError
	if errors.As(err, &se) && errors.As(se.Err, &ke) {
		return experiment.BlameSource(r.Raw, ke)
	}
	return err
}
