package capi

/*
#include "hlshim.h"
*/
import "C"

import "unsafe"

// ---- handles and metadata ----

// Free releases one handle (nil is a no-op).
func Free(t Tensor) { C.hl_tensor_free(t) }

// FreeMany releases many handles in one call.
func FreeMany(ts []Tensor) {
	if len(ts) > 0 {
		C.hl_tensor_free_many(handles(ts), C.int64_t(len(ts)))
	}
}

// Share returns a second handle to the same tensor.
func Share(t Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_tensor_share(t, &out))
	return out, err
}

// Dim reports the rank.
func Dim(t Tensor) int { return int(C.hl_tensor_dim(t)) }

// Sizes returns the shape.
func Sizes(t Tensor) []int64 {
	var buf [8]C.int64_t
	n := int(C.hl_tensor_sizes(t, &buf[0], C.int32_t(len(buf))))
	out := make([]int64, n)
	if n > len(buf) {
		C.hl_tensor_sizes(t, (*C.int64_t)(unsafe.Pointer(&out[0])), C.int32_t(n))
		return out
	}
	for i := range out {
		out[i] = int64(buf[i])
	}
	return out
}

// Strides returns the strides in elements.
func Strides(t Tensor) []int64 {
	n := int(C.hl_tensor_strides(t, nil, 0))
	out := make([]int64, n)
	if n > 0 {
		C.hl_tensor_strides(t, (*C.int64_t)(unsafe.Pointer(&out[0])), C.int32_t(n))
	}
	return out
}

// Numel reports the element count.
func Numel(t Tensor) int64 { return int64(C.hl_tensor_numel(t)) }

// DType reports the hl_dtype code (-1 for types the ABI does not name).
func DType(t Tensor) int32 { return int32(C.hl_tensor_dtype(t)) }

// Device reports the device type and index.
func Device(t Tensor) (int32, int32) {
	var typ, idx C.int32_t
	C.hl_tensor_device(t, &typ, &idx)
	return int32(typ), int32(idx)
}

// RequiresGrad reports whether autograd records operations on t.
func RequiresGrad(t Tensor) bool { return C.hl_tensor_requires_grad(t) != 0 }

// IsLeaf reports whether t is an autograd leaf.
func IsLeaf(t Tensor) bool { return C.hl_tensor_is_leaf(t) != 0 }

// IsContiguous reports whether t is contiguous in memory.
func IsContiguous(t Tensor) bool { return C.hl_tensor_is_contiguous(t) != 0 }

// DataPtr is the raw data pointer of a CPU contiguous tensor, or nil.
func DataPtr(t Tensor) unsafe.Pointer { return C.hl_tensor_data_ptr(t) }

// ---- creation ----

// Fill kinds for New.
const (
	FillEmpty = int32(C.HL_FILL_EMPTY)
	FillZeros = int32(C.HL_FILL_ZEROS)
	FillOnes  = int32(C.HL_FILL_ONES)
	FillRand  = int32(C.HL_FILL_RAND)
	FillRandn = int32(C.HL_FILL_RANDN)
)

// New creates a tensor of the given shape filled as fill says.
func New(fill int32, shape []int64, o Options) (Tensor, error) {
	var out Tensor
	err := check(C.hl_new(C.int32_t(fill), i64s(shape), C.int32_t(len(shape)), o.c(), &out))
	return out, err
}

// Full creates a tensor filled with value.
func Full(shape []int64, value float64, o Options) (Tensor, error) {
	var out Tensor
	err := check(C.hl_full(i64s(shape), C.int32_t(len(shape)), C.double(value), o.c(), &out))
	return out, err
}

// RandInt draws integers uniformly from [low, high).
func RandInt(low, high int64, shape []int64, o Options) (Tensor, error) {
	var out Tensor
	err := check(C.hl_randint(C.int64_t(low), C.int64_t(high), i64s(shape), C.int32_t(len(shape)), o.c(), &out))
	return out, err
}

// Arange is [start, end) with step.
func Arange(start, end, step float64, o Options) (Tensor, error) {
	var out Tensor
	err := check(C.hl_arange(C.double(start), C.double(end), C.double(step), o.c(), &out))
	return out, err
}

// Eye is the n×m identity.
func Eye(n, m int64, o Options) (Tensor, error) {
	var out Tensor
	err := check(C.hl_eye(C.int64_t(n), C.int64_t(m), o.c(), &out))
	return out, err
}

// FromData copies nbytes at data (host memory in o.DType layout) into a new tensor.
func FromData(data unsafe.Pointer, nbytes int64, shape []int64, o Options) (Tensor, error) {
	var out Tensor
	err := check(C.hl_from_data(data, C.int64_t(nbytes), i64s(shape), C.int32_t(len(shape)), o.c(), &out))
	return out, err
}

// ---- conversion ----

// To converts to o's dtype and device.
func To(t Tensor, o Options, nonBlocking, copy bool) (Tensor, error) {
	var out Tensor
	err := check(C.hl_to(t, o.c(), b2i(nonBlocking), b2i(copy), &out))
	return out, err
}

// Contiguous returns t, or a contiguous copy.
func Contiguous(t Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_contiguous(t, &out))
	return out, err
}

// Clone copies t (recorded by autograd).
func Clone(t Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_clone(t, &out))
	return out, err
}

// Detach returns a view of t outside the autograd graph.
func Detach(t Tensor) (Tensor, error) {
	var out Tensor
	err := check(C.hl_detach(t, &out))
	return out, err
}

// CopyOut copies t's elements into nbytes of host memory at buf.
func CopyOut(t Tensor, buf unsafe.Pointer, nbytes int64) error {
	return check(C.hl_copy_out(t, buf, C.int64_t(nbytes)))
}

// ItemFloat reads a one-element tensor as float64.
func ItemFloat(t Tensor) (float64, error) {
	var v C.double
	err := check(C.hl_item_double(t, &v))
	return float64(v), err
}

// ItemInt reads a one-element tensor as int64.
func ItemInt(t Tensor) (int64, error) {
	var v C.int64_t
	err := check(C.hl_item_int64(t, &v))
	return int64(v), err
}

// CopyInto copies src into dst in place, outside autograd.
func CopyInto(dst, src Tensor) error { return check(C.hl_copy_(dst, src)) }

// FillInPlace sets every element of t to value, outside autograd.
func FillInPlace(t Tensor, value float64) error { return check(C.hl_fill_(t, C.double(value))) }

// NormalInPlace fills t from N(mean, std²), outside autograd.
func NormalInPlace(t Tensor, mean, std float64) error {
	return check(C.hl_normal_(t, C.double(mean), C.double(std)))
}

// UniformInPlace fills t from U[lo, hi), outside autograd.
func UniformInPlace(t Tensor, lo, hi float64) error {
	return check(C.hl_uniform_(t, C.double(lo), C.double(hi)))
}
