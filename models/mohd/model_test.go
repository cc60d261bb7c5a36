package mohd

import (
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// lockThread keeps a test's tensor work on one OS thread (libtorch's grad
// mode is per thread).
func lockThread(t *testing.T) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// small is a tiny MoHD configuration the tests vary.
func small() Config {
	c := DefaultConfig()
	c.Vocab, c.Context, c.Width, c.Layers, c.Heads, c.HeadDim, c.FFN = 19, 12, 32, 2, 2, 8, 24
	c.Groups, c.Shared, c.TopK = 8, 2, 3
	return c
}

func newModel(t *testing.T, c Config, seed uint64) *Model {
	t.Helper()
	torch.ManualSeed(seed)
	m, err := NewModel(c)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

func randomIDs(c Config, B, T int) *torch.Tensor {
	return torch.RandInt(0, c.Vocab, []int{B, T})
}

func maxDiff(a, b *torch.Tensor) float64 { return a.Sub(b).Abs().Amax().Item() }

// randomizeFusion gives BD₂ random values so that fusion does something.
func randomizeFusion(m *Model) {
	torch.WithScope(func() {
		for _, b := range m.Blocks {
			for _, f := range []*Monarch{b.Attn.Fusion, b.FFN.Fusion} {
				if f != nil {
					f.BD2.CopyFrom(torch.Randn(f.BD2.Shape()).MulScalar(0.3))
				}
			}
		}
	})
}

// referenceForward is a vanilla pre-norm LLaMA model written with torch/nn's
// own layers (separate Q, K, V, O projections, nn.SwiGLU, nn.RMSNorm,
// nn.Rotary and the fused attention) on the weights of m.
func referenceForward(t *testing.T, m *Model, ids *torch.Tensor) *torch.Tensor {
	c := m.Config
	s := nn.NewStore()
	t.Cleanup(s.Close)
	root := s.Root()
	B, T := ids.Size(0), ids.Size(1)
	da, dff := c.AttnWidth(), c.FFN
	lin := func(name string, w *torch.Tensor) *nn.Linear {
		l := nn.NewLinear(root.Sub(name), w.Size(1), w.Size(0), false, 1)
		l.Weight.CopyFrom(w)
		return l
	}
	norm := func(name string, w *torch.Tensor) *nn.RMSNorm {
		n := nn.NewRMSNorm(root.Sub(name), c.Width, c.NormEps)
		n.Weight.CopyFrom(w)
		return n
	}
	rot := nn.NewRotary(root.Sub("rot"), c.HeadDim, c.Context, c.RotaryBase)
	x := torch.Embedding(m.Embed.Weight, ids)
	for i, b := range m.Blocks {
		p := func(s string) string { return "b" + string(rune('0'+i)) + s }
		wq := lin(p("q"), b.Attn.WQKV.Narrow(1, 0, da).T().Contiguous())
		wk := lin(p("k"), b.Attn.WQKV.Narrow(1, da, da).T().Contiguous())
		wv := lin(p("v"), b.Attn.WQKV.Narrow(1, 2*da, da).T().Contiguous())
		wo := lin(p("o"), b.Attn.WO)
		heads := func(y *torch.Tensor) *torch.Tensor { return y.View(B, T, c.Heads, c.HeadDim).Transpose(1, 2) }
		u := norm(p("n1"), b.Attn.Norm.Weight).Forward(x)
		q := rot.Apply(heads(wq.Forward(u)), 0, nil)
		k := rot.Apply(heads(wk.Forward(u)), 0, nil)
		o := torch.Attention(q, k, heads(wv.Forward(u)), nil, 0, true).Transpose(1, 2).Reshape(B, T, da)
		x = x.Add(wo.Forward(o))
		ffn := &nn.SwiGLU{
			W1: lin(p("w1"), b.FFN.W13.Narrow(1, 0, dff).T().Contiguous()),
			W3: lin(p("w3"), b.FFN.W13.Narrow(1, dff, dff).T().Contiguous()),
			W2: lin(p("w2"), b.FFN.W2),
		}
		x = x.Add(ffn.Forward(norm(p("n2"), b.FFN.Norm.Weight).Forward(x)))
	}
	return torch.Linear(norm("nf", m.Norm.Weight).Forward(x), m.Head.Weight, nil)
}

// TestAllSharedIsVanilla: with every group shared (N_s = N), scaling off and
// fusion off, MoHD is the vanilla block on the same weights, on both paths;
// so is vanilla: true.
func TestAllSharedIsVanilla(t *testing.T) {
	lockThread(t)
	allShared := small()
	allShared.Shared, allShared.TopK, allShared.Scale, allShared.Fusion = 8, 0, string(ScaleOff), string(FusionOff)
	vanilla := small()
	vanilla.Vanilla = true
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"all shared N=8", allShared}, {"vanilla switch", vanilla}} {
		for _, path := range []ExecPath{PathMasked, PathGathered} {
			t.Run(c.name+"/"+string(path), func(t *testing.T) {
				cfg := c.cfg
				cfg.Path = string(path)
				m := newModel(t, cfg, 1)
				torch.WithScope(func() {
					ids := randomIDs(cfg, 3, cfg.Context)
					d := maxDiff(m.Forward(ids), referenceForward(t, m, ids))
					t.Logf("max |MoHD − vanilla reference| = %g", d)
					require.LessOrEqual(t, d, 1e-6)
				})
			})
		}
	}
}

// pathCases are the configurations the masked and gathered paths must agree on.
func pathCases() []struct {
	name string
	cfg  Config
} {
	base := small()
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	return []struct {
		name string
		cfg  Config
	}{
		{"default norm scaling, monarch fusion", base},
		{"const scaling, renorm", with(func(c *Config) { c.Scale, c.Renorm = string(ScaleConst), true })},
		{"gate_sum scaling", with(func(c *Config) { c.Scale = string(ScaleGateSum) })},
		{"scaling off, fusion off", with(func(c *Config) { c.Scale, c.Fusion = string(ScaleOff), string(FusionOff) })},
		{"masked fusion write", with(func(c *Config) { c.FusionWrite = string(WriteMasked) })},
		{"router per layer", with(func(c *Config) { c.Router = string(RouterLayer) })},
		{"no shared groups", with(func(c *Config) { c.Shared, c.TopK = 0, 4 })},
		{"expansion-like D=64", with(func(c *Config) { c.Width, c.Groups, c.Shared, c.TopK = 64, 16, 6, 2 })},
	}
}

// TestMaskedAndGatheredAgree: the two execution paths give the same logits
// (1e-5) and the same gradients for every parameter (1e-4).
func TestMaskedAndGatheredAgree(t *testing.T) {
	lockThread(t)
	for _, c := range pathCases() {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, c.cfg, 7)
			randomizeFusion(m)
			ids := randomIDs(c.cfg, 4, c.cfg.Context).Retain()
			defer ids.Free()
			// A random linear readout of the logits, summed: gradients of
			// order one rather than 1/(B·T·V).
			readout := torch.Randn([]int{4, c.cfg.Context, c.cfg.Vocab}).Retain()
			defer readout.Free()
			run := func(path ExecPath) (*torch.Tensor, map[string]*torch.Tensor) {
				m.Config.Path = string(path)
				m.Store().ZeroGrad(true)
				logits := m.Forward(ids)
				aux, _ := m.AuxLoss()
				loss := logits.Mul(readout).Sum().Add(aux)
				loss.Backward()
				grads := map[string]*torch.Tensor{}
				for _, p := range m.Store().Params() {
					if g := p.T.Grad(); g != nil {
						grads[p.Name] = g.Clone()
					}
				}
				return logits, grads
			}
			torch.WithScope(func() {
				lm, gm := run(PathMasked)
				lg, gg := run(PathGathered)
				fwd := maxDiff(lm, lg)
				require.LessOrEqual(t, fwd, 1e-5, "forward")
				require.Equal(t, len(gm), len(gg))
				worst, worstName, largest := 0.0, "", 0.0
				for name, g := range gm {
					largest = max(largest, g.Abs().Amax().Item())
					require.Contains(t, gg, name)
					if d := maxDiff(g, gg[name]); d > worst {
						worst, worstName = d, name
					}
				}
				t.Logf("max |masked − gathered|: logits %.2g, gradients %.2g (%s; largest gradient %.3g)", fwd, worst, worstName, largest)
				require.LessOrEqual(t, worst, 1e-4, "gradient of %s", worstName)
			})
		})
	}
}

// TestRouteTopK: each token's K routed groups are distinct and are the K
// largest router probabilities; the gathered path's dispatch visits every
// assignment once, sorted by group, with the right token and rows.
func TestRouteTopK(t *testing.T) {
	lockThread(t)
	for _, K := range []int{1, 3, 6} {
		c := small()
		c.TopK = K
		torch.ManualSeed(3)
		torch.WithScope(func() {
			r := &Router{W: torch.Randn([]int{c.Width, c.Routed()})}
			BT, Nr, N := 50, c.Routed(), c.Groups
			rt := route(&c, r, torch.Randn([]int{BT, c.Width}))
			p, top := rt.P.Float64s(), rt.Top.Int64s()
			for tk := 0; tk < BT; tk++ {
				chosen := top[tk*K : (tk+1)*K]
				set := slices.Clone(chosen)
				slices.Sort(set)
				require.Len(t, slices.Compact(set), K, "token %d: distinct groups", tk)
				minChosen := math.Inf(1)
				for _, j := range chosen {
					require.True(t, j >= 0 && int(j) < Nr)
					minChosen = min(minChosen, p[tk*Nr+int(j)])
				}
				for j := 0; j < Nr; j++ {
					if !slices.Contains(chosen, int64(j)) {
						require.LessOrEqual(t, p[tk*Nr+j], minChosen, "token %d: unchosen group %d beats a chosen one", tk, j)
					}
				}
			}
			order, tok, rows := rt.Order.Int64s(), rt.Tok.Int64s(), rt.Rows.Int64s()
			sorted := slices.Clone(order)
			slices.Sort(sorted)
			for i, v := range sorted {
				require.Equal(t, int64(i), v, "order is a permutation of the assignments")
			}
			i := 0
			for j, n := range rt.Loads {
				for ; n > 0; n-- {
					a := order[i]
					tk := a / int64(K)
					require.Equal(t, int64(j), top[a], "assignment %d is in group %d's block", a, j)
					require.Equal(t, tk, tok[i])
					require.Equal(t, tk*int64(N)+int64(c.Shared+j), rows[a])
					i++
				}
			}
			require.Equal(t, BT*K, i, "the loads add up to B·T·K")
		})
	}
}

// TestBalanceLossHandWorked: L = N_r·Σ_j f_j·P̄_j on a case worked by hand,
// and for a route computed by the router.
func TestBalanceLossHandWorked(t *testing.T) {
	lockThread(t)
	torch.WithScope(func() {
		// P = [[.5 .3 .2] [.1 .6 .3]], T = [[0] [1]]: f = (.5, .5, 0),
		// P̄ = (.3, .45, .25), L = 3·(.5·.3 + .5·.45) = 1.125.
		r := &Route{P: torch.FromSlice([]float32{.5, .3, .2, .1, .6, .3}, []int{2, 3}),
			Top: torch.FromSlice([]int64{0, 1}, []int{2, 1}), Load: torch.FromSlice([]int64{1, 1, 0}, nil)}
		require.InDelta(t, 1.125, r.balanceLoss().Item(), 1e-6)

		c := small()
		torch.ManualSeed(5)
		rt := route(&c, &Router{W: torch.Randn([]int{c.Width, c.Routed()})}, torch.Randn([]int{40, c.Width}))
		p, top := rt.P.Float64s(), rt.Top.Int64s()
		Nr, K, BT := c.Routed(), c.TopK, 40
		f, mean := make([]float64, Nr), make([]float64, Nr)
		for i := 0; i < BT; i++ {
			for k := 0; k < K; k++ {
				f[top[i*K+k]] += 1 / float64(BT*K)
			}
			for j := 0; j < Nr; j++ {
				mean[j] += p[i*Nr+j] / float64(BT)
			}
		}
		want := 0.0
		for j := range f {
			want += float64(Nr) * f[j] * mean[j]
		}
		require.InDelta(t, want, rt.balanceLoss().Item(), 1e-5)
	})
}

// TestFusionIdentityInit: Monarch fusion as initialised (BD₂ = 0) leaves the
// output unchanged, yet BD₂ receives a gradient (so fusion can learn).
func TestFusionIdentityInit(t *testing.T) {
	lockThread(t)
	for _, path := range []ExecPath{PathMasked, PathGathered} {
		c := small()
		c.Path = string(path)
		m := newModel(t, c, 11)
		torch.WithScope(func() {
			ids := randomIDs(c, 2, c.Context)
			with := m.Forward(ids)
			fusions := map[*Block][2]*Monarch{}
			for _, b := range m.Blocks {
				fusions[b] = [2]*Monarch{b.Attn.Fusion, b.FFN.Fusion}
				b.Attn.Fusion, b.FFN.Fusion = nil, nil
			}
			without := m.Forward(ids)
			for b, f := range fusions {
				b.Attn.Fusion, b.FFN.Fusion = f[0], f[1]
			}
			require.Equal(t, 0.0, maxDiff(with, without), "%s: fusion at init changes the output", path)
			m.Store().ZeroGrad(true)
			m.Forward(ids).Square().Mean().Backward()
			require.Greater(t, m.Blocks[0].FFN.Fusion.BD2.Grad().Abs().Sum().Item(), 0.0)
		})
	}
}

// TestMonarchByHand: F(y) = Pᵀ·BD₂·P·BD₁·y matches the sums written out:
// a[n,h] = Σ_k y[n,k]·BD₁[n,k,h] within each group, then
// F[m,h] = Σ_n a[n,h]·BD₂[h,n,m] across groups at each position h.
func TestMonarchByHand(t *testing.T) {
	lockThread(t)
	for _, c := range []struct{ BT, N, g int }{{5, 4, 3}, {2, 2, 8}, {3, 8, 2}} {
		torch.ManualSeed(9)
		torch.WithScope(func() {
			f := &Monarch{BD1: torch.Randn([]int{c.N, c.g, c.g}), BD2: torch.Randn([]int{c.g, c.N, c.N})}
			y := torch.Randn([]int{c.BT, c.N * c.g})
			got := f.Forward(y).Float64s()
			yv, b1, b2 := y.Float64s(), f.BD1.Float64s(), f.BD2.Float64s()
			D, N, g := c.N*c.g, c.N, c.g
			for tk := 0; tk < c.BT; tk++ {
				a := make([]float64, D)
				for n := 0; n < N; n++ {
					for h := 0; h < g; h++ {
						for k := 0; k < g; k++ {
							a[n*g+h] += yv[tk*D+n*g+k] * b1[(n*g+k)*g+h]
						}
					}
				}
				for m := 0; m < N; m++ {
					for h := 0; h < g; h++ {
						want := 0.0
						for n := 0; n < N; n++ {
							want += a[n*g+h] * b2[(h*N+n)*N+m]
						}
						require.InDelta(t, want, got[tk*D+m*g+h], 1e-4, "token %d, group %d, position %d", tk, m, h)
					}
				}
			}
		})
	}
}

// TestNormScalingKeepsNorm: under scale: norm, ‖z‖ = ‖u‖ per token; under
// const, z's routed gates are N_r·p_j and α = √(D/d_act).
func TestNormScalingKeepsNorm(t *testing.T) {
	lockThread(t)
	c := small()
	torch.ManualSeed(2)
	torch.WithScope(func() {
		u := torch.Randn([]int{30, c.Width})
		r := route(&c, &Router{W: torch.Randn([]int{c.Width, c.Routed()})}, u)
		g := newGating(&c, u, r)
		z := g.scale(u.Mul(g.perDim(g.groupGates(false))))
		require.LessOrEqual(t, maxDiff(z.Norm(2, -1), u.Norm(2, -1)), 1e-4)

		cc := c
		cc.Scale = string(ScaleConst)
		r = route(&cc, &Router{W: torch.Randn([]int{c.Width, c.Routed()})}, u)
		require.LessOrEqual(t, maxDiff(r.Gate, r.P.Gather(1, r.Top).MulScalar(float64(c.Routed()))), 1e-6)
		require.InDelta(t, math.Sqrt(float64(c.Width)/float64(c.ActiveWidth())), newGating(&cc, u, r).alphaConst, 1e-12)
	})
}

// TestConfigErrors: invalid sections name the key and the reason.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Groups = 5 }, "model.groups: N = 5 must be positive and divide width 32"},
		{func(c *Config) { c.TopK = 7 }, "model.topk: K = 7 must be in [1, N_r = 6]"},
		{func(c *Config) { c.Shared = 9 }, "model.shared: N_s = 9 must be in [0, groups = 8]"},
		{func(c *Config) { c.Scale = "sqrt" }, `model.scale: want one of [norm const gate_sum off], got "sqrt"`},
		{func(c *Config) { c.Path = "sparse" }, `model.path: want one of [masked gathered], got "sparse"`},
		{func(c *Config) { c.RouterStd = 0 }, "model.router_std: must be positive"},
		{func(c *Config) { c.HeadDim = 3 }, "model.head_dim: must be even"},
	} {
		cfg := small()
		c.set(&cfg)
		err := cfg.Validate()
		require.Error(t, err)
		require.Contains(t, err.Error(), c.want)
	}
	v := small()
	v.Vanilla, v.TopK = true, 99 // ignored under vanilla
	require.NoError(t, v.Validate())
}
