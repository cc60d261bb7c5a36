package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

func newFilled(op string, fill int32, shape []int, opts []Option) *Tensor {
	h, err := capi.New(fill, int64s(shape), options(opts))
	return wrap(op, h, err)
}

// Empty is an uninitialised tensor (float32 on the CPU unless opts say otherwise).
func Empty(shape []int, opts ...Option) *Tensor {
	return newFilled("empty", capi.FillEmpty, shape, opts)
}

// Zeros is a tensor of zeros.
func Zeros(shape []int, opts ...Option) *Tensor {
	return newFilled("zeros", capi.FillZeros, shape, opts)
}

// Ones is a tensor of ones.
func Ones(shape []int, opts ...Option) *Tensor { return newFilled("ones", capi.FillOnes, shape, opts) }

// Rand draws uniformly from [0, 1).
func Rand(shape []int, opts ...Option) *Tensor { return newFilled("rand", capi.FillRand, shape, opts) }

// Randn draws from the standard normal distribution.
func Randn(shape []int, opts ...Option) *Tensor {
	return newFilled("randn", capi.FillRandn, shape, opts)
}

// Full is a tensor filled with value.
func Full(shape []int, value float64, opts ...Option) *Tensor {
	h, err := capi.Full(int64s(shape), value, options(opts))
	return wrap("full", h, err)
}

// RandInt draws integers uniformly from [low, high) (int64 unless opts say otherwise).
func RandInt(low, high int, shape []int, opts ...Option) *Tensor {
	o := options(append([]Option{Int64}, opts...))
	h, err := capi.RandInt(int64(low), int64(high), int64s(shape), o)
	return wrap("randint", h, err)
}

// Arange is the 1-d tensor start, start+step, ... below end (int64 unless opts
// say otherwise).
func Arange(start, end, step float64, opts ...Option) *Tensor {
	o := options(append([]Option{Int64}, opts...))
	h, err := capi.Arange(start, end, step, o)
	return wrap("arange", h, err)
}

// Eye is the n×m identity matrix.
func Eye(n, m int, opts ...Option) *Tensor {
	h, err := capi.Eye(int64(n), int64(m), options(opts))
	return wrap("eye", h, err)
}

// ZerosLike is zeros with t's shape, dtype and device.
func ZerosLike(t *Tensor) *Tensor { return Zeros(t.Shape(), t.DType(), t.Device()) }

// OnesLike is ones with t's shape, dtype and device.
func OnesLike(t *Tensor) *Tensor { return Ones(t.Shape(), t.DType(), t.Device()) }

// RandnLike is standard normal noise with t's shape, dtype and device.
func RandnLike(t *Tensor) *Tensor { return Randn(t.Shape(), t.DType(), t.Device()) }

// ---- conversion ----

// To converts t to a dtype and/or device (returns a new handle even when
// nothing changes).
func (t *Tensor) To(opts ...Option) *Tensor {
	o := capi.Options{DType: int32(t.DType())}
	d := t.Device()
	o.DeviceType, o.DeviceIndex = int32(d.Type), int32(d.Index)
	for _, op := range opts {
		op.apply(&o)
	}
	h, err := capi.To(t.handle(), o, false, false)
	return wrap("to", h, err)
}

// Contiguous returns a contiguous tensor with t's values.
func (t *Tensor) Contiguous() *Tensor {
	h, err := capi.Contiguous(t.handle())
	return wrap("contiguous", h, err)
}

// Clone copies t (the copy is part of the autograd graph).
func (t *Tensor) Clone() *Tensor {
	h, err := capi.Clone(t.handle())
	return wrap("clone", h, err)
}

// Detach returns t's values outside the autograd graph (sharing storage).
func (t *Tensor) Detach() *Tensor {
	h, err := capi.Detach(t.handle())
	return wrap("detach", h, err)
}
