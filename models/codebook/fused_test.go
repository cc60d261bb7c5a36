package codebook

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
)

// quantizeRun is one forward and backward of a layer on x: the ids, output,
// reconstruction loss and the gradients of x, the codes and the LayerNorm.
type quantizeRun struct {
	ids                 []int64
	out, dx, dc, dw, db []float64
	mse                 float64
}

func runQuantize(t *testing.T, l *Layer, x, w *torch.Tensor, withMSE bool) quantizeRun {
	t.Helper()
	var r quantizeRun
	torch.WithScope(func() {
		for _, p := range []*torch.Tensor{l.Codes, l.LNW, l.LNB} {
			p.SetGrad(nil)
		}
		xs := x.Detach().SetRequiresGrad(true)
		out := l.Forward(xs)
		loss := out.Mul(w).Sum()
		if withMSE {
			loss = loss.Add(l.MSE())
		}
		loss.Backward()
		r.ids = l.IDs().Int64s()
		r.out, r.mse = out.Float64s(), l.MSE().Item()
		r.dx, r.dc = xs.Grad().Float64s(), l.Codes.Grad().Float64s()
		r.dw, r.db = l.LNW.Grad().Float64s(), l.LNB.Grad().Float64s()
	})
	return r
}

// maxDiff is the largest |a − b| relative to max(1, max |b|).
func maxDiff(a, b []float64) float64 {
	scale, d := 1.0, 0.0
	for i := range b {
		scale = math.Max(scale, math.Abs(b[i]))
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d / scale
}

// TestFusedMatchesReference: the fused op (torch.CodebookQuantize) selects
// the same ids as the reference path, its output and loss agree within 1e-6
// and the gradients of the input, the codes and the LayerNorm within 1e-5,
// for vanilla and group codebooks, k = 1 and 8, with and without the
// reconstruction loss in the objective, at d = 16, 20 and 136 (the op's
// loops take rows in vectors of 16, up to 8 at a time, and the elements
// past the last 16 one by one); and two fused runs are bitwise equal.
func TestFusedMatchesReference(t *testing.T) {
	const B, T, C = 3, 50, 200
	for _, d := range []int{16, 20, 136} {
		for _, k := range []int{1, 8} {
			for _, G := range []int{1, 4} {
				for _, withMSE := range []bool{false, true} {
					t.Run(fmt.Sprintf("d%d_k%d_G%d_mse%v", d, k, G, withMSE), func(t *testing.T) {
						torch.ManualSeed(uint64(7 + k + G))
						l, s := newTestLayer(t, G, C, k, d, nil)
						s.Train(true)
						l.Record = true
						defer l.Close()
						torch.WithScope(func() {
							l.LNW.CopyFrom(torch.RandnLike(l.LNW).MulScalar(0.2).AddScalar(1))
							l.LNB.CopyFrom(torch.RandnLike(l.LNB).MulScalar(0.1))
						})
						x, w := quantizeInputs(t, B, T, G*d)

						l.Reference = true
						ref := runQuantize(t, l, x, w, withMSE)
						l.Reference = false
						got := runQuantize(t, l, x, w, withMSE)
						again := runQuantize(t, l, x, w, withMSE)
						// Score blocks of 16 tokens: 150 tokens end in a partial block.
						l.ChunkElems = 16 * G * C
						small := runQuantize(t, l, x, w, withMSE)
						require.Equal(t, ref.ids, small.ids, "ids with small score blocks")

						require.Equal(t, ref.ids, got.ids, "ids")
						dOut, dMSE := maxDiff(got.out, ref.out), math.Abs(got.mse-ref.mse)/math.Max(1, math.Abs(ref.mse))
						dx, dc := maxDiff(got.dx, ref.dx), maxDiff(got.dc, ref.dc)
						dw, db := maxDiff(got.dw, ref.dw), maxDiff(got.db, ref.db)
						t.Logf("max diff: out %.1e mse %.1e; grads x %.1e codes %.1e ln.w %.1e ln.b %.1e", dOut, dMSE, dx, dc, dw, db)
						require.LessOrEqual(t, dOut, 1e-6, "out")
						require.LessOrEqual(t, dMSE, 1e-6, "mse")
						for name, v := range map[string]float64{"x": dx, "codes": dc, "ln.weight": dw, "ln.bias": db} {
							require.LessOrEqual(t, v, 1e-5, "grad "+name)
						}
						require.Equal(t, got, again, "two fused runs differ")
					})
				}
			}
		}
	}
}

// quantizeInputs is runQuantize's input x and readout w, [B, T, n] each
// from N(0, 1), kept beyond scopes and freed when the test ends.
func quantizeInputs(t *testing.T, B, T, n int) (x, w *torch.Tensor) {
	x, w = torch.Randn([]int{B, T, n}).Retain(), torch.Randn([]int{B, T, n}).Retain()
	t.Cleanup(func() { x.Free(); w.Free() })
	return x, w
}

// TestFusedIDsAtPaperScale: at the paper's C = 10,000 codes (625 blocks of
// 16 scores per row, the top-k's widest rows) the fused op selects the
// reference path's ids (at::topk) for k = 8 and 32, one group and four.
func TestFusedIDsAtPaperScale(t *testing.T) {
	const B, T, d, C = 1, 24, 16, 10000
	for _, k := range []int{8, 32} {
		for _, G := range []int{1, 4} {
			t.Run(fmt.Sprintf("k%d_G%d", k, G), func(t *testing.T) {
				torch.ManualSeed(uint64(11 + k + G))
				l, _ := newTestLayer(t, G, C, k, d, nil)
				l.Record = true
				defer l.Close()
				x, w := quantizeInputs(t, B, T, G*d)
				l.Reference = true
				ref := runQuantize(t, l, x, w, true)
				l.Reference = false
				got := runQuantize(t, l, x, w, true)
				require.Equal(t, ref.ids, got.ids, "ids")
				require.LessOrEqual(t, maxDiff(got.out, ref.out), 1e-6, "out")
			})
		}
	}
}
