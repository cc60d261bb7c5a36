package capi

/*
#include <stdlib.h>
#include "hlshim.h"
*/
import "C"

import "unsafe"

// ---- shape ----

// View reshapes without copying.
func View(t Tensor, shape []int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_view(t, i64s(shape), C.int32_t(len(shape)), &out))
	return out, err
}

// Reshape reshapes, copying if needed.
func Reshape(t Tensor, shape []int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_reshape(t, i64s(shape), C.int32_t(len(shape)), &out))
	return out, err
}

// Expand broadcasts size-1 dims to shape without copying.
func Expand(t Tensor, shape []int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_expand(t, i64s(shape), C.int32_t(len(shape)), &out))
	return out, err
}

// Permute reorders dims.
func Permute(t Tensor, dims []int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_permute(t, i64s(dims), C.int32_t(len(dims)), &out))
	return out, err
}

// Transpose swaps two dims.
func Transpose(t Tensor, d0, d1 int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_transpose(t, C.int64_t(d0), C.int64_t(d1), &out))
	return out, err
}

// Squeeze drops size-1 dims (all of them when all is set).
func Squeeze(t Tensor, dim int64, all bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_squeeze(t, C.int64_t(dim), b2i(all), &out))
	return out, err
}

// Unsqueeze inserts a size-1 dim.
func Unsqueeze(t Tensor, dim int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_unsqueeze(t, C.int64_t(dim), &out))
	return out, err
}

// Flatten merges dims start..end.
func Flatten(t Tensor, start, end int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_flatten(t, C.int64_t(start), C.int64_t(end), &out))
	return out, err
}

// Cat concatenates along dim.
func Cat(ts []Tensor, dim int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_cat(handles(ts), C.int32_t(len(ts)), C.int64_t(dim), &out))
	return out, err
}

// Stack stacks along a new dim.
func Stack(ts []Tensor, dim int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_stack(handles(ts), C.int32_t(len(ts)), C.int64_t(dim), &out))
	return out, err
}

// SplitSizes splits along dim into pieces of the given sizes.
func SplitSizes(t Tensor, sizes []int64, dim int64) ([]Tensor, error) {
	outs := make([]Tensor, len(sizes))
	err := check(C.hl_split_sizes(t, i64s(sizes), C.int32_t(len(sizes)), C.int64_t(dim), handles(outs)))
	return outs, err
}

// Narrow is a view of length elements from start along dim.
func Narrow(t Tensor, dim, start, length int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_narrow(t, C.int64_t(dim), C.int64_t(start), C.int64_t(length), &out))
	return out, err
}

// Slice is t[start:end:step] along dim.
func Slice(t Tensor, dim, start, end, step int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_slice(t, C.int64_t(dim), C.int64_t(start), C.int64_t(end), C.int64_t(step), &out))
	return out, err
}

// Select indexes one position of dim, dropping it.
func Select(t Tensor, dim, index int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_select(t, C.int64_t(dim), C.int64_t(index), &out))
	return out, err
}

// Repeat tiles t.
func Repeat(t Tensor, repeats []int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_repeat(t, i64s(repeats), C.int32_t(len(repeats)), &out))
	return out, err
}

// IndexSelect picks entries of dim by index.
func IndexSelect(t Tensor, dim int64, index Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_index_select(t, C.int64_t(dim), index, &out))
	return out, err
}

// Gather is torch.gather.
func Gather(t Tensor, dim int64, index Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_gather(t, C.int64_t(dim), index, &out))
	return out, err
}

// Scatter is torch.scatter, or torch.scatter_add with add.
func Scatter(t Tensor, dim int64, index, src Tensor, add bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_scatter(t, C.int64_t(dim), index, src, b2i(add), &out))
	return out, err
}

// IndexPut is the out-of-place torch.index_put.
func IndexPut(t Tensor, indices []Tensor, values Tensor, accumulate bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_index_put(t, handles(indices), C.int32_t(len(indices)), values, b2i(accumulate), &out))
	return out, err
}

// Index is advanced indexing t[indices...].
func Index(t Tensor, indices []Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_index(t, handles(indices), C.int32_t(len(indices)), &out))
	return out, err
}

// MaskedFill sets value where mask is true.
func MaskedFill(t, mask Tensor, value float64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_masked_fill(t, mask, C.double(value), &out))
	return out, err
}

// Where picks a where cond, else b.
func Where(cond, a, b Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_where(cond, a, b, &out))
	return out, err
}

// Triu keeps the upper triangle from diagonal on.
func Triu(t Tensor, diagonal int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_triu(t, C.int64_t(diagonal), &out))
	return out, err
}

// Tril keeps the lower triangle up to diagonal.
func Tril(t Tensor, diagonal int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_tril(t, C.int64_t(diagonal), &out))
	return out, err
}

// OneHot encodes integer classes.
func OneHot(t Tensor, classes int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_one_hot(t, C.int64_t(classes), &out))
	return out, err
}

// ---- elementwise ----

// Unary ops (hl_unary_op).
const (
	Neg        = int32(C.HL_NEG)
	Exp        = int32(C.HL_EXP)
	Log        = int32(C.HL_LOG)
	Sqrt       = int32(C.HL_SQRT)
	Rsqrt      = int32(C.HL_RSQRT)
	Abs        = int32(C.HL_ABS)
	Relu       = int32(C.HL_RELU)
	Gelu       = int32(C.HL_GELU)
	GeluTanh   = int32(C.HL_GELU_TANH)
	Silu       = int32(C.HL_SILU)
	Tanh       = int32(C.HL_TANH)
	Sigmoid    = int32(C.HL_SIGMOID)
	Softplus   = int32(C.HL_SOFTPLUS)
	Sin        = int32(C.HL_SIN)
	Cos        = int32(C.HL_COS)
	Reciprocal = int32(C.HL_RECIPROCAL)
	Square     = int32(C.HL_SQUARE)
	Sign       = int32(C.HL_SIGN)
	Floor      = int32(C.HL_FLOOR)
	Ceil       = int32(C.HL_CEIL)
	Round      = int32(C.HL_ROUND)
	LogicalNot = int32(C.HL_LOGICAL_NOT)
	Log1p      = int32(C.HL_LOG1P)
	Expm1      = int32(C.HL_EXPM1)
	Erf        = int32(C.HL_ERF)
	IsNaN      = int32(C.HL_ISNAN)
	IsFinite   = int32(C.HL_ISFINITE)
	LogSigmoid = int32(C.HL_LOG_SIGMOID)
	UnaryCount = int32(C.HL_UNARY_COUNT)
)

// Binary ops (hl_binary_op).
const (
	Add         = int32(C.HL_ADD)
	Sub         = int32(C.HL_SUB)
	Mul         = int32(C.HL_MUL)
	Div         = int32(C.HL_DIV)
	Pow         = int32(C.HL_POW)
	Maximum     = int32(C.HL_MAXIMUM)
	Minimum     = int32(C.HL_MINIMUM)
	Eq          = int32(C.HL_EQ)
	Ne          = int32(C.HL_NE)
	Lt          = int32(C.HL_LT)
	Le          = int32(C.HL_LE)
	Gt          = int32(C.HL_GT)
	Ge          = int32(C.HL_GE)
	LogicalAnd  = int32(C.HL_LOGICAL_AND)
	LogicalOr   = int32(C.HL_LOGICAL_OR)
	Remainder   = int32(C.HL_REMAINDER)
	FloorDivide = int32(C.HL_FLOOR_DIVIDE)
	Atan2       = int32(C.HL_ATAN2)
	BinaryCount = int32(C.HL_BINARY_COUNT)
)

// Unary applies a unary op.
func Unary(op int32, t Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_unary(C.int32_t(op), t, &out))
	return out, err
}

// UnaryInPlace applies a unary op in place.
func UnaryInPlace(op int32, t Tensor) error { return check(C.hl_unary_(C.int32_t(op), t)) }

// Binary applies a broadcasting binary op.
func Binary(op int32, a, b Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_binary(C.int32_t(op), a, b, &out))
	return out, err
}

// BinaryInPlace computes a op= b.
func BinaryInPlace(op int32, a, b Tensor) error { return check(C.hl_binary_(C.int32_t(op), a, b)) }

// BinaryScalar computes a op s, or s op a when reversed.
func BinaryScalar(op int32, a Tensor, s float64, reversed bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_binary_scalar(C.int32_t(op), a, C.double(s), b2i(reversed), &out))
	return out, err
}

// BinaryScalarInPlace computes a op= s.
func BinaryScalarInPlace(op int32, a Tensor, s float64) error {
	return check(C.hl_binary_scalar_(C.int32_t(op), a, C.double(s)))
}

// AddScaled is a + alpha*b.
func AddScaled(a, b Tensor, alpha float64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_add_scaled(a, b, C.double(alpha), &out))
	return out, err
}

// AddScaledInPlace is a += alpha*b.
func AddScaledInPlace(a, b Tensor, alpha float64) error {
	return check(C.hl_add_scaled_(a, b, C.double(alpha)))
}

// Clamp limits t to [lo, hi]; a bound applies only when its flag is set.
func Clamp(t Tensor, lo, hi float64, hasLo, hasHi bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_clamp(t, C.double(lo), C.double(hi), b2i(hasLo), b2i(hasHi), &out))
	return out, err
}

// Matmul is torch.matmul.
func Matmul(a, b Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_matmul(a, b, &out))
	return out, err
}

// Bmm is a batched matrix product of 3-d tensors.
func Bmm(a, b Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_bmm(a, b, &out))
	return out, err
}

// Linear is x @ w^T + bias (bias may be nil).
func Linear(x, w, bias Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_linear(x, w, bias, &out))
	return out, err
}

// Einsum is torch.einsum.
func Einsum(equation string, ts []Tensor) (Tensor, error) {
	eq := C.CString(equation)
	defer C.free(unsafe.Pointer(eq))
	var out Tensor
	err := check(C.hl_einsum(eq, handles(ts), C.int32_t(len(ts)), &out))
	return out, err
}

// ---- reductions ----

// Reductions (hl_reduce_op).
const (
	Sum         = int32(C.HL_SUM)
	Mean        = int32(C.HL_MEAN)
	Amax        = int32(C.HL_AMAX)
	Amin        = int32(C.HL_AMIN)
	LogSumExp   = int32(C.HL_LOGSUMEXP)
	Prod        = int32(C.HL_PROD)
	Var         = int32(C.HL_VAR)
	Std         = int32(C.HL_STD)
	All         = int32(C.HL_ALL)
	Any         = int32(C.HL_ANY)
	ReduceCount = int32(C.HL_REDUCE_COUNT)
)

// Reduce reduces over dims (all dims when empty).
func Reduce(op int32, t Tensor, dims []int64, keepdim bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_reduce(C.int32_t(op), t, i64s(dims), C.int32_t(len(dims)), b2i(keepdim), &out))
	return out, err
}

// MaxDim is max (or min) along dim with indices.
func MaxDim(t Tensor, dim int64, keepdim, isMin bool) (Tensor, Tensor, error) {
	var v, i Tensor
	err := check(C.hl_max_dim(t, C.int64_t(dim), b2i(keepdim), b2i(isMin), &v, &i))
	return v, i, err
}

// Argmax is argmax (or argmin) along dim, or over everything with all.
func Argmax(t Tensor, dim int64, all, keepdim, isMin bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_argmax(t, C.int64_t(dim), b2i(all), b2i(keepdim), b2i(isMin), &out))
	return out, err
}

// Norm is the p-norm over dims (all when empty).
func Norm(t Tensor, p float64, dims []int64, keepdim bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_norm(t, C.double(p), i64s(dims), C.int32_t(len(dims)), b2i(keepdim), &out))
	return out, err
}

// Cumsum is the running sum along dim.
func Cumsum(t Tensor, dim int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_cumsum(t, C.int64_t(dim), &out))
	return out, err
}

// TopK returns the k largest (or smallest) values and their indices.
func TopK(t Tensor, k, dim int64, largest, sorted bool) (Tensor, Tensor, error) {
	var v, i Tensor
	err := check(C.hl_topk(t, C.int64_t(k), C.int64_t(dim), b2i(largest), b2i(sorted), &v, &i))
	return v, i, err
}

// Sort sorts along dim.
func Sort(t Tensor, dim int64, descending bool) (Tensor, Tensor, error) {
	var v, i Tensor
	err := check(C.hl_sort(t, C.int64_t(dim), b2i(descending), &v, &i))
	return v, i, err
}

// Multinomial samples n indices per row of probs.
func Multinomial(probs Tensor, n int64, replacement bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_multinomial(probs, C.int64_t(n), b2i(replacement), &out))
	return out, err
}

// ---- neural-network functions ----

// Loss reductions (hl_reduction).
const (
	ReductionNone = int32(C.HL_REDUCTION_NONE)
	ReductionMean = int32(C.HL_REDUCTION_MEAN)
	ReductionSum  = int32(C.HL_REDUCTION_SUM)
)

// Softmax along dim.
func Softmax(t Tensor, dim int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_softmax(t, C.int64_t(dim), &out))
	return out, err
}

// LogSoftmax along dim.
func LogSoftmax(t Tensor, dim int64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_log_softmax(t, C.int64_t(dim), &out))
	return out, err
}

// Dropout zeroes with probability p and rescales, when train is set.
func Dropout(t Tensor, p float64, train bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_dropout(t, C.double(p), b2i(train), &out))
	return out, err
}

// Embedding looks up rows of weight.
func Embedding(weight, indices Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_embedding(weight, indices, &out))
	return out, err
}

// LayerNorm normalises over the last nnorm dims.
func LayerNorm(x Tensor, nnorm int, weight, bias Tensor, eps float64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_layer_norm(x, C.int32_t(nnorm), weight, bias, C.double(eps), &out))
	return out, err
}

// CrossEntropy is torch.nn.functional.cross_entropy.
func CrossEntropy(logits, target, weight Tensor, reduction int32, ignoreIndex int64, labelSmoothing float64) (Tensor, error) {
	var out Tensor
	err := check(C.hl_cross_entropy(logits, target, weight, C.int32_t(reduction), C.int64_t(ignoreIndex), C.double(labelSmoothing), &out))
	return out, err
}

// MSELoss is torch.nn.functional.mse_loss.
func MSELoss(a, b Tensor, reduction int32) (Tensor, error) {
	var out Tensor
	err := check(C.hl_mse_loss(a, b, C.int32_t(reduction), &out))
	return out, err
}

// KLDiv is torch.nn.functional.kl_div.
func KLDiv(input, target Tensor, reduction int32, logTarget bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_kl_div(input, target, C.int32_t(reduction), b2i(logTarget), &out))
	return out, err
}

// Attention is fused scaled dot-product attention.
func Attention(q, k, v, mask Tensor, dropout float64, causal bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_attention(q, k, v, mask, C.double(dropout), b2i(causal), &out))
	return out, err
}

// ---- autograd ----

// SetRequiresGrad marks t (a leaf) for gradient recording.
func SetRequiresGrad(t Tensor, on bool) error { return check(C.hl_set_requires_grad(t, b2i(on))) }

// Backward runs backpropagation from t (grad may be nil for a scalar).
func Backward(t, grad Tensor, retainGraph, createGraph bool) error {
	return check(C.hl_backward(t, grad, b2i(retainGraph), b2i(createGraph)))
}

// Grad returns t's gradient, or nil.
func Grad(t Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_grad(t, &out))
	return out, err
}

// SetGrad replaces t's gradient (nil clears it).
func SetGrad(t, grad Tensor) error { return check(C.hl_set_grad(t, grad)) }

// SetData makes t use src's storage, dtype and device, keeping t's identity.
func SetData(t, src Tensor) error { return check(C.hl_set_data(t, src)) }

// ZeroGrads zeroes (or drops) the gradients of ts.
func ZeroGrads(ts []Tensor, setToNone bool) error {
	return check(C.hl_zero_grads(handles(ts), C.int64_t(len(ts)), b2i(setToNone)))
}
