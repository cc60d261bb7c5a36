package capi

/*
#include "hlshim.h"
*/
import "C"

// CodebookQuantize is the fused codebook quantisation (hl_codebook_quantize):
// for a [N, G, d] and codes [G, C, d] it returns the straight-through output
// [N, G, d], the ids [N, G, k] and the reconstruction loss.
func CodebookQuantize(a, codes Tensor, k, chunk int64) (out, ids, mse Tensor, err error) {
	err = check(C.hl_codebook_quantize(a, codes, C.int64_t(k), C.int64_t(chunk), &out, &ids, &mse))
	return out, ids, mse, err
}
