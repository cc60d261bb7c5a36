package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

func handlesOf(ts []*Tensor) []capi.Tensor {
	hs := make([]capi.Tensor, len(ts))
	for i, t := range ts {
		if t != nil {
			hs[i] = t.handle()
		}
	}
	return hs
}

// View reshapes without copying; one size may be -1.
func (t *Tensor) View(shape ...int) *Tensor {
	h, err := capi.View(t.handle(), int64s(shape))
	return wrap("view", h, err)
}

// Reshape reshapes, copying only when a view is impossible.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	h, err := capi.Reshape(t.handle(), int64s(shape))
	return wrap("reshape", h, err)
}

// Expand broadcasts size-1 dims to shape without copying (-1 keeps a size).
func (t *Tensor) Expand(shape ...int) *Tensor {
	h, err := capi.Expand(t.handle(), int64s(shape))
	return wrap("expand", h, err)
}

// Permute reorders dims.
func (t *Tensor) Permute(dims ...int) *Tensor {
	h, err := capi.Permute(t.handle(), int64s(dims))
	return wrap("permute", h, err)
}

// Transpose swaps dims d0 and d1.
func (t *Tensor) Transpose(d0, d1 int) *Tensor {
	h, err := capi.Transpose(t.handle(), int64(d0), int64(d1))
	return wrap("transpose", h, err)
}

// T transposes the last two dims.
func (t *Tensor) T() *Tensor { return t.Transpose(-2, -1) }

// Squeeze drops dim if it has size 1.
func (t *Tensor) Squeeze(dim int) *Tensor {
	h, err := capi.Squeeze(t.handle(), int64(dim), false)
	return wrap("squeeze", h, err)
}

// SqueezeAll drops every size-1 dim.
func (t *Tensor) SqueezeAll() *Tensor {
	h, err := capi.Squeeze(t.handle(), 0, true)
	return wrap("squeeze", h, err)
}

// Unsqueeze inserts a size-1 dim at dim.
func (t *Tensor) Unsqueeze(dim int) *Tensor {
	h, err := capi.Unsqueeze(t.handle(), int64(dim))
	return wrap("unsqueeze", h, err)
}

// Flatten merges dims start..end (inclusive).
func (t *Tensor) Flatten(start, end int) *Tensor {
	h, err := capi.Flatten(t.handle(), int64(start), int64(end))
	return wrap("flatten", h, err)
}

// Cat concatenates tensors along dim.
func Cat(ts []*Tensor, dim int) *Tensor {
	h, err := capi.Cat(handlesOf(ts), int64(dim))
	return wrap("cat", h, err)
}

// Stack joins tensors of equal shape along a new dim.
func Stack(ts []*Tensor, dim int) *Tensor {
	h, err := capi.Stack(handlesOf(ts), int64(dim))
	return wrap("stack", h, err)
}

// SplitSizes splits t along dim into pieces of the given sizes.
func (t *Tensor) SplitSizes(sizes []int, dim int) []*Tensor {
	hs, err := capi.SplitSizes(t.handle(), int64s(sizes), int64(dim))
	fail("split", err)
	out := make([]*Tensor, len(hs))
	for i, h := range hs {
		out[i] = adopt(h)
	}
	return out
}

// Split splits t along dim into pieces of size (the last may be smaller).
func (t *Tensor) Split(size, dim int) []*Tensor {
	if size <= 0 {
		panic(&Error{Op: "split", Kind: KindValue, Msg: "split size must be positive"})
	}
	n := t.Size(dim)
	var sizes []int
	for left := n; left > 0; left -= size {
		sizes = append(sizes, min(size, left))
	}
	return t.SplitSizes(sizes, dim)
}

// Chunk splits t along dim into n pieces as torch.chunk does (each of size
// ceil(len/n), so there may be fewer than n).
func (t *Tensor) Chunk(n, dim int) []*Tensor {
	if n <= 0 {
		panic(&Error{Op: "chunk", Kind: KindValue, Msg: "chunk count must be positive"})
	}
	return t.Split(max(1, (t.Size(dim)+n-1)/n), dim)
}

// Unbind splits t along dim into its Size(dim) slices, dim removed: the
// views t.Select(dim, i), but with one backward for all of them (a
// concatenation) where separate Selects each form a zero-filled gradient
// of t's size and autograd adds them up.
func (t *Tensor) Unbind(dim int) []*Tensor {
	if dim < 0 {
		dim += t.Dim()
	}
	sizes := make([]int, t.Size(dim))
	for i := range sizes {
		sizes[i] = 1
	}
	parts := t.SplitSizes(sizes, dim)
	for i, p := range parts {
		parts[i] = p.Squeeze(dim)
	}
	return parts
}

// Narrow is a view of length entries of dim from start.
func (t *Tensor) Narrow(dim, start, length int) *Tensor {
	h, err := capi.Narrow(t.handle(), int64(dim), int64(start), int64(length))
	return wrap("narrow", h, err)
}

// Slice is the view t[start:end:step] along dim.
func (t *Tensor) Slice(dim, start, end, step int) *Tensor {
	h, err := capi.Slice(t.handle(), int64(dim), int64(start), int64(end), int64(step))
	return wrap("slice", h, err)
}

// Select is the view at index of dim, with dim removed.
func (t *Tensor) Select(dim, index int) *Tensor {
	h, err := capi.Select(t.handle(), int64(dim), int64(index))
	return wrap("select", h, err)
}

// Repeat tiles t along each dim.
func (t *Tensor) Repeat(repeats ...int) *Tensor {
	h, err := capi.Repeat(t.handle(), int64s(repeats))
	return wrap("repeat", h, err)
}

// IndexSelect picks entries of dim at the int64 positions in index.
func (t *Tensor) IndexSelect(dim int, index *Tensor) *Tensor {
	h, err := capi.IndexSelect(t.handle(), int64(dim), index.handle())
	return wrap("index_select", h, err)
}

// Gather is torch.gather: out[i][j] = t[i][index[i][j]] for dim 1.
func (t *Tensor) Gather(dim int, index *Tensor) *Tensor {
	h, err := capi.Gather(t.handle(), int64(dim), index.handle())
	return wrap("gather", h, err)
}

// Scatter returns t with src written at index along dim.
func (t *Tensor) Scatter(dim int, index, src *Tensor) *Tensor {
	h, err := capi.Scatter(t.handle(), int64(dim), index.handle(), src.handle(), false)
	return wrap("scatter", h, err)
}

// ScatterAdd returns t with src added at index along dim.
func (t *Tensor) ScatterAdd(dim int, index, src *Tensor) *Tensor {
	h, err := capi.Scatter(t.handle(), int64(dim), index.handle(), src.handle(), true)
	return wrap("scatter_add", h, err)
}

// IndexPut returns t with values written at t[indices...] (added when
// accumulate). A nil index selects a whole dim.
func (t *Tensor) IndexPut(indices []*Tensor, values *Tensor, accumulate bool) *Tensor {
	h, err := capi.IndexPut(t.handle(), handlesOf(indices), values.handle(), accumulate)
	return wrap("index_put", h, err)
}

// Index is advanced indexing t[indices...]; a nil index selects a whole dim.
func (t *Tensor) Index(indices ...*Tensor) *Tensor {
	h, err := capi.Index(t.handle(), handlesOf(indices))
	return wrap("index", h, err)
}

// MaskedFill returns t with value where mask is true.
func (t *Tensor) MaskedFill(mask *Tensor, value float64) *Tensor {
	h, err := capi.MaskedFill(t.handle(), mask.handle(), value)
	return wrap("masked_fill", h, err)
}

// Where picks a where cond is true, else b.
func Where(cond, a, b *Tensor) *Tensor {
	h, err := capi.Where(cond.handle(), a.handle(), b.handle())
	return wrap("where", h, err)
}

// Triu keeps the elements on and above the diagonal-th diagonal.
func (t *Tensor) Triu(diagonal int) *Tensor {
	h, err := capi.Triu(t.handle(), int64(diagonal))
	return wrap("triu", h, err)
}

// Tril keeps the elements on and below the diagonal-th diagonal.
func (t *Tensor) Tril(diagonal int) *Tensor {
	h, err := capi.Tril(t.handle(), int64(diagonal))
	return wrap("tril", h, err)
}

// OneHot encodes int64 class indices as a trailing dim of size classes (int64).
func (t *Tensor) OneHot(classes int) *Tensor {
	h, err := capi.OneHot(t.handle(), int64(classes))
	return wrap("one_hot", h, err)
}
