package capi

/*
#include "hlshim.h"
*/
import "C"

// AdamWStep applies torch.optim.AdamW to the parameters that have gradients.
func AdamWStep(params, expAvg, expAvgSq []Tensor, step int64, lr, beta1, beta2, eps, weightDecay float64) error {
	return check(C.hl_adamw_step(handles(params), handles(expAvg), handles(expAvgSq), C.int64_t(len(params)),
		C.int64_t(step), C.double(lr), C.double(beta1), C.double(beta2), C.double(eps), C.double(weightDecay)))
}

// SGDStep applies torch.optim.SGD (buf may be nil without momentum).
func SGDStep(params, buf []Tensor, step int64, lr, momentum, dampening, weightDecay float64, nesterov bool) error {
	return check(C.hl_sgd_step(handles(params), handles(buf), C.int64_t(len(params)), C.int64_t(step),
		C.double(lr), C.double(momentum), C.double(dampening), C.double(weightDecay), b2i(nesterov)))
}

// ClipGradNorm scales gradients to a global 2-norm of at most maxNorm (maxNorm
// <= 0 only measures) and returns the norm before clipping.
func ClipGradNorm(params []Tensor, maxNorm float64) (float64, error) {
	var total C.double
	err := check(C.hl_clip_grad_norm(handles(params), C.int64_t(len(params)), C.double(maxNorm), &total))
	return float64(total), err
}
