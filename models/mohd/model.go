// Package mohd is the Mixture of Hidden Dimensions family (Chen et al.,
// "Mixture of Hidden-Dimensions Transformer", arXiv 2412.05644; ICML 2025):
// model.family: mohd trains a decoder-only Transformer whose residual width D
// is split into N groups of g = D/N dimensions. N_s shared groups are always
// on; a router per sublayer picks K of the N_r = N − N_s routed groups per
// token. Each attention and FFN sublayer reads and writes only the token's
// active groups (d_act = (N_s + K)·g of D), activation scaling makes up for
// the dimensions left out, and group fusion mixes information across groups.
//
// The paper's body was not available; this is the reconstruction of the
// research brief (shared/research/mohd.md §2.2). What it takes from the paper
// [V]: sparsity over the hidden (residual) dimensions, shared sub-dimensions
// always active plus per-token routed ones, a routing mechanism, activation
// scaling and group fusion applied to sparsified attention and FFN
// sublayers, compression (D = d, fewer activated parameters) and expansion
// (D = m·d, equal activated parameters), LLaMA blocks. What is ours [R],
// each a recipe option with the default first: the scaling formula
// (scale: norm | const | off), the Monarch factorisation of fusion applied to
// the sublayer output (fusion: monarch | off) and its write-back
// (fusion_write: dense | masked), the router (softmax over the routed groups
// of W_r·RMSNorm(x), top-K, init std router_std; router: sublayer | layer;
// renorm: false | true), the load-balance loss (balance: λ = 0.01), the
// shared groups being the first N_s, and dense embedding and head. What comes
// from a third party's reading [T]: N = 16 with about 3/4 of the active
// groups shared (our defaults N_s = 6, K = 2 of N_r = 10, δ = 0.5, as in the
// brief's §7 runs), and the scale: gate_sum option. vanilla: true builds the
// dense block of the same code for the baselines.
//
// Per sublayer s of a block, with x the residual stream [B, T, D]:
//
//	u = RMSNorm_s(x)
//	p = softmax(u W_r),  T_t = TopK(p_t, K)               (router)
//	w_j = 1 (j shared), p_j (j ∈ T_t), 0 otherwise;  m = 1[w > 0]
//	z = α·(w ⊙ u),  α = ‖u‖/(‖w ⊙ u‖ + ε)                  (activation scaling)
//	attention: y = m ⊙ (Attn(z W_Q, z W_K, z W_V) W_O)     (d_a = base width)
//	FFN:       y = m ⊙ ((SiLU(z W_1) ⊙ z W_3) W_2)        (d_ff = base width)
//	ŷ = y + Pᵀ·BD₂·P·BD₁·y                                (group fusion)
//	x ← x + ŷ
//
// Two execution paths compute the sparse projections (path: masked |
// gathered): masked multiplies D-wide matrices with zeroed inactive groups
// (the reference); gathered indexes only the active rows of the weights,
// MoE-style, so that its cost follows d_act.
package mohd

import (
	"fmt"
	"math"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Model is a MoHD (or, with vanilla: true, a dense LLaMA) language model:
// token embedding V×D, blocks, final RMSNorm over D, LM head D×V.
type Model struct {
	Config Config
	Embed  *nn.Embedding
	Rotary *nn.Rotary
	Blocks []*Block
	Norm   *nn.RMSNorm
	Head   *nn.Linear
	// Observe, when set, sees every sublayer of every Forward: the analysis
	// hook (activation flow, router choices).
	Observe func(Observation)
	// Stats, when set, accumulates every router's load and choices.
	Stats *RouterStats
	// Hooks read or replace activations at the sites AllSites lists, with
	// TransformerLens's names (see nn.Hooks and nn.RunWithCache).
	Hooks nn.Hooks
	store *nn.Store
	// balance holds each router's N_r·Σ_j f_j·P̄_j of the last training Forward.
	balance []*torch.Tensor
}

// Block is one pre-norm layer: x ← x + Attn(x); x ← x + FFN(x).
type Block struct {
	Layer int
	Attn  *Attention
	FFN   *FFN
}

// Sublayer is what attention and the FFN share: the pre-norm, the router
// (nil when no group is routed, or when the FFN reuses the attention's
// choice under router: layer) and the fusion (nil when off).
type Sublayer struct {
	Name   string // "attn" or "ffn"
	Norm   *nn.RMSNorm
	Router *Router
	Fusion *Monarch
	cfg    *Config
}

// Attention is MoHD causal self-attention: Q, K and V read the active groups
// of z, the output projection writes only the active groups.
type Attention struct {
	Sublayer
	WQKV *torch.Tensor // [D, 3·d_a]: W_Q | W_K | W_V, rows are input dimensions
	WO   *torch.Tensor // [D, d_a]: W_Oᵀ, rows are output dimensions
}

// FFN is the MoHD SwiGLU feed-forward sublayer.
type FFN struct {
	Sublayer
	W13 *torch.Tensor // [D, 2·d_ff]: W_1 | W_3, rows are input dimensions
	W2  *torch.Tensor // [D, d_ff]: W_2ᵀ, rows are output dimensions
}

// Router scores the routed groups from a sublayer's normed input.
type Router struct {
	W *torch.Tensor // [D, N_r]
}

// Monarch is the group fusion F(y) = Pᵀ·BD₂·P·BD₁·y.
type Monarch struct {
	BD1 *torch.Tensor // [N, g, g]: N blocks mixing within a group
	BD2 *torch.Tensor // [g, N, N]: g blocks mixing across groups
}

// Observation is one sublayer's state during a Forward, for analyses. The
// tensors belong to the Forward's scope.
type Observation struct {
	Layer    int
	Sublayer string        // "attn" or "ffn"
	X        *torch.Tensor // residual stream entering the sublayer [B, T, D]
	U        *torch.Tensor // normed input u [B, T, D]
	Route    *Route        // the routing used (nil when nothing is routed)
}

// NewModel builds a model in a new store: weights from N(0, init_std²),
// projections into the residual stream from N(0, init_std²/(2·layers)),
// routers from N(0, router_std²), BD₁ from N(0, 1/g) and BD₂ = 0, unit
// norms. Seed libtorch first for reproducibility.
func NewModel(cfg Config) (*Model, error) {
	cfg.resolve()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := nn.NewStore()
	root := s.Root()
	m := &Model{Config: cfg, store: s}
	c := &m.Config
	D, std, projStd := c.Width, c.InitStd, nn.ResidualStd(c.InitStd, c.Layers)
	m.Embed = nn.NewEmbedding(root.Sub("embed"), c.Vocab, D, std)
	m.Rotary = nn.NewRotary(root.Sub("rotary"), c.HeadDim, c.Context, c.RotaryBase)
	sub := func(p nn.Path, name string, router bool) Sublayer {
		sl := Sublayer{Name: name, Norm: nn.NewRMSNorm(p.Sub("norm"), D, c.NormEps), cfg: c}
		if router {
			sl.Router = &Router{W: p.Sub("router").Param("weight", torch.Empty([]int{D, c.Routed()}).Normal(0, c.RouterStd))}
		}
		if Fusion(c.Fusion) == FusionMonarch {
			N, g := c.Groups, c.G()
			f := p.Sub("fusion")
			sl.Fusion = &Monarch{
				BD1: f.Param("bd1", torch.Empty([]int{N, g, g}).Normal(0, 1/math.Sqrt(float64(g)))),
				BD2: f.Param("bd2", torch.Zeros([]int{g, N, N})),
			}
		}
		return sl
	}
	for i := 0; i < c.Layers; i++ {
		p := root.Sub("blocks").Index(i)
		pa, pf := p.Sub("attn"), p.Sub("ffn")
		b := &Block{Layer: i}
		b.Attn = &Attention{Sublayer: sub(pa, "attn", c.routers() > 0),
			WQKV: pa.Param("wqkv", torch.Empty([]int{D, 3 * c.AttnWidth()}).Normal(0, std)),
			WO:   pa.Param("wo", torch.Empty([]int{D, c.AttnWidth()}).Normal(0, projStd)),
		}
		b.FFN = &FFN{Sublayer: sub(pf, "ffn", c.routers() > 1),
			W13: pf.Param("w13", torch.Empty([]int{D, 2 * c.FFN}).Normal(0, std)),
			W2:  pf.Param("w2", torch.Empty([]int{D, c.FFN}).Normal(0, projStd)),
		}
		m.Blocks = append(m.Blocks, b)
	}
	m.Norm = nn.NewRMSNorm(root.Sub("norm"), D, c.NormEps)
	m.Head = nn.NewLinear(root.Sub("head"), D, c.Vocab, false, std)
	return m, nil
}

// Store implements lm.Model.
func (m *Model) Store() *nn.Store { return m.store }

// Close frees the parameters.
func (m *Model) Close() { m.store.Close() }

// Forward maps token ids [B, T] (int64) to logits [B, T, V].
func (m *Model) Forward(ids *torch.Tensor) *torch.Tensor {
	B, T := ids.Size(0), ids.Size(1)
	if T > m.Config.Context {
		panic(&torch.Error{Op: "mohd", Kind: torch.KindShape,
			Msg: fmt.Sprintf("sequence of %d positions exceeds the context %d", T, m.Config.Context)})
	}
	m.balance = m.balance[:0]
	x := m.Hooks.Apply(nn.Site{Layer: -1, Point: nn.HookEmbed}, m.Embed.Forward(ids))
	for _, b := range m.Blocks {
		var r *Route
		x = m.Hooks.Apply(nn.Site{Layer: b.Layer, Point: nn.ResidPre}, x)
		x, r = b.Attn.Forward(m, b.Layer, x, B, T, nil)
		x = m.Hooks.Apply(nn.Site{Layer: b.Layer, Point: nn.ResidMid}, x)
		if b.FFN.Router != nil {
			r = nil
		}
		x, _ = b.FFN.Forward(m, b.Layer, x, B, T, r)
		x = m.Hooks.Apply(nn.Site{Layer: b.Layer, Point: nn.ResidPost}, x)
	}
	return m.Head.Forward(m.Hooks.Apply(nn.Site{Layer: -1, Point: nn.LNFinal}, m.Norm.Forward(x)))
}

// ModelHooks implements nn.Hookable.
func (m *Model) ModelHooks() *nn.Hooks { return &m.Hooks }

// AllSites implements nn.Hookable: hook_embed; per block hook_resid_pre,
// hook_attn_out (the fused sublayer output ŷ added to the residual stream),
// hook_resid_mid, hook_mlp_out (the FFN's ŷ) and hook_resid_post; and
// ln_final.hook_normalized. The sites inside a sublayer (q, k, v, z, the MLP
// hidden) are not exposed: they live on the active groups only.
func (m *Model) AllSites() []nn.Site {
	out := []nn.Site{{Layer: -1, Point: nn.HookEmbed}}
	for i := range m.Blocks {
		for _, p := range []nn.Point{nn.ResidPre, nn.HookAttnOut, nn.ResidMid, nn.HookMLPOut, nn.ResidPost} {
			out = append(out, nn.Site{Layer: i, Point: p})
		}
	}
	return append(out, nn.Site{Layer: -1, Point: nn.LNFinal})
}

// begin normalises the sublayer input, routes it (or reuses shared, when
// given) and reports the observation.
func (s *Sublayer) begin(m *Model, layer int, x *torch.Tensor, shared *Route) (u *torch.Tensor, g *gating) {
	B, T, D := x.Size(0), x.Size(1), x.Size(2)
	u = s.Norm.Forward(x)
	uf := u.Reshape(B*T, D)
	r := shared
	if s.Router != nil {
		r = route(s.cfg, s.Router, uf)
		if m.Stats != nil {
			m.Stats.add(fmt.Sprintf("%d.%s", layer, s.Name), r, B, T)
		}
		if s.cfg.Balance > 0 && torch.GradEnabled() {
			m.balance = append(m.balance, r.balanceLoss())
		}
	}
	if m.Observe != nil {
		m.Observe(Observation{Layer: layer, Sublayer: s.Name, X: x, U: u, Route: r})
	}
	return uf, newGating(s.cfg, uf, r)
}

// end fuses the sublayer output y [BT, D] and adds it to the residual x;
// the hooks of the sublayer's output site (hook_attn_out, hook_mlp_out) see
// the fused output [B, T, D].
func (s *Sublayer) end(m *Model, layer int, x, y *torch.Tensor, g *gating) *torch.Tensor {
	if s.Fusion != nil {
		f := s.Fusion.Forward(y)
		if Write(s.cfg.FusionWrite) == WriteMasked && g.route != nil {
			f = f.Mul(g.maskD())
		}
		y = y.Add(f)
	}
	site := nn.Site{Layer: layer, Point: nn.AttnOut}
	if s.Name != "attn" {
		site.Point = nn.MLPOut
	}
	return x.Add(m.Hooks.Apply(site, y.View(x.Shape()...)))
}

// Forward is x + ŷ for attention over x [B, T, D]; it returns the route it
// used (for the FFN under router: layer).
func (a *Attention) Forward(m *Model, layer int, x *torch.Tensor, B, T int, shared *Route) (*torch.Tensor, *Route) {
	c := a.cfg
	u, g := a.begin(m, layer, x, shared)
	H, hd := c.Heads, c.HeadDim
	qkv := g.in(u, a.WQKV).View(B, T, 3, H, hd).Permute(2, 0, 3, 1, 4).Unbind(0) // 3 × [B, H, T, hd]
	q := m.Rotary.Apply(qkv[0], 0, nil)
	k := m.Rotary.Apply(qkv[1], 0, nil)
	o := torch.Attention(q, k, qkv[2], nil, 0, true) // [B, H, T, hd]
	o = o.Transpose(1, 2).Reshape(B*T, H*hd)
	return a.end(m, layer, x, g.out(o, a.WO), g), g.route
}

// Forward is x + ŷ for the SwiGLU FFN over x [B, T, D].
func (f *FFN) Forward(m *Model, layer int, x *torch.Tensor, B, T int, shared *Route) (*torch.Tensor, *Route) {
	u, g := f.begin(m, layer, x, shared)
	h := torch.SwiGLU(g.in(u, f.W13)) // SiLU(z W_1) ⊙ z W_3
	return f.end(m, layer, x, g.out(h, f.W2), g), g.route
}

// Forward computes F(y) = Pᵀ·BD₂·P·BD₁·y for y [BT, D] in N groups (N =
// BD₁'s first dimension): BD₁ within each group, then P, BD₂ across the
// groups at each position and Pᵀ, in one node (torch.Monarch; on the CPU
// the shim's own loops, elsewhere two batched GEMMs).
func (f *Monarch) Forward(y *torch.Tensor) *torch.Tensor {
	return torch.Monarch(y, f.BD1, f.BD2)
}

// AuxLoss implements lm.AuxLosser: λ times the mean over routers of the
// load-balance loss N_r·Σ_j f_j·P̄_j of the last training Forward.
func (m *Model) AuxLoss() (*torch.Tensor, experiment.Logs) {
	if len(m.balance) == 0 {
		return nil, nil
	}
	l := torch.Stack(m.balance, 0).Mean()
	return l.MulScalar(m.Config.Balance), experiment.Logs{"balance": l.Item()}
}
