package hrpo

import (
	"fmt"
	"math"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// GateEps is the constant under the square root of the latent weight,
// √(1 − a² + 1e-8): it keeps the gradient finite at a = 1 and leaves a
// residue of 1e-4·i⊙ĥ in the input even when the gate is shut.
const GateEps = 1e-8

// Parameter names of the gate, under the model's root path.
const (
	gatePrefix = "gate."
	lambdaName = "gate.lambda"
)

// IsGateParam reports whether name is one of the gate's parameters (the
// linears W_r, b_r, W_i, b_i and Λ).
func IsGateParam(name string) bool { return strings.HasPrefix(name, gatePrefix) }

// IsLambda reports whether name is the gate's Λ.
func IsLambda(name string) bool { return name == lambdaName }

// Gate is HRPO's hybrid-input gate (paper §3.1, Eqs. 2–4), a Griffin RG-LRU
// gate applied once per reasoning token. From the sampled token's embedding
// ê it computes
//
//	r = σ(W_r ê + b_r)    the recurrence gate
//	i = σ(W_i ê + b_i)    the input gate
//	a = σ(Λ)^(c·r) = exp(−c · softplus(−Λ) ⊙ r)
//
// and mixes ê with the interpolated embedding ĥ:
//
//	input = a ⊙ ê + √(1 − a² + 1e-8) ⊙ (i ⊙ ĥ).
//
// The gates read only ê, never ĥ; only i scales ĥ. Λ is initialised so that
// a starts in [r_min, r_max] (close to 1), so the model starts almost purely
// token-driven and the hidden ratio √(1 − a²) grows through learning.
type Gate struct {
	Wr, Br *torch.Tensor // W_r [d, d], b_r [d]
	Wi, Bi *torch.Tensor // W_i [d, d], b_i [d]
	Lambda *torch.Tensor // Λ [d]
	C      float64       // c, the exponent scale (8 in the paper)
}

// GateInit is the initialisation of the gate linears W_r, b_r, W_i, b_i.
type GateInit string

// The gate initialisations.
const (
	// GateInitNormal draws the weights from N(0, GateInitStd²) and zeroes
	// the biases: the official code, whose gate linears are nn.Linear
	// modules of the Qwen2/Llama model initialised by transformers'
	// _init_weights (initializer_range 0.02). The default.
	GateInitNormal GateInit = "normal"
	// GateInitUniform draws weights and biases from U(−1/√d, 1/√d) (paper
	// App. A; PyTorch's nn.Linear default): hiddenlab's earlier default.
	GateInitUniform GateInit = "uniform"
)

// GateInitStd is the standard deviation of GateInitNormal
// (initializer_range of the official models).
const GateInitStd = 0.02

// NewGate creates a gate of width d under p ("gate.w_r", "gate.b_r",
// "gate.w_i", "gate.b_i", "gate.lambda" at the root), its linears
// initialised by init ([GateInitNormal] or [GateInitUniform]); either way
// r ≈ i ≈ 0.5 at the start. Each Λ_k is logit(u_k^(1/c)) for
// u_k ~ U[rMin, rMax] (the official reset_lambda_parameters), which gives
// a = u^r: a = u at r = 1. It needs 0 < rMin ≤ rMax < 1 and c > 0.
func NewGate(p nn.Path, d int, c, rMin, rMax float64, init GateInit) (*Gate, error) {
	switch {
	case d < 1:
		return nil, fmt.Errorf("gate width %d must be positive", d)
	case !(c > 0):
		return nil, fmt.Errorf("c = %v must be positive", c)
	case !(rMin > 0 && rMin <= rMax && rMax < 1):
		return nil, fmt.Errorf("need 0 < r_min ≤ r_max < 1, got r_min = %v, r_max = %v", rMin, rMax)
	}
	var weight, bias func(shape ...int) *torch.Tensor
	switch init {
	case GateInitNormal:
		weight = func(shape ...int) *torch.Tensor { return torch.Empty(shape).Normal(0, GateInitStd) }
		bias = func(shape ...int) *torch.Tensor { return torch.Zeros(shape) }
	case GateInitUniform:
		bound := 1 / math.Sqrt(float64(d))
		weight = func(shape ...int) *torch.Tensor { return torch.Empty(shape).Uniform(-bound, bound) }
		bias = weight
	default:
		return nil, fmt.Errorf("gate init %q: want normal or uniform", init)
	}
	g := &Gate{C: c}
	g.Wr = p.Param("w_r", weight(d, d))
	g.Br = p.Param("b_r", bias(d))
	g.Wi = p.Param("w_i", weight(d, d))
	g.Bi = p.Param("b_i", bias(d))
	torch.WithScope(func() {
		u := torch.Empty([]int{d}, torch.Float64).Uniform(rMin, rMax)
		// Λ = −log(u^(−1/c) − 1), computed in float64: u^(1/c) is within
		// 1e-4 of 1 for r_max = 0.999.
		lambda := u.PowScalar(-1 / c).SubScalar(1).Log().Neg().To(torch.Float32)
		g.Lambda = p.Param("lambda", lambda)
	})
	return g, nil
}

// Gates returns the recurrence gate r and the input gate i of the sampled
// tokens' embeddings ê [..., d].
func (g *Gate) Gates(e *torch.Tensor) (r, i *torch.Tensor) {
	return torch.Linear(e, g.Wr, g.Br).Sigmoid(), torch.Linear(e, g.Wi, g.Bi).Sigmoid()
}

// A returns a = exp(−c · softplus(−Λ) ⊙ r) = σ(Λ)^(c·r) for the recurrence
// gate r [..., d].
func (g *Gate) A(r *torch.Tensor) *torch.Tensor {
	return g.Lambda.Neg().Softplus().MulScalar(-g.C).Mul(r).Exp()
}

// Decay returns σ(Λ)^c [d], the value of a at r = 1. NewGate draws it
// uniformly from [r_min, r_max].
func (g *Gate) Decay() *torch.Tensor { return g.A(torch.OnesLike(g.Lambda)) }

// Mixed is the gate's output for a batch of reasoning tokens.
type Mixed struct {
	X    *torch.Tensor // a ⊙ ê + √(1 − a² + 1e-8) ⊙ (i ⊙ ĥ), the model input
	A    *torch.Tensor // a, the token share
	R, I *torch.Tensor // the gates r and i
}

// Mix combines sampled-token embeddings ê and interpolated embeddings ĥ
// (both [..., d]) into the hybrid input.
func (g *Gate) Mix(e, hHat *torch.Tensor) Mixed {
	r, i := g.Gates(e)
	a := g.A(r)
	// (1 − a²) + 1e-8 in this order, as the official code: 1 + 1e-8 would
	// round to 1 in float32.
	latent := a.Square().RSubScalar(1).AddScalar(GateEps).Sqrt()
	return Mixed{X: a.Mul(e).Add(latent.Mul(i.Mul(hHat))), A: a, R: r, I: i}
}

// Interpolate returns the interpolated embedding ĥ = pᵀE / ‖p‖₂ of sampling
// distributions p [..., V] over the input embedding matrix E [V, d]. The
// division is by the norm of the probability vector, not of pᵀE: a one-hot
// p gives exactly E[x], and p uniform over k roughly orthogonal embeddings
// keeps their scale.
func Interpolate(p, E *torch.Tensor) *torch.Tensor {
	return p.Matmul(E).Div(p.NormKeep(2, -1))
}
