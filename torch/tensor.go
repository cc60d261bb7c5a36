package torch

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// Tensor is a handle to a libtorch tensor. See the package doc for ownership.
type Tensor struct {
	h     capi.Tensor
	scope *Scope
	slot  int
}

// adopt wraps a new handle, registering it in the current scope.
func adopt(h capi.Tensor) *Tensor {
	t := &Tensor{h: h}
	if current != nil {
		current.add(t)
	}
	return t
}

// wrap adopts h, or panics with the op's error.
func wrap(op string, h capi.Tensor, err error) *Tensor {
	fail(op, err)
	return adopt(h)
}

// handle returns t's live handle; a nil or freed tensor panics with an *Error.
func (t *Tensor) handle() capi.Tensor {
	if t == nil {
		panic(&Error{Op: "tensor", Kind: KindValue, Msg: "nil tensor"})
	}
	if t.h == nil {
		panic(&Error{Op: "tensor", Kind: KindValue, Msg: "use of a freed tensor (its scope was closed or Free was called)"})
	}
	return t.h
}

// opt is the handle of an optional tensor argument.
func opt(t *Tensor) capi.Tensor {
	if t == nil {
		return nil
	}
	return t.handle()
}

// Free releases t now. Freeing twice, or a nil tensor, is a no-op.
func (t *Tensor) Free() {
	if t == nil || t.h == nil {
		return
	}
	if t.scope != nil {
		t.scope.remove(t)
	}
	capi.Free(t.h)
	t.h = nil
}

// Retain takes t out of its scope so that it outlives it; the caller owns t
// and frees it with Free. It returns t.
func (t *Tensor) Retain() *Tensor {
	if t.scope != nil {
		t.scope.remove(t)
	}
	return t
}

// Share returns a second owned handle to the same tensor (same storage and
// autograd identity), registered in the current scope.
func (t *Tensor) Share() *Tensor {
	h, err := capi.Share(t.handle())
	return wrap("share", h, err)
}

// Dim is the number of dimensions.
func (t *Tensor) Dim() int { return capi.Dim(t.handle()) }

// Shape returns the sizes.
func (t *Tensor) Shape() []int {
	s := capi.Sizes(t.handle())
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}

// Size returns the size of dim (negative dims count from the end).
func (t *Tensor) Size(dim int) int {
	s := capi.Sizes(t.handle())
	if dim < 0 {
		dim += len(s)
	}
	if dim < 0 || dim >= len(s) {
		panic(&Error{Op: "size", Kind: KindIndex, Msg: fmt.Sprintf("dim %d out of range for a %d-d tensor", dim, len(s))})
	}
	return int(s[dim])
}

// Strides returns the strides in elements.
func (t *Tensor) Strides() []int {
	s := capi.Strides(t.handle())
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}

// Numel is the number of elements.
func (t *Tensor) Numel() int { return int(capi.Numel(t.handle())) }

// DType is the element type.
func (t *Tensor) DType() DType { return DType(capi.DType(t.handle())) }

// Device is where t lives.
func (t *Tensor) Device() Device {
	typ, idx := capi.Device(t.handle())
	return Device{Type: DeviceType(typ), Index: int(idx)}
}

// RequiresGrad reports whether autograd records operations on t.
func (t *Tensor) RequiresGrad() bool { return capi.RequiresGrad(t.handle()) }

// IsLeaf reports whether t is an autograd leaf.
func (t *Tensor) IsLeaf() bool { return capi.IsLeaf(t.handle()) }

// IsContiguous reports whether t's elements are contiguous in row-major order.
func (t *Tensor) IsContiguous() bool { return capi.IsContiguous(t.handle()) }

// String summarises t (shape, dtype, device), not its values.
func (t *Tensor) String() string {
	if t == nil || t.h == nil {
		return "Tensor(freed)"
	}
	return fmt.Sprintf("Tensor(%v, %v, %v)", t.Shape(), t.DType(), t.Device())
}

// Element is a Go type that maps to a tensor dtype.
type Element interface {
	float32 | float64 | int64 | int32 | uint8 | bool | int8 | int16
}

func dtypeOf[E Element]() DType {
	var z E
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int64:
		return Int64
	case int32:
		return Int32
	case uint8:
		return Uint8
	case bool:
		return Bool
	case int8:
		return Int8
	default:
		return Int16
	}
}

func int64s(shape []int) []int64 {
	out := make([]int64, len(shape))
	for i, v := range shape {
		out[i] = int64(v)
	}
	return out
}

// FromSlice copies data into a new tensor of the given shape (a 1-d tensor of
// len(data) when shape is empty) and the dtype of E, on the CPU unless opts
// name a device.
func FromSlice[E Element](data []E, shape []int, opts ...Option) *Tensor {
	if shape == nil {
		shape = []int{len(data)}
	}
	o := options(opts)
	o.DType = int32(dtypeOf[E]())
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	var z E
	h, err := capi.FromData(p, int64(len(data))*int64(unsafe.Sizeof(z)), int64s(shape), o)
	return wrap("from_slice", h, err)
}

// Scalar is a 0-d tensor holding v.
func Scalar[E Element](v E, opts ...Option) *Tensor {
	return FromSlice([]E{v}, []int{}, opts...)
}

// Values copies t's elements out in row-major order, converting to E's dtype
// (and to the CPU) when t's differ.
func Values[E Element](t *Tensor) []E {
	src := t
	if want := dtypeOf[E](); t.DType() != want || t.Device() != CPU {
		h, err := capi.To(t.handle(), capi.Options{DType: int32(want)}, false, false)
		fail("values", err)
		src = &Tensor{h: h}
		defer src.Free()
	}
	n := src.Numel()
	out := make([]E, n)
	if n == 0 {
		return out
	}
	var z E
	fail("values", capi.CopyOut(src.handle(), unsafe.Pointer(&out[0]), int64(n)*int64(unsafe.Sizeof(z))))
	return out
}

// Float32s copies t's elements out as float32.
func (t *Tensor) Float32s() []float32 { return Values[float32](t) }

// Float64s copies t's elements out as float64.
func (t *Tensor) Float64s() []float64 { return Values[float64](t) }

// Int64s copies t's elements out as int64.
func (t *Tensor) Int64s() []int64 { return Values[int64](t) }

// Bools copies t's elements out as bool.
func (t *Tensor) Bools() []bool { return Values[bool](t) }

// Item reads a one-element tensor as a float64.
func (t *Tensor) Item() float64 {
	v, err := capi.ItemFloat(t.handle())
	fail("item", err)
	return v
}

// ItemInt reads a one-element tensor as an int64.
func (t *Tensor) ItemInt() int64 {
	v, err := capi.ItemInt(t.handle())
	fail("item", err)
	return v
}

// CopyFrom copies src's values into t in place (broadcasting, converting
// dtype and device), outside autograd. Used to load weights.
func (t *Tensor) CopyFrom(src *Tensor) { fail("copy_", capi.CopyInto(t.handle(), src.handle())) }

// Fill sets every element of t to v in place, outside autograd, and returns t.
func (t *Tensor) Fill(v float64) *Tensor {
	fail("fill_", capi.FillInPlace(t.handle(), v))
	return t
}

// Normal fills t in place from N(mean, std²), outside autograd, and returns t.
func (t *Tensor) Normal(mean, std float64) *Tensor {
	fail("normal_", capi.NormalInPlace(t.handle(), mean, std))
	return t
}

// Uniform fills t in place from U[lo, hi), outside autograd, and returns t.
func (t *Tensor) Uniform(lo, hi float64) *Tensor {
	fail("uniform_", capi.UniformInPlace(t.handle(), lo, hi))
	return t
}

// Format renders t's values like PyTorch's repr, for debugging small tensors.
func (t *Tensor) Format() string {
	vals := Values[float64](t)
	shape := t.Shape()
	var b strings.Builder
	var rec func(dim, off int) int
	rec = func(dim, off int) int {
		if dim == len(shape) {
			fmt.Fprintf(&b, "%.4g", vals[off])
			return off + 1
		}
		b.WriteByte('[')
		for i := 0; i < shape[dim]; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			off = rec(dim+1, off)
		}
		b.WriteByte(']')
		return off
	}
	rec(0, 0)
	return b.String()
}

// Bytes copies t's elements out as raw little-endian bytes of its dtype, in
// row-major order (converting to CPU and contiguous as needed).
func (t *Tensor) Bytes() []byte {
	n := t.Numel() * t.DType().Size()
	out := make([]byte, n)
	if n == 0 {
		return out
	}
	fail("bytes", capi.CopyOut(t.handle(), unsafe.Pointer(&out[0]), int64(n)))
	return out
}

// FromBytes creates a tensor of the given dtype and shape from raw
// little-endian bytes in row-major order (on the CPU unless opts name a device).
func FromBytes(data []byte, dtype DType, shape []int, opts ...Option) *Tensor {
	o := options(opts)
	o.DType = int32(dtype)
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	h, err := capi.FromData(p, int64(len(data)), int64s(shape), o)
	return wrap("from_bytes", h, err)
}

// HandleOf exposes t's shim handle to the packages under torch/ that call the
// shim directly (torch/dist). It panics on a freed tensor.
func HandleOf(t *Tensor) capi.Tensor { return t.handle() }
