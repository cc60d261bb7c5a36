package torch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// requireCUDA skips unless a CUDA build of the shim sees a device: these
// tests run on a GPU machine with LD_LIBRARY_PATH=build/cuda (see
// scripts/gpu-check.sh); the CPU build's CUDA behaviour is TestCUDAInCPUBuild.
func requireCUDA(t *testing.T) {
	t.Helper()
	if CUDADeviceCount() == 0 {
		t.Skip("no CUDA device: this shim is a CPU build or no GPU is visible (scripts/gpu-check.sh runs these)")
	}
}

// TestCUDAMatchesCPU runs the core ops on the GPU and compares with the CPU.
func TestCUDAMatchesCPU(t *testing.T) {
	requireCUDA(t)
	RunLocked(func() {
		require.NoError(t, SetTF32(false))
		s := NewScope()
		defer s.Close()
		dev := CUDA(0)
		info, err := CUDADeviceInfo(0)
		require.NoError(t, err)
		require.NotEmpty(t, info.Name)
		require.Greater(t, info.TotalMemory, int64(1<<30))
		t.Logf("device 0: %s, %.1f GiB", info.Name, float64(info.TotalMemory)/(1<<30))

		ManualSeed(1)
		q, k, v := Randn([]int{2, 4, 16, 8}), Randn([]int{2, 4, 16, 8}), Randn([]int{2, 4, 16, 8})
		w := Randn([]int{8, 8})
		ids := RandInt(0, 8, []int{32})
		cases := map[string]func(q, k, v, w, ids *Tensor) *Tensor{
			"matmul":     func(q, _, _, w, _ *Tensor) *Tensor { return q.Matmul(w) },
			"softmax":    func(q, _, _, _, _ *Tensor) *Tensor { return q.Softmax(-1) },
			"layer_norm": func(q, _, _, _, _ *Tensor) *Tensor { return LayerNorm(q, 1, nil, nil, 1e-5) },
			"attention":  func(q, k, v, _, _ *Tensor) *Tensor { return Attention(q, k, v, nil, 0, true) },
			"cross_entropy": func(q, _, _, _, ids *Tensor) *Tensor {
				return CrossEntropy(q.Reshape(-1, 8).Narrow(0, 0, 32), ids)
			},
			"topk+gather": func(q, _, _, _, _ *Tensor) *Tensor { _, i := q.TopK(3, -1); return q.Gather(-1, i) },
		}
		for name, f := range cases {
			cpu := f(q, k, v, w, ids)
			gpu := f(q.To(dev), k.To(dev), v.To(dev), w.To(dev), ids.To(dev))
			require.Equal(t, dev, gpu.Device(), name)
			require.Less(t, cpu.Sub(gpu.To(CPU)).Abs().Amax().Item(), 1e-4, name)
		}
		// Autocast on CUDA computes matmuls in bf16.
		Autocast(DeviceCUDA, BFloat16, func() {
			require.Equal(t, BFloat16, q.To(dev).Matmul(w.To(dev)).DType())
		})
		// Gradients on the device.
		x := Randn([]int{4, 8}, dev).SetRequiresGrad(true)
		x.Square().Sum().Backward()
		require.Less(t, x.Grad().Sub(x.Detach().MulScalar(2)).Abs().Amax().Item(), 1e-5)
		require.NoError(t, Synchronize(dev))
		mem, err := CUDAMemory(0)
		require.NoError(t, err)
		require.Greater(t, mem.Allocated, int64(0))
		require.GreaterOrEqual(t, mem.PeakAllocated, mem.Allocated)
		// Errors on the device are typed too.
		require.ErrorIs(t, Try(func() { q.To(dev).Matmul(Ones([]int{3, 3}, dev)) }), ErrShape)
		require.ErrorIs(t, Try(func() { q.To(dev).Add(q) }), ErrDevice)
		require.ErrorIs(t, Try(func() { Zeros([]int{1}, CUDA(CUDADeviceCount())) }), ErrDevice)
	})
}
