package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

// Reduction says how a loss combines its per-element values.
type Reduction int32

// Loss reductions.
const (
	ReduceNone Reduction = Reduction(capi.ReductionNone)
	ReduceMean Reduction = Reduction(capi.ReductionMean)
	ReduceSum  Reduction = Reduction(capi.ReductionSum)
)

// Softmax normalises exp(t) along dim. Over a short last dimension (≤ 64)
// of a float CPU tensor it is the shim's node (a loop a row; libtorch's
// kernel runs a partial vector a row: 180 µs for [2048, 10]).
func (t *Tensor) Softmax(dim int) *Tensor {
	h, err := capi.Softmax(t.handle(), int64(dim))
	return wrap("softmax", h, err)
}

// LogSoftmax is log(softmax(t)) along dim, computed stably.
func (t *Tensor) LogSoftmax(dim int) *Tensor {
	h, err := capi.LogSoftmax(t.handle(), int64(dim))
	return wrap("log_softmax", h, err)
}

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p)
// when train is set; otherwise it returns t's values.
func (t *Tensor) Dropout(p float64, train bool) *Tensor {
	h, err := capi.Dropout(t.handle(), p, train)
	return wrap("dropout", h, err)
}

// Embedding looks up the rows of weight [V, D] at int64 indices.
func Embedding(weight, indices *Tensor) *Tensor {
	h, err := capi.Embedding(weight.handle(), indices.handle())
	return wrap("embedding", h, err)
}

// LayerNorm normalises x over its last nnorm dims, then applies the optional
// elementwise weight and bias. With nnorm = 1, weight and bias may instead
// be [G, d] for x [..., G, d]: a gain and bias per group of the last
// dimension (models/codebook's group codebooks), one node whose CPU float32
// forward and backward are the shim's own.
func LayerNorm(x *Tensor, nnorm int, weight, bias *Tensor, eps float64) *Tensor {
	h, err := capi.LayerNorm(x.handle(), nnorm, opt(weight), opt(bias), eps)
	return wrap("layer_norm", h, err)
}

// CrossEntropyOptions are cross_entropy's optional arguments. Start from
// DefaultCrossEntropy and change fields:
//
//	o := torch.DefaultCrossEntropy
//	o.LabelSmoothing = 0.1
type CrossEntropyOptions struct {
	Reduction      Reduction
	IgnoreIndex    int64   // targets equal to it contribute nothing
	LabelSmoothing float64 // in [0, 1]
	Weight         *Tensor // per-class weights, or nil
}

// DefaultCrossEntropy is PyTorch's default: mean, ignore_index -100, no smoothing.
var DefaultCrossEntropy = CrossEntropyOptions{Reduction: ReduceMean, IgnoreIndex: -100}

// CrossEntropy is the mean cross-entropy of logits [N, C] against int64
// targets [N], with PyTorch's defaults.
func CrossEntropy(logits, target *Tensor) *Tensor {
	return CrossEntropyWith(logits, target, DefaultCrossEntropy)
}

// CrossEntropyWith is cross-entropy with explicit options.
func CrossEntropyWith(logits, target *Tensor, o CrossEntropyOptions) *Tensor {
	h, err := capi.CrossEntropy(logits.handle(), target.handle(), opt(o.Weight), int32(o.Reduction), o.IgnoreIndex, o.LabelSmoothing)
	return wrap("cross_entropy", h, err)
}

// MSELoss is the mean (or per-element, or summed) squared error.
func MSELoss(a, b *Tensor, r Reduction) *Tensor {
	h, err := capi.MSELoss(a.handle(), b.handle(), int32(r))
	return wrap("mse_loss", h, err)
}

// KLDiv is torch.nn.functional.kl_div: input holds log-probabilities; target
// holds probabilities (log-probabilities with logTarget).
func KLDiv(input, target *Tensor, r Reduction, logTarget bool) *Tensor {
	h, err := capi.KLDiv(input.handle(), target.handle(), int32(r), logTarget)
	return wrap("kl_div", h, err)
}

// Attention is fused scaled dot-product attention softmax(q kᵀ/√E + mask) v
// over q [..., L, E] and k, v [..., S, E]. mask may be nil (bool: true =
// attend; float: added to the scores); causal applies the lower-triangular
// mask instead.
func Attention(q, k, v, mask *Tensor, dropout float64, causal bool) *Tensor {
	h, err := capi.Attention(q.handle(), k.handle(), v.handle(), opt(mask), dropout, causal)
	return wrap("attention", h, err)
}
