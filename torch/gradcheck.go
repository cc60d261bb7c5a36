package torch

import (
	"fmt"
	"math"
)

// GradCheckOptions set the finite-difference step and the tolerances.
type GradCheckOptions struct {
	Eps  float64 // central-difference step (default 1e-6)
	Atol float64 // absolute tolerance (default 1e-5)
	Rtol float64 // relative tolerance (default 1e-3)
}

// GradCheck compares the gradients autograd computes for f at inputs with
// central finite differences, like torch.autograd.gradcheck. Inputs should be
// float64 leaves; integer arguments (indices, targets) belong in f's closure.
// A non-scalar output is reduced with a fixed random projection first. It
// returns an error naming the first element that disagrees.
func GradCheck(f func(xs ...*Tensor) *Tensor, inputs []*Tensor, o GradCheckOptions) error {
	if o.Eps == 0 {
		o.Eps = 1e-6
	}
	if o.Atol == 0 {
		o.Atol = 1e-5
	}
	if o.Rtol == 0 {
		o.Rtol = 1e-3
	}
	s := NewScope()
	defer s.Close()

	var proj *Tensor // fixed random projection for non-scalar outputs
	scalar := func() *Tensor {
		out := f(inputs...)
		if out.Numel() == 1 {
			return out.Sum()
		}
		if proj == nil {
			proj = Randn(out.Shape(), out.DType())
		}
		return out.Mul(proj).Sum()
	}

	for _, x := range inputs {
		if x.DType() != Float64 {
			return fmt.Errorf("gradcheck: inputs must be float64, got %v", x.DType())
		}
		x.SetRequiresGrad(true)
		x.SetGrad(nil)
	}
	scalar().Backward()
	analytic := make([][]float64, len(inputs))
	for i, x := range inputs {
		if g := x.Grad(); g != nil {
			analytic[i] = g.Float64s()
		} else {
			analytic[i] = make([]float64, x.Numel())
		}
	}

	var err error
	NoGrad(func() {
		for i, x := range inputs {
			vals := x.Float64s()
			shape := x.Shape()
			for j := range vals {
				eval := func(v float64) float64 {
					WithScope(func() {
						orig := vals[j]
						vals[j] = v
						x.CopyFrom(FromSlice(vals, shape))
						vals[j] = orig
					})
					var y float64
					WithScope(func() { y = scalar().Item() })
					return y
				}
				orig := vals[j]
				numeric := (eval(orig+o.Eps) - eval(orig-o.Eps)) / (2 * o.Eps)
				WithScope(func() { x.CopyFrom(FromSlice(vals, shape)) })
				a := analytic[i][j]
				if math.Abs(a-numeric) > o.Atol+o.Rtol*math.Abs(numeric) {
					err = fmt.Errorf("gradcheck: input %d element %d: autograd %.8g, finite difference %.8g", i, j, a, numeric)
					return
				}
			}
		}
	})
	return err
}
