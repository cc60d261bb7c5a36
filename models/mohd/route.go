package mohd

import (
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Route is one router's choice for a batch of BT tokens (brief §2.2 steps
// 2–3), with the dispatch the gathered path needs. Its tensors belong to
// the Forward's scope.
type Route struct {
	P    *torch.Tensor // [BT, N_r] p = softmax(u W_r)
	Top  *torch.Tensor // [BT, K] T_t: the chosen routed groups, 0…N_r−1 (int64)
	Gate *torch.Tensor // [BT, K] w_j of the chosen groups, before α
	Load *torch.Tensor // [N_r] assignments (t, k) per routed group (int64)
	// Assignment a = t·K + k is token t's k-th choice, group j = Top[t, k]:
	// it reads row Rows[a] = t·N + N_s + j of u's groups. The gathered path's
	// products visit the BT·K assignments sorted by group (within a group in
	// order of tokens), Loads[j] of them for group j: the i-th is assignment
	// Order[i], of token Tok[i] = t.
	Order, Tok, Rows *torch.Tensor // [BT·K] int64
	Loads            []int
}

// route scores the routed groups of u [BT, D] and picks each token's top K.
func route(c *Config, r *Router, u *torch.Tensor) *Route {
	N, Nr, K := c.Groups, c.Routed(), c.TopK
	p := u.Matmul(r.W).Softmax(-1)
	top, order, loads := torch.RouteTopK(p, K)
	pv := p.Gather(1, top)
	gate := pv
	if c.Renorm {
		gate = gate.Div(pv.SumKeep(-1))
	}
	switch Scale(c.Scale) {
	case ScaleConst:
		uniform := float64(Nr) // a uniform router's p_j = 1/N_r …
		if c.Renorm {
			uniform = float64(K) // … or 1/K after renormalisation
		}
		gate = gate.MulScalar(uniform)
	case ScaleGateSum:
		gate = gate.Mul(pv.SumKeep(-1).MulScalar(float64(Nr)))
	}
	load := make([]int64, Nr)
	for j, n := range loads {
		load[j] = int64(n)
	}
	tok := order.FloorDivide(torch.Scalar(int64(K), u.Device()))
	BT := u.Size(0)
	first := torch.Arange(float64(c.Shared), float64(c.Shared+BT*N), float64(N), u.Device()) // t·N + N_s
	return &Route{
		P: p, Top: top, Gate: gate, Load: torch.FromSlice(load, nil, u.Device()), Loads: loads, Order: order, Tok: tok,
		Rows: top.Add(first.Unsqueeze(1)).Reshape(-1),
	}
}

// balanceLoss is N_r·Σ_j f_j·P̄_j, with f_j the share of assignments that go
// to group j (Σ f = 1) and P̄_j the mean router probability of j; it is 1
// for a uniform router with balanced choices.
func (r *Route) balanceLoss() *torch.Tensor {
	BT, Nr, K := r.P.Size(0), r.P.Size(1), r.Top.Size(1)
	f := r.Load.To(r.P.DType()).DivScalar(float64(BT * K))
	return f.Mul(r.P.Mean(0)).Sum().MulScalar(float64(Nr))
}

// gating is a sublayer's gates: the route (nil when every group is shared)
// and the activation scaling α, per token ([BT, 1]) or constant.
type gating struct {
	cfg   *Config
	route *Route
	alpha *torch.Tensor // [BT, 1] per-token α, or nil
	// alphaConst is the constant α (1 when per-token or off).
	alphaConst float64
}

// newGating computes α for u [BT, D] under route r (brief §2.2 step 4).
func newGating(c *Config, u *torch.Tensor, r *Route) *gating {
	g := &gating{cfg: c, route: r, alphaConst: 1}
	switch Scale(c.Scale) {
	case ScaleNorm:
		// ‖w ⊙ u‖² from the group energies ‖u^(j)‖²: shared groups count
		// whole, chosen routed groups times w_j², the rest not at all.
		BT, N, Ns := u.Size(0), c.Groups, c.Shared
		e := torch.SquareSum(u.View(BT, N, c.G())) // [BT, N]
		kept := e.Narrow(1, 0, Ns).SumKeep(-1)
		if r != nil {
			routed := e.Narrow(1, Ns, N-Ns).Gather(1, r.Top)
			kept = kept.Add(r.Gate.Square().Mul(routed).SumKeep(-1))
		}
		norm := e.SumKeep(-1).ClampMin(1e-30).Sqrt()
		g.alpha = norm.Div(kept.ClampMin(1e-30).Sqrt().AddScalar(c.ScaleEps))
	case ScaleConst:
		g.alphaConst = math.Sqrt(1 / c.Delta())
	}
	return g
}

// scale applies α to x [BT, …] (whose rows are tokens).
func (g *gating) scale(x *torch.Tensor) *torch.Tensor {
	switch {
	case g.alpha != nil:
		return x.Mul(g.alpha)
	case g.alphaConst != 1:
		return x.MulScalar(g.alphaConst)
	}
	return x
}

// groupGates is w per group [BT, N], routed entries scattered from Gate
// (mask: ones instead of the gates).
func (g *gating) groupGates(mask bool) *torch.Tensor {
	r, c := g.route, g.cfg
	BT := r.Top.Size(0)
	src := r.Gate
	if mask {
		src = torch.OnesLike(r.Gate)
	}
	routed := torch.Zeros([]int{BT, c.Routed()}, src.DType(), src.Device()).Scatter(1, r.Top, src)
	return torch.Cat([]*torch.Tensor{torch.Ones([]int{BT, c.Shared}, src.DType(), src.Device()), routed}, 1)
}

// perDim expands a per-group tensor [BT, N] to the dimensions [BT, D].
func (g *gating) perDim(w *torch.Tensor) *torch.Tensor {
	BT, N := w.Size(0), w.Size(1)
	return w.Unsqueeze(-1).Expand(BT, N, g.cfg.G()).Reshape(BT, N*g.cfg.G())
}

// maskD is the active-group mask m [BT, D].
func (g *gating) maskD() *torch.Tensor { return g.perDim(g.groupGates(true)) }

// in is the input projection z W of u [BT, D] with W [D, n] (rows are input
// dimensions), z = α·(w ⊙ u); it reads only the active groups' rows on the
// gathered path.
func (g *gating) in(u, W *torch.Tensor) *torch.Tensor {
	if ExecPath(g.cfg.Path) == PathMasked || g.route == nil {
		if g.route != nil {
			return g.scale(u.Mul(g.perDim(g.groupGates(false)))).Matmul(W)
		}
		return g.scale(u).Matmul(W)
	}
	c, r := g.cfg, g.route
	BT, grp := u.Size(0), c.G()
	// Routed groups: each token's K chosen groups of u, gated; each times
	// its group's g rows of W, added into the token's row (the sum over its
	// K groups); the shared groups' inputs times theirs: one op.
	gates := g.scale(r.Gate) // [BT, K]: α·w_j
	vals := u.View(BT*c.Groups, grp).IndexSelect(0, r.Rows).Mul(gates.Reshape(-1).Unsqueeze(1))
	var shared *torch.Tensor // the shared groups' inputs (W's first rows)
	if c.Shared > 0 {
		shared = g.scale(u.Narrow(1, 0, c.Shared*grp))
	}
	return torch.RoutedIn(shared, vals, W, r.Loads, r.Order, BT)
}

// out is the output projection m ⊙ (h Wᵀ) of h [BT, n] with W [D, n] (rows
// are output dimensions); it computes only the active groups' rows on the
// gathered path.
func (g *gating) out(h, W *torch.Tensor) *torch.Tensor {
	if ExecPath(g.cfg.Path) == PathMasked || g.route == nil {
		y := torch.Linear(h, W, nil)
		if g.route != nil {
			y = y.Mul(g.maskD())
		}
		return y
	}
	// The shared groups' rows of W over all of h, and each assignment's
	// token row of h times its group's g rows of W, written to the token's
	// columns of that group (zero where the token did not choose it): one op.
	return torch.RoutedOut(h, W, g.route.Loads, g.cfg.G(), g.route.Tok)
}
