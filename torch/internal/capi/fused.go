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

// CodebookScores is the scores the fused codebook op ranks (hl_codebook_scores).
func CodebookScores(a, codes Tensor) (out Tensor, err error) {
	err = check(C.hl_codebook_scores(a, codes, &out))
	return out, err
}

// CodebookCount adds the codes ids select to counts in place
// (hl_codebook_count).
func CodebookCount(ids, counts Tensor) error {
	return check(C.hl_codebook_count(ids, counts))
}

// GroupedMM is the grouped matrix product (hl_grouped_mm); src and dest may
// be nil.
func GroupedMM(x, w Tensor, loads []int64, src, dest Tensor, outRows int64, transW bool) (out Tensor, err error) {
	lp := int64sPtr(loads)
	t := C.int32_t(0)
	if transW {
		t = 1
	}
	err = check(C.hl_grouped_mm(x, w, lp, C.int64_t(len(loads)), src, dest, C.int64_t(outRows), t, &out))
	return out, err
}

// SquareSum is Σ x² over x's last dimension (hl_square_sum).
func SquareSum(x Tensor) (out Tensor, err error) {
	err = check(C.hl_square_sum(x, &out))
	return out, err
}

// RouteTopK is a mixture router's choice (hl_route_topk); loads must hold
// one entry per group of p.
func RouteTopK(p Tensor, k int64, loads []int64) (top, order Tensor, err error) {
	err = check(C.hl_route_topk(p, C.int64_t(k), &top, &order, int64sPtr(loads)))
	return top, order, err
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

// RoutedIn is a routed sublayer's input projection (hl_routed_in); xs may
// be nil when w has no shared rows.
func RoutedIn(xs, x, w Tensor, loads []int64, order Tensor, rows int64) (out Tensor, err error) {
	err = check(C.hl_routed_in(xs, x, w, int64sPtr(loads), C.int64_t(len(loads)), order, C.int64_t(rows), &out))
	return out, err
}

// RoutedOut is a routed sublayer's output projection (hl_routed_out).
func RoutedOut(x, w Tensor, loads []int64, g int64, src Tensor) (out Tensor, err error) {
	err = check(C.hl_routed_out(x, w, int64sPtr(loads), C.int64_t(len(loads)), C.int64_t(g), src, &out))
	return out, err
}

// int64sPtr is a pointer to s's first element (nil when s is empty).
func int64sPtr(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}
