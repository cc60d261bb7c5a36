package nn

import (
	"fmt"
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Linear is y = x Wᵀ + b, with W [out, in].
type Linear struct {
	Weight *torch.Tensor // [out, in]
	Bias   *torch.Tensor // [out], or nil
}

// NewLinear creates a Linear with weights from N(0, std²) and a zero bias
// (when bias is set), registered as p.weight and p.bias.
func NewLinear(p Path, in, out int, bias bool, std float64) *Linear {
	l := &Linear{Weight: p.Param("weight", torch.Empty([]int{out, in}).Normal(0, std))}
	if bias {
		l.Bias = p.Param("bias", torch.Zeros([]int{out}))
	}
	return l
}

// Forward applies the layer to x [..., in].
func (l *Linear) Forward(x *torch.Tensor) *torch.Tensor { return torch.Linear(x, l.Weight, l.Bias) }

// Embedding maps token ids to rows of Weight [vocab, dim].
type Embedding struct {
	Weight *torch.Tensor
}

// NewEmbedding creates an embedding table from N(0, std²) at p.weight.
func NewEmbedding(p Path, vocab, dim int, std float64) *Embedding {
	return &Embedding{Weight: p.Param("weight", torch.Empty([]int{vocab, dim}).Normal(0, std))}
}

// Forward looks up int64 ids [...] → [..., dim].
func (e *Embedding) Forward(ids *torch.Tensor) *torch.Tensor { return torch.Embedding(e.Weight, ids) }

// Norm is a normalisation layer over the last dimension.
type Norm interface {
	Forward(x *torch.Tensor) *torch.Tensor
}

// LayerNorm normalises the last dimension to zero mean and unit variance,
// then scales and shifts elementwise.
type LayerNorm struct {
	Weight, Bias *torch.Tensor // [dim]; Bias nil without bias
	Eps          float64
}

// NewLayerNorm creates a LayerNorm with weight 1 and bias 0.
func NewLayerNorm(p Path, dim int, bias bool, eps float64) *LayerNorm {
	n := &LayerNorm{Weight: p.Param("weight", torch.Ones([]int{dim})), Eps: eps}
	if bias {
		n.Bias = p.Param("bias", torch.Zeros([]int{dim}))
	}
	return n
}

// Forward normalises x [..., dim].
func (n *LayerNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.LayerNorm(x, 1, n.Weight, n.Bias, n.Eps)
}

// RMSNorm scales the last dimension by its inverse root mean square:
// x / sqrt(mean(x²) + eps) · weight (Zhang & Sennrich 2019).
type RMSNorm struct {
	Weight *torch.Tensor // [dim]
	Eps    float64
}

// NewRMSNorm creates an RMSNorm with weight 1.
func NewRMSNorm(p Path, dim int, eps float64) *RMSNorm {
	return &RMSNorm{Weight: p.Param("weight", torch.Ones([]int{dim})), Eps: eps}
}

// Forward normalises x [..., dim].
func (n *RMSNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return x.Mul(x.Square().MeanKeep(-1).AddScalar(n.Eps).Rsqrt()).Mul(n.Weight)
}

// NewNorm creates a "layernorm" (with bias) or "rmsnorm" at p.
func NewNorm(p Path, kind string, dim int, eps float64) (Norm, error) {
	switch kind {
	case "layernorm", "":
		return NewLayerNorm(p, dim, true, eps), nil
	case "layernorm_nobias":
		return NewLayerNorm(p, dim, false, eps), nil
	case "rmsnorm":
		return NewRMSNorm(p, dim, eps), nil
	}
	return nil, fmt.Errorf("unknown norm %q (want layernorm, layernorm_nobias or rmsnorm)", kind)
}

// Dropout zeroes activations with probability P while its store trains.
type Dropout struct {
	P     float64
	store *Store
}

// NewDropout creates a dropout layer that follows p's store's mode.
func NewDropout(p Path, prob float64) *Dropout { return &Dropout{P: prob, store: p.store} }

// Forward applies dropout in training mode; in eval mode it returns x.
func (d *Dropout) Forward(x *torch.Tensor) *torch.Tensor {
	if d.P == 0 || !d.store.Training() {
		return x
	}
	return x.Dropout(d.P, true)
}

// Activation applies an elementwise nonlinearity by name.
type Activation string

// Activations.
const (
	GELU     Activation = "gelu"      // exact (erf)
	GELUTanh Activation = "gelu_tanh" // GPT-2's approximation
	SiLU     Activation = "silu"
	ReLU     Activation = "relu"
)

// Apply computes the activation.
func (a Activation) Apply(x *torch.Tensor) *torch.Tensor {
	switch a {
	case GELUTanh:
		return x.GeluTanh()
	case SiLU:
		return x.Silu()
	case ReLU:
		return x.Relu()
	default:
		return x.Gelu()
	}
}

// Valid reports whether a names a known activation.
func (a Activation) Valid() bool {
	switch a {
	case GELU, GELUTanh, SiLU, ReLU:
		return true
	}
	return false
}

// MLP is the Transformer feed-forward block: Proj(act(FC(x))), or, gated,
// Proj(act(Gate(x)) ⊙ FC(x)) (GLU variants, Shazeer 2020; SwiGLU with SiLU).
type MLP struct {
	FC, Proj *Linear
	Gate     *Linear // nil: not gated
	Act      Activation
}

// NewMLP creates an MLP dim → hidden → dim. projStd initialises the output
// projection (scaled down for residual branches).
func NewMLP(p Path, dim, hidden int, act Activation, bias bool, std, projStd float64) *MLP {
	return &MLP{
		FC:   NewLinear(p.Sub("fc"), dim, hidden, bias, std),
		Proj: NewLinear(p.Sub("proj"), hidden, dim, bias, projStd),
		Act:  act,
	}
}

// NewGatedMLP creates a gated MLP dim → hidden → dim with parameters gate, fc
// (Llama's gate_proj and up_proj) and proj (down_proj).
func NewGatedMLP(p Path, dim, hidden int, act Activation, bias bool, std, projStd float64) *MLP {
	return &MLP{
		Gate: NewLinear(p.Sub("gate"), dim, hidden, bias, std),
		FC:   NewLinear(p.Sub("fc"), dim, hidden, bias, std),
		Proj: NewLinear(p.Sub("proj"), hidden, dim, bias, projStd),
		Act:  act,
	}
}

// Forward applies the MLP; mid, when non-nil, sees (and may replace) the
// hidden activations (after the gate's product when gated).
func (m *MLP) Forward(x *torch.Tensor, mid func(*torch.Tensor) *torch.Tensor) *torch.Tensor {
	return m.forward(x, mlpHooks{post: mid})
}

// mlpHooks see (and may replace) an MLP's pre-activation (the gate's when
// gated), a gated MLP's up projection and the hidden activation; nil ones
// are skipped.
type mlpHooks struct {
	pre, linear, post func(*torch.Tensor) *torch.Tensor
}

func (m *MLP) forward(x *torch.Tensor, hk mlpHooks) *torch.Tensor {
	call := func(f func(*torch.Tensor) *torch.Tensor, h *torch.Tensor) *torch.Tensor {
		if f == nil {
			return h
		}
		return f(h)
	}
	var h *torch.Tensor
	if m.Gate != nil {
		h = m.Act.Apply(call(hk.pre, m.Gate.Forward(x))).Mul(call(hk.linear, m.FC.Forward(x)))
	} else {
		h = m.Act.Apply(call(hk.pre, m.FC.Forward(x)))
	}
	return m.Proj.Forward(call(hk.post, h))
}

// SwiGLU is the gated feed-forward block W2(silu(W1 x) ⊙ W3 x) (Shazeer 2020).
type SwiGLU struct {
	W1, W3, W2 *Linear
}

// NewSwiGLU creates a SwiGLU dim → hidden → dim without biases.
func NewSwiGLU(p Path, dim, hidden int, std, projStd float64) *SwiGLU {
	return &SwiGLU{
		W1: NewLinear(p.Sub("w1"), dim, hidden, false, std),
		W3: NewLinear(p.Sub("w3"), dim, hidden, false, std),
		W2: NewLinear(p.Sub("w2"), hidden, dim, false, projStd),
	}
}

// Forward applies the block.
func (m *SwiGLU) Forward(x *torch.Tensor) *torch.Tensor {
	return m.W2.Forward(m.W1.Forward(x).Silu().Mul(m.W3.Forward(x)))
}

// ResidualStd is GPT-2's initialisation for projections into the residual
// stream: std/sqrt(2·layers).
func ResidualStd(std float64, layers int) float64 { return std / math.Sqrt(2*float64(layers)) }
