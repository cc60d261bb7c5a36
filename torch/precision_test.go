package torch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCPUAutocast: libtorch 1.13 supports bf16 autocast on the CPU: matmuls
// run in bf16, softmax and losses stay in fp32, regions nest and restore, and
// WithoutAutocast makes an fp32 island.
func TestCPUAutocast(t *testing.T) {
	RunLocked(func() {
		s := NewScope()
		defer s.Close()
		a, b := Randn([]int{4, 8}), Randn([]int{8, 3})
		require.False(t, AutocastEnabled(DeviceCPU))
		Autocast(DeviceCPU, BFloat16, func() {
			require.True(t, AutocastEnabled(DeviceCPU))
			y := a.Matmul(b)
			require.Equal(t, BFloat16, y.DType(), "matmul runs in bf16")
			require.Equal(t, BFloat16, Linear(a, b.T(), nil).DType(), "linear runs in bf16")
			require.Equal(t, Float32, a.Softmax(-1).DType(), "softmax is not lowered")
			Autocast(DeviceCPU, BFloat16, func() { require.True(t, AutocastEnabled(DeviceCPU)) })
			require.True(t, AutocastEnabled(DeviceCPU), "an inner region restores the outer state")
			WithoutAutocast(DeviceCPU, func() {
				require.Equal(t, Float32, a.Matmul(b).DType(), "fp32 island")
			})
			require.True(t, AutocastEnabled(DeviceCPU))
			// bf16 keeps ~3 significant digits.
			require.InDeltaSlice(t, a.Matmul(b).To(Float32).Float64s(), WithoutAutocastMatmul(a, b), 0.1)
		})
		require.False(t, AutocastEnabled(DeviceCPU))
		require.Equal(t, Float32, a.Matmul(b).DType())
		require.ErrorIs(t, Try(func() { Autocast(DeviceCPU, Float32, func() {}) }), ErrDType)
		if !BuiltWithCUDA() {
			require.ErrorIs(t, Try(func() { Autocast(DeviceCUDA, BFloat16, func() {}) }), ErrNoCUDA)
			_, err := CUDAMemory(0)
			require.ErrorIs(t, err, ErrNoCUDA)
			require.ErrorIs(t, CUDAEmptyCache(), ErrNoCUDA)
		}
		require.NoError(t, SetTF32(true))
		require.NoError(t, SetTF32(false))
	})
}

func WithoutAutocastMatmul(a, b *Tensor) []float64 {
	var out []float64
	WithoutAutocast(DeviceCPU, func() { out = a.Matmul(b).Float64s() })
	return out
}
