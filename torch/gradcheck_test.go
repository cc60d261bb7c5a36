package torch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGradients checks autograd against central finite differences.
func TestGradients(t *testing.T) {
	randn := func(shape ...int) *Tensor { return Randn(shape, Float64) }
	idx := func(vals ...int64) *Tensor { return i64(vals) }
	cases := []struct {
		name   string
		f      func(xs ...*Tensor) *Tensor
		inputs func() []*Tensor
	}{
		{"matmul", func(x ...*Tensor) *Tensor { return x[0].Matmul(x[1]) },
			func() []*Tensor { return []*Tensor{randn(3, 4), randn(4, 2)} }},
		{"matmul batched", func(x ...*Tensor) *Tensor { return x[0].Matmul(x[1]) },
			func() []*Tensor { return []*Tensor{randn(2, 3, 4), randn(4, 2)} }},
		{"bmm", func(x ...*Tensor) *Tensor { return x[0].Bmm(x[1]) },
			func() []*Tensor { return []*Tensor{randn(2, 3, 4), randn(2, 4, 2)} }},
		{"linear", func(x ...*Tensor) *Tensor { return Linear(x[0], x[1], x[2]) },
			func() []*Tensor { return []*Tensor{randn(2, 3, 4), randn(5, 4), randn(5)} }},
		{"einsum", func(x ...*Tensor) *Tensor { return Einsum("bij,bjk->bik", x[0], x[1]) },
			func() []*Tensor { return []*Tensor{randn(2, 2, 3), randn(2, 3, 2)} }},
		{"softmax", func(x ...*Tensor) *Tensor { return x[0].Softmax(-1) },
			func() []*Tensor { return []*Tensor{randn(3, 5)} }},
		{"log_softmax", func(x ...*Tensor) *Tensor { return x[0].LogSoftmax(1) },
			func() []*Tensor { return []*Tensor{randn(3, 5)} }},
		{"layer_norm", func(x ...*Tensor) *Tensor { return LayerNorm(x[0], 1, x[1], x[2], 1e-5) },
			func() []*Tensor { return []*Tensor{randn(3, 6), randn(6), randn(6)} }},
		{"layer_norm, a gain and bias per group", func(x ...*Tensor) *Tensor { return LayerNorm(x[0], 1, x[1], x[2], 1e-5) },
			func() []*Tensor { return []*Tensor{randn(2, 3, 4), randn(3, 4), randn(3, 4)} }},
		{"gelu", func(x ...*Tensor) *Tensor { return x[0].Gelu() },
			func() []*Tensor { return []*Tensor{randn(10)} }},
		{"gelu tanh", func(x ...*Tensor) *Tensor { return x[0].GeluTanh() },
			func() []*Tensor { return []*Tensor{randn(10)} }},
		{"silu sigmoid tanh", func(x ...*Tensor) *Tensor { return x[0].Silu().Add(x[0].Sigmoid()).Mul(x[0].Tanh()) },
			func() []*Tensor { return []*Tensor{randn(10)} }},
		{"relu", func(x ...*Tensor) *Tensor { return x[0].Relu() },
			func() []*Tensor { return []*Tensor{randn(10)} }},
		{"softplus log_sigmoid", func(x ...*Tensor) *Tensor { return x[0].Softplus().Add(x[0].LogSigmoid()) },
			func() []*Tensor { return []*Tensor{randn(10)} }},
		{"exp log sqrt", func(x ...*Tensor) *Tensor {
			return x[0].Exp().Add(x[0].Square().AddScalar(1).Log()).Add(x[0].Abs().AddScalar(0.5).Sqrt())
		},
			func() []*Tensor { return []*Tensor{randn(8)} }},
		{"div pow rsqrt", func(x ...*Tensor) *Tensor {
			pos := x[1].Square().AddScalar(0.5)
			return x[0].Div(pos).Add(pos.PowScalar(1.5)).Add(pos.Rsqrt())
		}, func() []*Tensor { return []*Tensor{randn(6), randn(6)} }},
		{"embedding", func(x ...*Tensor) *Tensor { return Embedding(x[0], idx(3, 0, 3, 1)) },
			func() []*Tensor { return []*Tensor{randn(5, 3)} }},
		{"cross_entropy", func(x ...*Tensor) *Tensor { return CrossEntropy(x[0], idx(1, 0, 4)) },
			func() []*Tensor { return []*Tensor{randn(3, 5)} }},
		{"cross_entropy smoothing ignore", func(x ...*Tensor) *Tensor {
			o := DefaultCrossEntropy
			o.LabelSmoothing, o.IgnoreIndex = 0.2, 1
			return CrossEntropyWith(x[0], idx(1, 0, 4), o)
		}, func() []*Tensor { return []*Tensor{randn(3, 5)} }},
		{"mse", func(x ...*Tensor) *Tensor { return MSELoss(x[0], x[1], ReduceMean) },
			func() []*Tensor { return []*Tensor{randn(4), randn(4)} }},
		{"kl_div", func(x ...*Tensor) *Tensor { return KLDiv(x[0].LogSoftmax(-1), x[1].Softmax(-1), ReduceSum, false) },
			func() []*Tensor { return []*Tensor{randn(2, 4), randn(2, 4)} }},
		{"gather", func(x ...*Tensor) *Tensor { return x[0].Gather(1, i64([]int64{0, 2, 1, 1}, 2, 2)) },
			func() []*Tensor { return []*Tensor{randn(2, 3)} }},
		{"topk gather", func(x ...*Tensor) *Tensor {
			_, ix := x[0].Detach().TopK(2, 1)
			return x[0].Gather(1, ix).Mul(x[1].Gather(1, ix))
		}, func() []*Tensor { return []*Tensor{randn(3, 6), randn(3, 6)} }},
		{"topk values", func(x ...*Tensor) *Tensor { v, _ := x[0].TopK(3, -1); return v },
			func() []*Tensor { return []*Tensor{randn(2, 6)} }},
		{"attention causal", func(x ...*Tensor) *Tensor { return Attention(x[0], x[1], x[2], nil, 0, true) },
			func() []*Tensor { return []*Tensor{randn(1, 2, 4, 3), randn(1, 2, 4, 3), randn(1, 2, 4, 3)} }},
		{"attention float mask", func(x ...*Tensor) *Tensor {
			return Attention(x[0], x[1], x[2], f64([]float64{0, -1, 0.5, 0, 2, -3}, 2, 3), 0, false)
		}, func() []*Tensor { return []*Tensor{randn(2, 2, 3), randn(2, 3, 3), randn(2, 3, 3)} }},
		{"reductions", func(x ...*Tensor) *Tensor {
			return x[0].Sum(1).Add(x[0].Mean(1)).Add(x[0].LogSumExp(1)).Add(x[0].Amax(1)).Add(x[0].Norm(2, 1)).Add(x[0].Var(1))
		}, func() []*Tensor { return []*Tensor{randn(3, 4)} }},
		{"cumsum prod", func(x ...*Tensor) *Tensor { return x[0].Cumsum(0).Add(x[0].Prod(0).Expand(4)) },
			func() []*Tensor { return []*Tensor{randn(4)} }},
		{"shape ops", func(x ...*Tensor) *Tensor {
			y := x[0].View(2, 3).T().Reshape(6).Unsqueeze(0).Expand(2, 6)
			parts := Cat([]*Tensor{y, x[1].View(1, 6)}, 0).Split(2, 1)
			return Stack([]*Tensor{parts[0], parts[2]}, 0).Permute(2, 0, 1).Narrow(0, 1, 1).Flatten(0, -1)
		}, func() []*Tensor { return []*Tensor{randn(6), randn(6)} }},
		{"index ops", func(x ...*Tensor) *Tensor {
			a := x[0].IndexSelect(0, idx(2, 0)).Add(x[0].Index(idx(1, 1)))
			b := x[0].MaskedFill(x[0].Detach().GtScalar(0), 0).Sum(0)
			c := Where(x[0].Detach().LtScalar(0), x[0], x[0].MulScalar(2)).Sum(0)
			d := Zeros([]int{4, 2}, Float64).IndexPut([]*Tensor{idx(1, 3)}, x[0].Narrow(0, 0, 2), true).Sum(0)
			e := Zeros([]int{4, 2}, Float64).ScatterAdd(0, i64([]int64{0, 1, 0, 1}, 2, 2), x[0].Narrow(0, 1, 2)).Sum(0)
			return a.Sum(0).Add(b).Add(c).Add(d).Add(e)
		}, func() []*Tensor { return []*Tensor{randn(3, 2)} }},
		// Rows of a matrix that needs a gradient take the shim's SelectRows
		// (its own backward), rows repeated included.
		{"index_select rows", func(x ...*Tensor) *Tensor { return x[0].IndexSelect(0, idx(2, 0, 2, 1, 2)).Mul(x[1]) },
			func() []*Tensor { return []*Tensor{randn(3, 4), randn(5, 4)} }},
		{"clamp maximum", func(x ...*Tensor) *Tensor { return x[0].Clamp(-0.5, 0.5).Add(x[0].Maximum(x[1])) },
			func() []*Tensor { return []*Tensor{randn(8), randn(8)} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			ManualSeed(7)
			require.NoError(t, GradCheck(c.f, c.inputs(), GradCheckOptions{}))
		})
	}
}

// TestGradCheckCatchesWrongGradient: a function whose autograd path misses a
// term (x.detach()·x has gradient x, not 2x) must fail the check.
func TestGradCheckCatchesWrongGradient(t *testing.T) {
	s := NewScope()
	defer s.Close()
	err := GradCheck(func(x ...*Tensor) *Tensor { return x[0].Detach().Mul(x[0]) },
		[]*Tensor{f64([]float64{1, 2, 3})}, GradCheckOptions{})
	require.ErrorContains(t, err, "finite difference")
}

func TestAutograd(t *testing.T) {
	s := NewScope()
	defer s.Close()
	w := f64([]float64{1, 2, 3}).SetRequiresGrad(true)
	require.True(t, w.IsLeaf())
	require.Nil(t, w.Grad(), "no gradient before backward")

	// d/dw Σ w² = 2w; a second backward accumulates.
	w.Square().Sum().Backward()
	require.Equal(t, []float64{2, 4, 6}, w.Grad().Float64s())
	w.Square().Sum().Backward()
	require.Equal(t, []float64{4, 8, 12}, w.Grad().Float64s())

	ZeroGrad([]*Tensor{w}, false)
	require.Equal(t, []float64{0, 0, 0}, w.Grad().Float64s())
	ZeroGrad([]*Tensor{w}, true)
	require.Nil(t, w.Grad())

	// retain_graph allows a second pass; without it the second pass fails.
	y := w.Mul(w).Sum()
	y.BackwardWith(nil, true, false)
	y.BackwardWith(nil, false, false)
	require.Equal(t, []float64{4, 8, 12}, w.Grad().Float64s())
	require.ErrorIs(t, Try(func() { y.Backward() }), ErrAutograd)

	// A non-scalar output takes an explicit output gradient.
	w.SetGrad(nil)
	w.MulScalar(3).BackwardWith(f64([]float64{1, 0, -1}), false, false)
	require.Equal(t, []float64{3, 0, -3}, w.Grad().Float64s())

	// create_graph gives a differentiable gradient: d²/dw² Σ w³ = 6w.
	w.SetGrad(nil)
	w.PowScalar(3).Sum().BackwardWith(nil, false, true)
	g := w.Grad()
	require.True(t, g.RequiresGrad())
	w.SetGrad(nil)
	g.Sum().Backward()
	require.Equal(t, []float64{6, 12, 18}, w.Grad().Float64s())

	// SetGrad installs a gradient.
	w.SetGrad(f64([]float64{7, 7, 7}))
	require.Equal(t, []float64{7, 7, 7}, w.Grad().Float64s())

	// Backward from a tensor that does not require grad is an autograd error.
	require.ErrorIs(t, Try(func() { f64([]float64{1}).Sum().Backward() }), ErrAutograd)
}
