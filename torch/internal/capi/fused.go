package capi

/*
#include "hlshim.h"
*/
import "C"

import "unsafe"

// CodebookQuantize is the fused codebook quantisation (hl_codebook_quantize):
// for a [N, G, d] and codes [G, C, d] it returns the straight-through output
// [N, G, d], the ids [N, G, k] and the reconstruction loss.
func CodebookQuantize(a, codes Tensor, k, chunk int64) (out, ids, mse Tensor, err error) {
	err = check(C.hl_codebook_quantize(a, codes, C.int64_t(k), C.int64_t(chunk), &out, &ids, &mse))
	return out, ids, mse, err
}

// GroupedMM is the grouped matrix product (hl_grouped_mm); src, dest and
// base may be nil.
func GroupedMM(x, w Tensor, loads []int64, src, dest, base Tensor, outRows int64, transW bool) (out Tensor, err error) {
	var lp *C.int64_t
	if len(loads) > 0 {
		lp = (*C.int64_t)(unsafe.Pointer(&loads[0]))
	}
	t := C.int32_t(0)
	if transW {
		t = 1
	}
	err = check(C.hl_grouped_mm(x, w, lp, C.int64_t(len(loads)), src, dest, base, C.int64_t(outRows), t, &out))
	return out, err
}

// Monarch is models/mohd's group fusion (hl_monarch).
func Monarch(y, bd1, bd2 Tensor) (out Tensor, err error) {
	err = check(C.hl_monarch(y, bd1, bd2, &out))
	return out, err
}

// SwiGLU is the SwiGLU gate silu(a) ⊙ b of x = [a | b] (hl_swiglu).
func SwiGLU(x Tensor) (out Tensor, err error) {
	err = check(C.hl_swiglu(x, &out))
	return out, err
}
