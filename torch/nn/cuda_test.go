package nn_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// TestGPTOnCUDA: the same GPT gives the CPU's logits on the GPU, trains there
// under bf16 autocast, and decodes with the KV cache (GPU machines only; see
// scripts/gpu-check.sh).
func TestGPTOnCUDA(t *testing.T) {
	if torch.CUDADeviceCount() == 0 {
		t.Skip("no CUDA device: this shim is a CPU build or no GPU is visible (scripts/gpu-check.sh runs this)")
	}
	torch.RunLocked(func() {
		require.NoError(t, torch.SetTF32(false))
		m := newGPT(t, tiny())
		s := torch.NewScope()
		defer s.Close()
		ids := torch.RandInt(0, 32, []int{2, 16})
		cpu := m.Forward(ids, nil)
		dev := torch.CUDA(0)
		require.NoError(t, m.Store.To(dev))
		gpu := m.Forward(ids.To(dev), nil)
		require.Less(t, cpu.Sub(gpu.To(torch.CPU)).Abs().Amax().Item(), 1e-4)

		opt, err := optim.NewAdamW(&optim.Group{Params: m.Store.Params(), LR: 3e-3})
		require.NoError(t, err)
		defer opt.Close()
		var first, last float64
		x := ids.To(dev)
		for i := 0; i < 100; i++ {
			torch.WithScope(func() {
				var loss *torch.Tensor
				torch.Autocast(torch.DeviceCUDA, torch.BFloat16, func() { loss = nn.LMLoss(m.Forward(x, nil), x, -100) })
				m.Store.ZeroGrad(true)
				loss.Backward()
				opt.Step(1)
				last = loss.Item()
				if i == 0 {
					first = last
				}
			})
		}
		require.Less(t, last, first/2, "bf16 training on the GPU reduces the loss")
		out, err := m.Generate([][]int64{{1, 2, 3}}, nn.GenerateOptions{MaxNew: 5, Stop: -1})
		require.NoError(t, err)
		require.Len(t, out[0], 5)
	})
}
