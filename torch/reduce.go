package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

var reduceNames = [capi.ReduceCount]string{
	capi.Sum: "sum", capi.Mean: "mean", capi.Amax: "amax", capi.Amin: "amin", capi.LogSumExp: "logsumexp",
	capi.Prod: "prod", capi.Var: "var", capi.Std: "std", capi.All: "all", capi.Any: "any",
}

func (t *Tensor) reduce(op int32, keepdim bool, dims []int) *Tensor {
	h, err := capi.Reduce(op, t.handle(), int64s(dims), keepdim)
	return wrap(reduceNames[op], h, err)
}

// Sum adds over dims (all of them when none are given), dropping them.
func (t *Tensor) Sum(dims ...int) *Tensor { return t.reduce(capi.Sum, false, dims) }

// SumKeep is Sum keeping the reduced dims with size 1.
func (t *Tensor) SumKeep(dims ...int) *Tensor { return t.reduce(capi.Sum, true, dims) }

// Mean averages over dims (all when none are given).
func (t *Tensor) Mean(dims ...int) *Tensor { return t.reduce(capi.Mean, false, dims) }

// MeanKeep is Mean keeping the reduced dims.
func (t *Tensor) MeanKeep(dims ...int) *Tensor { return t.reduce(capi.Mean, true, dims) }

// Amax is the maximum over dims (all when none are given).
func (t *Tensor) Amax(dims ...int) *Tensor { return t.reduce(capi.Amax, false, dims) }

// AmaxKeep is Amax keeping the reduced dims.
func (t *Tensor) AmaxKeep(dims ...int) *Tensor { return t.reduce(capi.Amax, true, dims) }

// Amin is the minimum over dims (all when none are given).
func (t *Tensor) Amin(dims ...int) *Tensor { return t.reduce(capi.Amin, false, dims) }

// AminKeep is Amin keeping the reduced dims.
func (t *Tensor) AminKeep(dims ...int) *Tensor { return t.reduce(capi.Amin, true, dims) }

// LogSumExp is log Σ exp over dims (all when none are given), computed stably.
func (t *Tensor) LogSumExp(dims ...int) *Tensor { return t.reduce(capi.LogSumExp, false, dims) }

// LogSumExpKeep is LogSumExp keeping the reduced dims.
func (t *Tensor) LogSumExpKeep(dims ...int) *Tensor { return t.reduce(capi.LogSumExp, true, dims) }

// Prod multiplies over dims (all when none are given).
func (t *Tensor) Prod(dims ...int) *Tensor { return t.reduce(capi.Prod, false, dims) }

// Var is the unbiased variance over dims (all when none are given).
func (t *Tensor) Var(dims ...int) *Tensor { return t.reduce(capi.Var, false, dims) }

// Std is the unbiased standard deviation over dims (all when none are given).
func (t *Tensor) Std(dims ...int) *Tensor { return t.reduce(capi.Std, false, dims) }

// All reports whether every element is true, over dims (all when none are given).
func (t *Tensor) All(dims ...int) *Tensor { return t.reduce(capi.All, false, dims) }

// Any reports whether some element is true, over dims (all when none are given).
func (t *Tensor) Any(dims ...int) *Tensor { return t.reduce(capi.Any, false, dims) }

// MaxDim is the maximum along dim with its int64 indices.
func (t *Tensor) MaxDim(dim int, keepdim bool) (values, indices *Tensor) {
	v, i, err := capi.MaxDim(t.handle(), int64(dim), keepdim, false)
	fail("max", err)
	return adopt(v), adopt(i)
}

// MinDim is the minimum along dim with its int64 indices.
func (t *Tensor) MinDim(dim int, keepdim bool) (values, indices *Tensor) {
	v, i, err := capi.MaxDim(t.handle(), int64(dim), keepdim, true)
	fail("min", err)
	return adopt(v), adopt(i)
}

// Argmax is the index of the maximum along dim.
func (t *Tensor) Argmax(dim int, keepdim bool) *Tensor {
	h, err := capi.Argmax(t.handle(), int64(dim), false, keepdim, false)
	return wrap("argmax", h, err)
}

// ArgmaxAll is the index of the maximum of the flattened tensor.
func (t *Tensor) ArgmaxAll() *Tensor {
	h, err := capi.Argmax(t.handle(), 0, true, false, false)
	return wrap("argmax", h, err)
}

// Argmin is the index of the minimum along dim.
func (t *Tensor) Argmin(dim int, keepdim bool) *Tensor {
	h, err := capi.Argmax(t.handle(), int64(dim), false, keepdim, true)
	return wrap("argmin", h, err)
}

// Norm is the p-norm over dims (all when none are given).
func (t *Tensor) Norm(p float64, dims ...int) *Tensor {
	h, err := capi.Norm(t.handle(), p, int64s(dims), false)
	return wrap("norm", h, err)
}

// NormKeep is Norm keeping the reduced dims.
func (t *Tensor) NormKeep(p float64, dims ...int) *Tensor {
	h, err := capi.Norm(t.handle(), p, int64s(dims), true)
	return wrap("norm", h, err)
}

// Cumsum is the running sum along dim.
func (t *Tensor) Cumsum(dim int) *Tensor {
	h, err := capi.Cumsum(t.handle(), int64(dim))
	return wrap("cumsum", h, err)
}

// TopK returns the k largest values along dim (sorted, descending) and their indices.
func (t *Tensor) TopK(k, dim int) (values, indices *Tensor) {
	v, i, err := capi.TopK(t.handle(), int64(k), int64(dim), true, true)
	fail("topk", err)
	return adopt(v), adopt(i)
}

// BottomK returns the k smallest values along dim (ascending) and their indices.
func (t *Tensor) BottomK(k, dim int) (values, indices *Tensor) {
	v, i, err := capi.TopK(t.handle(), int64(k), int64(dim), false, true)
	fail("topk", err)
	return adopt(v), adopt(i)
}

// Sort sorts along dim, returning values and the permutation.
func (t *Tensor) Sort(dim int, descending bool) (values, indices *Tensor) {
	v, i, err := capi.Sort(t.handle(), int64(dim), descending)
	fail("sort", err)
	return adopt(v), adopt(i)
}

// Multinomial draws n indices per row with probabilities proportional to t.
func (t *Tensor) Multinomial(n int, replacement bool) *Tensor {
	h, err := capi.Multinomial(t.handle(), int64(n), replacement)
	return wrap("multinomial", h, err)
}
