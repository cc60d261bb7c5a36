package sae

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
)

func lockThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// TestSAEUnit: the decoder's gradient has no component along its columns,
// TopK keeps at most k latents, AuxK only applies with dead latents, and
// the L1 term uses the decoder norms.
func TestSAEUnit(t *testing.T) {
	lockThread(t)
	for _, c := range []struct {
		kind Kind
		dead bool
	}{{TopK, false}, {TopK, true}, {ReLU, false}} {
		torch.ManualSeed(3)
		a := NewSAE(c.kind, 8, 32, 3)
		defer a.Close()
		torch.WithScope(func() {
			x := torch.Randn([]int{50, 8})
			a.Fit(x)
			require.InDelta(t, 8.0, x.MulScalar(a.scaleValue()).Square().Sum(-1).Mean().Item(), 1e-3, "E‖c·x‖² = d_in")
			xn := x.MulScalar(a.scaleValue())
			dead := torch.Zeros([]int{32}, torch.Bool)
			if c.dead {
				dead = torch.Ones([]int{32}, torch.Bool).Narrow(0, 0, 32)
			}
			l := a.TrainLoss(xn, dead, 4, 1.0/32, 5)
			l.Total.Backward()
			g := a.WDec.Grad()
			require.NotNil(t, g)
			// Columns are unit vectors and the gradient is orthogonal to each.
			require.InDelta(t, 0, a.WDec.Norm(2, 0).SubScalar(1).Abs().Amax().Item(), 1e-5)
			require.Less(t, g.Mul(a.WDec).Sum(0).Abs().Amax().Item(), 1e-6)
			require.Greater(t, g.Abs().Amax().Item(), 1e-6)
			if c.kind == TopK {
				require.LessOrEqual(t, l.L0, 3.0)
				nz := l.Latent.GtScalar(0).To(torch.Float32).Sum(-1).Amax().Item()
				require.LessOrEqual(t, nz, 3.0)
				if c.dead {
					require.Greater(t, l.AuxK, 0.0)
				} else {
					require.Equal(t, 0.0, l.AuxK)
				}
			} else {
				require.Greater(t, l.L1, 0.0)
			}
			// Reconstruct works in the original units.
			require.Equal(t, x.Shape(), a.Reconstruct(x).Shape())
		})
		a.Store().ZeroGrad(true)
		// Resampling revives every latent that never fired.
		if c.kind == ReLU {
			torch.WithScope(func() {
				a.SinceFired.Fill(1000)
				n := a.Resample(torch.Randn([]int{50, 8}), 100)
				require.Equal(t, 32, n)
				require.Equal(t, 0.0, a.SinceFired.Abs().Sum().Item())
				require.InDelta(t, 0, a.WDec.Norm(2, 0).SubScalar(1).Abs().Amax().Item(), 1e-5)
			})
		}
	}
}
