package hrpo

import (
	"fmt"
	"math"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Arm is the input path of the reasoning span: the arms of the small-scale
// study (brief §8.4). All arms sample discrete tokens and share the RL loss;
// they differ only in what the model is fed at think-span positions.
type Arm string

// The arms.
const (
	// GRPO feeds the sampled token's embedding ê (no latent).
	GRPO Arm = "grpo"
	// HRPO feeds the gated hybrid a ⊙ ê + √(1 − a² + 1e-8) ⊙ (i ⊙ ĥ).
	HRPO Arm = "hrpo"
	// InterpOnly feeds the interpolated embedding ĥ alone.
	InterpOnly Arm = "interp"
	// RawHidden feeds the previous position's final (post-norm) hidden
	// state, off the embedding manifold.
	RawHidden Arm = "hidden"
	// FrozenGate is HRPO with the gate (W_r, b_r, W_i, b_i, Λ) kept at its
	// initialisation: does the learned progressive increase matter?
	FrozenGate Arm = "frozen"
)

// Arms lists the arms in table order.
var Arms = []Arm{GRPO, HRPO, InterpOnly, RawHidden, FrozenGate}

// ParseArm checks an arm name.
func ParseArm(s string) (Arm, error) {
	for _, a := range Arms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown arm %q (want grpo, hrpo, interp, hidden or frozen)", s)
}

// Latent reports whether the arm feeds a latent at think positions.
func (a Arm) Latent() bool { return a != GRPO }

// Gated reports whether the arm mixes the latent through the gate.
func (a Arm) Gated() bool { return a == HRPO || a == FrozenGate }

// Model is a GPT policy with HRPO's hybrid input. The GPT's token
// embedding matrix E (tied with the output head) is the E of ĥ = pᵀE/‖p‖₂.
type Model struct {
	GPT  *nn.GPT
	Gate *Gate // nil unless Arm.Gated()
	Arm  Arm
	// Tau is τ, the sampling temperature: rollouts sample from
	// p = softmax(top_k(z/τ)), and ĥ interpolates under the same p.
	Tau float64
	// TopK truncates p to its TopK most likely tokens (0: off); see
	// [Model.SampleLogits].
	TopK int
	// LossTau is the temperature of the loss's log-probabilities
	// ([Model.LogProbs]); 0 means 1, the official code's.
	LossTau float64
	// Text, when set, is the text tokenizer the policy's ids belong to (an
	// imported model's): prompts are encoded, completions end at its EOT
	// and are parsed back to task tokens ([reasoning.TextCodec]). Nil: the
	// ids are the task vocabulary's.
	Text *reasoning.TextCodec
}

// E returns the input embedding matrix [V, d].
func (m *Model) E() *torch.Tensor { return m.GPT.WTE.Weight }

// Input is the model input of a span of completion tokens.
type Input struct {
	X *torch.Tensor // [B, T, d] input embeddings
	// A is the gate's a [B, T, d] (nil without a gate); it is computed at
	// every position, and applies where think is true.
	A, R, I *torch.Tensor
}

// Inputs builds the input embeddings of completion tokens ids [B, T]:
// E[ids] where think [B, T] (bool) is false, and the arm's latent input
// where it is true, from the buffered latents [B, T, d] (ĥ, or the raw
// hidden state for RawHidden). With latent nil (GRPO, or evaluation with
// the latent switched off) every position gets its plain embedding.
func (m *Model) Inputs(ids, latent, think *torch.Tensor) Input {
	e := m.GPT.Embed(ids)
	if latent == nil || !m.Arm.Latent() {
		return Input{X: e}
	}
	var in Input
	var mixed *torch.Tensor
	if m.Arm.Gated() {
		g := m.Gate.Mix(e, latent)
		mixed, in.A, in.R, in.I = g.X, g.A, g.R, g.I
	} else {
		mixed = latent
	}
	in.X = torch.Where(think.Unsqueeze(-1), mixed, e)
	return in
}

// LogProbs returns the log-probabilities of ids [B, T] (int64) in the loss:
// log softmax(logits/LossTau) [B, T] for logits [B, T, V], without top-k
// truncation. The official code takes them at temperature 1 for the policy
// and the reference alike, whatever the sampling temperature.
func (m *Model) LogProbs(logits, ids *torch.Tensor) *torch.Tensor {
	t := m.LossTau
	if t == 0 {
		t = 1
	}
	if t != 1 {
		logits = logits.DivScalar(t)
	}
	return logits.LogSoftmax(-1).Gather(-1, ids.Unsqueeze(-1)).Squeeze(-1)
}

// SampleLogits returns the logits of the sampling distribution
// p = softmax(SampleLogits(z)): z/τ with every token below the TopK-th
// largest set to −∞ (ties with it kept), as transformers' temperature and
// top-k warpers do in the official generation. Rollouts sample x from p
// and interpolate ĥ under p.
func (m *Model) SampleLogits(z *torch.Tensor) *torch.Tensor {
	z = z.DivScalar(m.Tau)
	if k := m.TopK; k > 0 && k < z.Size(-1) {
		vals, _ := z.TopK(k, -1)
		z = z.MaskedFill(z.Lt(vals.Narrow(-1, k-1, 1)), math.Inf(-1))
	}
	return z
}

// SampleLogProbs returns log p(ids) [B, T] under the sampling distribution
// p = softmax(SampleLogits(logits)): the rollout's own log-probabilities.
func (m *Model) SampleLogProbs(logits, ids *torch.Tensor) *torch.Tensor {
	return m.SampleLogits(logits).LogSoftmax(-1).Gather(-1, ids.Unsqueeze(-1)).Squeeze(-1)
}

// Forward is the teacher-forced pass over a rollout's buffered inputs (§1.2
// of the brief): the prompt gets plain embeddings, each completion token
// before the last gets the input the rollout fed, recomputed with the
// current gate parameters from E[x] and the stored latent (a constant: no
// gradient flows through the latent chain), and one causal forward over the
// whole sequence, with the rollout's padding mask and positions, gives the
// logits of every completion token [B, N, V].
func (m *Model) Forward(ro *Rollout) (*torch.Tensor, Input) {
	P, N := ro.P, ro.N
	var in Input
	x := m.GPT.Embed(ro.PromptIDs)
	if N > 1 {
		in = m.Inputs(ro.IDs.Narrow(1, 0, N-1), ro.Latents(), ro.Think.Narrow(1, 0, N-1))
		x = torch.Cat([]*torch.Tensor{x, in.X}, 1)
	}
	L := P + N - 1
	h := m.GPT.Hidden(x, &nn.ForwardOptions{KeyMask: ro.KeyMask.Narrow(1, 0, L), Positions: ro.Positions.Narrow(1, 0, L)})
	return m.GPT.Logits(h.Narrow(1, P-1, N)), in
}

// ReferenceLogProbs returns log p_ref(ids) [B, N] of a rollout's completion
// tokens under the frozen reference model ref fed token ids only (paper
// §3.2), at the loss temperature of [Model.LogProbs].
func (m *Model) ReferenceLogProbs(ref *nn.GPT, ro *Rollout) *torch.Tensor {
	P, N := ro.P, ro.N
	ids := ro.PromptIDs
	if N > 1 {
		ids = torch.Cat([]*torch.Tensor{ids, ro.IDs.Narrow(1, 0, N-1)}, 1)
	}
	L := P + N - 1
	h := ref.Hidden(ref.Embed(ids), &nn.ForwardOptions{KeyMask: ro.KeyMask.Narrow(1, 0, L), Positions: ro.Positions.Narrow(1, 0, L)})
	return m.LogProbs(ref.Logits(h.Narrow(1, P-1, N)), ro.IDs)
}
