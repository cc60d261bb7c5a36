package torch

import (
	"runtime"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// SetRequiresGrad makes t (a leaf) record gradients, or stop recording; it
// returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	fail("requires_grad_", capi.SetRequiresGrad(t.handle(), on))
	return t
}

// Backward computes the gradients of the scalar t with respect to the leaves
// that require them, accumulating into their Grad.
func (t *Tensor) Backward() { fail("backward", capi.Backward(t.handle(), nil, false, false)) }

// BackwardWith runs backward from a non-scalar t with the given output
// gradient (nil for a scalar), optionally keeping the graph for another pass
// (retainGraph) or building a graph of the backward pass (createGraph).
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph, createGraph bool) {
	fail("backward", capi.Backward(t.handle(), opt(grad), retainGraph, createGraph))
}

// Grad returns t's accumulated gradient as a new handle in the current scope
// (sharing storage with the gradient), or nil if there is none.
func (t *Tensor) Grad() *Tensor {
	h, err := capi.Grad(t.handle())
	fail("grad", err)
	if h == nil {
		return nil
	}
	return adopt(h)
}

// SetGrad replaces t's gradient; nil clears it.
func (t *Tensor) SetGrad(g *Tensor) { fail("set_grad", capi.SetGrad(t.handle(), opt(g))) }

// SetData makes t use src's values, dtype and device while staying the same
// tensor (autograd leaf, requires_grad, and every *Tensor pointing at it), as
// PyTorch's param.data = src. Used to move parameters between devices.
func (t *Tensor) SetData(src *Tensor) { fail("set_data", capi.SetData(t.handle(), src.handle())) }

// ZeroGrad zeroes the gradients of ts in one call; with setToNone it drops them
// instead (the next backward allocates fresh ones).
func ZeroGrad(ts []*Tensor, setToNone bool) {
	fail("zero_grad", capi.ZeroGrads(handlesOf(ts), setToNone))
}

// NoGrad runs f with gradient recording off on this OS thread, restoring the
// previous mode afterwards (also when f panics). The goroutine is locked to
// its thread for the duration, since libtorch keeps grad mode per thread.
func NoGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := capi.SetGradEnabled(false)
	defer capi.SetGradEnabled(prev)
	f()
}

// GradEnabled reports whether this OS thread records gradients.
func GradEnabled() bool { return capi.GradEnabled() }
