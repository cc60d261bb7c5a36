package torch

import (
	"math"
	"testing"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
	"github.com/stretchr/testify/require"
)

func TestBytesRoundTrip(t *testing.T) {
	s := NewScope()
	defer s.Close()
	for _, dt := range []DType{Float32, Float64, BFloat16, Float16, Int64, Int32, Uint8, Bool} {
		x := f64([]float64{1, 0, 3, 1}, 2, 2).To(dt)
		y := FromBytes(x.Bytes(), dt, []int{2, 2})
		require.Equal(t, dt, y.DType())
		require.Equal(t, x.Float64s(), y.Float64s(), dt.String())
		require.Len(t, x.Bytes(), 4*dt.Size())
	}
	require.ErrorIs(t, Try(func() { FromBytes(make([]byte, 7), Float32, []int{2}) }), ErrShape)
}

// The shim's optimizer kernels, against the update rules written out by hand.
func TestShimOptimizerSteps(t *testing.T) {
	s := NewScope()
	defer s.Close()
	p := f64([]float64{1, -2}).SetRequiresGrad(true)
	m, v := Zeros([]int{2}, Float64), Zeros([]int{2}, Float64)
	p.SetGrad(f64([]float64{0.5, 0.25}))
	lr, b1, b2, eps, wd := 0.1, 0.9, 0.999, 1e-8, 0.01
	require.NoError(t, capi.AdamWStep([]capi.Tensor{p.handle()}, []capi.Tensor{m.handle()}, []capi.Tensor{v.handle()}, 1, lr, b1, b2, eps, wd))
	want := func(p0, g float64) float64 {
		p0 *= 1 - lr*wd
		mm, vv := (1-b1)*g, (1-b2)*g*g
		return p0 - lr/(1-b1)*mm/(math.Sqrt(vv)/math.Sqrt(1-b2)+eps)
	}
	require.InDeltaSlice(t, []float64{want(1, 0.5), want(-2, 0.25)}, p.Float64s(), 1e-12)

	// SGD with momentum 0.9 and weight decay 0.1, two steps.
	q := f64([]float64{1}).SetRequiresGrad(true)
	buf := Zeros([]int{1}, Float64)
	q.SetGrad(f64([]float64{2}))
	require.NoError(t, capi.SGDStep([]capi.Tensor{q.handle()}, []capi.Tensor{buf.handle()}, 1, 0.5, 0.9, 0, 0.1, false))
	// d = 2 + 0.1·1 = 2.1; buf = 2.1; q = 1 - 0.5·2.1 = -0.05
	require.InDelta(t, -0.05, q.Item(), 1e-12)
	require.NoError(t, capi.SGDStep([]capi.Tensor{q.handle()}, []capi.Tensor{buf.handle()}, 2, 0.5, 0.9, 0, 0.1, false))
	// d = 2 + 0.1·(-0.05) = 1.995; buf = 0.9·2.1 + 1.995 = 3.885; q = -0.05 - 0.5·3.885
	require.InDelta(t, -0.05-0.5*3.885, q.Item(), 1e-12)

	// Clipping: grads (3, 4) have norm 5; clipped to 1 they become (0.6, 0.8).
	r := f64([]float64{0, 0}).SetRequiresGrad(true)
	r.SetGrad(f64([]float64{3, 4}))
	norm, err := capi.ClipGradNorm([]capi.Tensor{r.handle()}, 1)
	require.NoError(t, err)
	require.InDelta(t, 5.0, norm, 1e-12)
	require.InDeltaSlice(t, []float64{0.6, 0.8}, r.Grad().Float64s(), 1e-6)
	// Parameters without gradients are skipped.
	u := f64([]float64{7}).SetRequiresGrad(true)
	require.NoError(t, capi.AdamWStep([]capi.Tensor{u.handle()}, []capi.Tensor{m.handle()}, []capi.Tensor{v.handle()}, 1, lr, b1, b2, eps, wd))
	require.Equal(t, 7.0, u.Item())
}
