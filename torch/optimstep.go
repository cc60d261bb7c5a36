package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

// AdamWStep applies torch.optim.AdamW's update to the params that have
// gradients, with first and second moments m and v at the same indices, as one
// shim call: float32 CPU tensors in one pass each (every element's
// operations in PyTorch's order, each rounded to float32), the others with
// libtorch's multi-tensor (_foreach) ops. step counts from 1.
func AdamWStep(params, m, v []*Tensor, step int64, lr, beta1, beta2, eps, weightDecay float64) {
	fail("adamw", capi.AdamWStep(handlesOf(params), handlesOf(m), handlesOf(v), step, lr, beta1, beta2, eps, weightDecay))
}

// SGDStep applies torch.optim.SGD's update (momentum buffers buf may be nil
// when momentum is 0). step counts from 1.
func SGDStep(params, buf []*Tensor, step int64, lr, momentum, dampening, weightDecay float64, nesterov bool) {
	var b []capi.Tensor
	if buf != nil {
		b = handlesOf(buf)
	}
	fail("sgd", capi.SGDStep(handlesOf(params), b, step, lr, momentum, dampening, weightDecay, nesterov))
}

// ClipGradNorm scales the gradients of params to a global 2-norm of at most
// maxNorm (torch.nn.utils.clip_grad_norm_) and returns the norm before
// clipping; maxNorm <= 0 only measures.
func ClipGradNorm(params []*Tensor, maxNorm float64) float64 {
	n, err := capi.ClipGradNorm(handlesOf(params), maxNorm)
	fail("clip_grad_norm", err)
	return n
}
