package mohd

import (
	"testing"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// BenchmarkTrainStep times forward, backward and AdamW of brief §7's sizes
// (batch 16 × 128): go test -bench TrainStep -benchtime 5x ./models/mohd
// (cmd/hlbench's mohd suite is the full comparison, with PyTorch).
func BenchmarkTrainStep(b *testing.B) {
	cfg := func(width, heads, ffn int, vanilla bool, path ExecPath) Config {
		c := DefaultConfig()
		c.Vocab, c.Context, c.Layers, c.HeadDim = 256, 128, 4, 32
		c.Width, c.Heads, c.FFN, c.Vanilla, c.Path = width, heads, ffn, vanilla, string(path)
		return c
	}
	if err := torch.SetNumThreads(1); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"V96m", cfg(96, 3, 256, true, PathGathered)},
		{"C50-gathered", cfg(128, 4, 352, false, PathGathered)},
		{"C50-masked", cfg(128, 4, 352, false, PathMasked)},
		{"V128m", cfg(128, 4, 408, true, PathGathered)},
		{"X2-gathered", cfg(256, 4, 352, false, PathGathered)},
		{"X2-masked", cfg(256, 4, 352, false, PathMasked)},
	} {
		b.Run(c.name, func(b *testing.B) {
			torch.RunLocked(func() {
				torch.ManualSeed(1)
				m, err := NewModel(c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				opt, err := optim.NewAdamW(&optim.Group{Params: m.Store().Params(), LR: 1e-3})
				if err != nil {
					b.Fatal(err)
				}
				defer opt.Close()
				ids := torch.RandInt(0, 256, []int{16, 128}).Retain()
				defer ids.Free()
				step := func() {
					s := torch.NewScope()
					defer s.Close()
					l := nn.LMLoss(m.Forward(ids), ids, -100)
					if aux, _ := m.AuxLoss(); aux != nil {
						l = l.Add(aux)
					}
					m.Store().ZeroGrad(true)
					l.Backward()
					opt.Step(1)
				}
				step()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
			})
		})
	}
}
