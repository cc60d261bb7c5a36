package mohd

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
)

// The padded-bmm variant of the gathered path's routed projections (issue
// 16 item 2), kept here with its measurement: one bmm over the routed groups'
// blocks padded to the largest load. It computes the same values
// (TestGroupedGEMMAgrees) but was 1–11% slower than one GEMM per group on
// the benchmark shapes (TestGroupedGEMMTiming, thread CPU time): padding
// every block to the largest load adds 10–15% rows (loads of a random
// router: 184…234 for a mean of 205). route.go's torch.RoutedIn and
// RoutedOut keep one GEMM per group and move the gather, the scatter-add
// and the backward into one shim call instead.

// padding lays the assignments sorted by group out in N_r blocks of Lmax rows.
type padding struct {
	Lmax                       int
	Rows, Tok, Back, Asg, Dest *torch.Tensor
}

func padRoute(r *Route) *padding {
	BT, K, Nr := r.Top.Size(0), r.Top.Size(1), len(r.Loads)
	lmax := 1
	for _, n := range r.Loads {
		lmax = max(lmax, n)
	}
	order, tok, rows, top := r.Order.Int64s(), r.Tok.Int64s(), r.Rows.Int64s(), r.Top.Int64s()
	prow, ptok := make([]int64, Nr*lmax), make([]int64, Nr*lmax)
	back, asg, dest := make([]int64, BT*K), make([]int64, Nr*lmax), make([]int64, BT*Nr)
	for i := range asg {
		asg[i] = int64(BT * K) // pad rows: the appended zero gate
	}
	for i := range dest {
		dest[i] = int64(Nr * lmax) // inactive groups: the appended zero row
	}
	i := 0
	for j, n := range r.Loads {
		for k := 0; k < n; k++ {
			p := j*lmax + k
			prow[p], ptok[p] = rows[order[i]], tok[i]
			back[order[i]], asg[p] = int64(p), order[i]
			dest[tok[i]*int64(Nr)+top[order[i]]] = int64(p)
			i++
		}
	}
	dev := r.Top.Device()
	return &padding{Lmax: lmax, Rows: torch.FromSlice(prow, nil, dev), Tok: torch.FromSlice(ptok, nil, dev),
		Back: torch.FromSlice(back, nil, dev), Asg: torch.FromSlice(asg, nil, dev), Dest: torch.FromSlice(dest, nil, dev)}
}

// inBmm is gating.in's gathered path with one bmm over the padded blocks.
func (g *gating) inBmm(u, W *torch.Tensor, p *padding) *torch.Tensor {
	c, r := g.cfg, g.route
	BT, n, grp, Nr, K := u.Size(0), W.Size(1), c.G(), c.Routed(), c.TopK
	gates := r.Gate
	if g.alpha != nil {
		gates = gates.Mul(g.alpha)
	} else {
		gates = g.scale(gates)
	}
	gates = torch.Cat([]*torch.Tensor{gates.Reshape(-1), torch.Zeros([]int{1}, gates.DType(), gates.Device())}, 0).
		IndexSelect(0, p.Asg).Unsqueeze(1)
	x := u.View(BT*c.Groups, grp).IndexSelect(0, p.Rows).Mul(gates).View(Nr, p.Lmax, grp)
	out := x.Bmm(g.routedRows(W)).View(Nr*p.Lmax, n).IndexSelect(0, p.Back).View(BT, K, n).Sum(1)
	if c.Shared > 0 {
		out = out.Add(g.scale(u.Narrow(1, 0, c.Shared*grp)).Matmul(W.Narrow(0, 0, c.Shared*grp)))
	}
	return out
}

// outBmm is gating.out's gathered path with one bmm over the padded blocks.
func (g *gating) outBmm(h, W *torch.Tensor, p *padding) *torch.Tensor {
	c := g.cfg
	BT, n, Nr, grp := h.Size(0), h.Size(1), c.Routed(), c.G()
	y := h.IndexSelect(0, p.Tok).View(Nr, p.Lmax, n).Bmm(g.routedRows(W).Transpose(1, 2)).View(Nr*p.Lmax, grp)
	table := torch.Cat([]*torch.Tensor{y, torch.Zeros([]int{1, grp}, h.DType(), h.Device())}, 0)
	routed := table.IndexSelect(0, p.Dest).View(BT, Nr*grp)
	if c.Shared == 0 {
		return routed
	}
	return torch.Cat([]*torch.Tensor{torch.Linear(h, W.Narrow(0, 0, c.Shared*grp), nil), routed}, 1)
}

// projCase is an FFN's routed projections at a benchmark width.
type projCase struct{ D, FFN, BT int }

// runProj runs in and out (per-group or bmm) forward and backward and
// returns the output and the gradients of u, W13 and W2.
func runProj(c *Config, r *Router, u0, W13, W2 *torch.Tensor, bmm bool) []*torch.Tensor {
	for _, w := range []*torch.Tensor{W13, W2} {
		w.SetGrad(nil)
	}
	u := u0.Detach().SetRequiresGrad(true)
	rt := route(c, r, u)
	g := newGating(c, u, rt)
	var y *torch.Tensor
	if bmm {
		p := padRoute(rt)
		y = g.outBmm(g.inBmm(u, W13, p).Narrow(1, 0, c.FFN), W2, p)
	} else {
		y = g.out(g.in(u, W13).Narrow(1, 0, c.FFN), W2)
	}
	y.Square().Sum().Backward()
	return []*torch.Tensor{y, u.Grad(), W13.Grad(), W2.Grad()}
}

func projSetup(w projCase) (*Config, *Router, *torch.Tensor, *torch.Tensor, *torch.Tensor) {
	c := DefaultConfig()
	c.Vocab, c.Context, c.Layers, c.HeadDim = 256, 128, 4, 32
	c.Width, c.Heads, c.FFN, c.Path = w.D, 16, w.FFN, "gathered"
	c.resolve()
	torch.ManualSeed(0)
	r := &Router{W: torch.Randn([]int{c.Width, c.Routed()}).MulScalar(0.02)}
	W13 := torch.Randn([]int{c.Width, 2 * c.FFN}).MulScalar(0.02).SetRequiresGrad(true)
	W2 := torch.Randn([]int{c.Width, c.FFN}).MulScalar(0.02).SetRequiresGrad(true)
	return &c, r, torch.Randn([]int{w.BT, c.Width}), W13, W2
}

// TestGroupedGEMMAgrees: the bmm variant gives route.go's (RoutedIn,
// RoutedOut) outputs and gradients to rounding.
func TestGroupedGEMMAgrees(t *testing.T) {
	lockThread(t)
	torch.WithScope(func() {
		c, r, u, W13, W2 := projSetup(projCase{128, 352, 256})
		ref := runProj(c, r, u, W13, W2, false)
		got := runProj(c, r, u, W13, W2, true)
		for i, name := range []string{"out", "du", "dW13", "dW2"} {
			d := maxDiff(ref[i], got[i])
			t.Logf("%s: max |per-group − bmm| %.2g", name, d)
			require.LessOrEqual(t, d, 1e-4*max(1, ref[i].Abs().Amax().Item()), name)
		}
	})
}

// TestGroupedGEMMTiming times in + out, forward and backward, per-group and
// bmm at the benchmark widths (1 thread, thread CPU time, best of 15
// alternating runs). Run with HIDDENLAB_TIMING=1.
func TestGroupedGEMMTiming(t *testing.T) {
	if testing.Short() || !timing() {
		t.Skip("timing: set HIDDENLAB_TIMING=1")
	}
	lockThread(t)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	prev := torch.NumThreads()
	require.NoError(t, torch.SetNumThreads(1))
	defer func() { _ = torch.SetNumThreads(prev) }()
	for _, w := range []projCase{{128, 352, 2048}, {512, 1408, 1024}, {1024, 1408, 1024}} {
		torch.WithScope(func() {
			c, r, u, W13, W2 := projSetup(w)
			best := map[bool]time.Duration{true: 1 << 62, false: 1 << 62}
			for i := 0; i < 15; i++ {
				for _, bmm := range []bool{false, true} {
					torch.WithScope(func() {
						t0 := cpu()
						runProj(c, r, u, W13, W2, bmm)
						best[bmm] = min(best[bmm], cpu()-t0)
					})
				}
			}
			t.Logf("D=%d: per-group %.1f ms, bmm %.1f ms", w.D, float64(best[false].Microseconds())/1e3, float64(best[true].Microseconds())/1e3)
		})
	}
}

func timing() bool { return os.Getenv("HIDDENLAB_TIMING") != "" }

// routedRows is W's rows of the routed groups, [N_r, g, n] (a view).
func (g *gating) routedRows(W *torch.Tensor) *torch.Tensor {
	c := g.cfg
	return W.Narrow(0, c.Shared*c.G(), c.Routed()*c.G()).View(c.Routed(), c.G(), W.Size(1))
}
