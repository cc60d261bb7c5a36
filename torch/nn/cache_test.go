package nn_test

import (
	"math"
	"testing"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/stretchr/testify/require"
)

// byHand recomputes every activation of a GPT-2-style nn.GPT (learned
// positions, LayerNorm, GELU, sequential blocks, tied head) from its
// parameters with plain tensor ops, under TransformerLens's names. zeroAttn
// lists layers whose attention output is replaced by zeros.
func byHand(m *nn.GPT, ids *torch.Tensor, zeroAttn map[int]bool) map[string]*torch.Tensor {
	c := m.Config
	B, T, C, H := ids.Size(0), ids.Size(1), c.Width, c.Heads
	hd := C / H
	p := func(name string) *torch.Tensor { return m.Store.Get(name).T.Detach() }
	ln := func(x *torch.Tensor, prefix string) *torch.Tensor {
		mu := x.MeanKeep(-1)
		xc := x.Sub(mu)
		v := xc.Square().MeanKeep(-1)
		return xc.Div(v.AddScalar(c.NormEps).Sqrt()).Mul(p(prefix + ".weight")).Add(p(prefix + ".bias"))
	}
	lin := func(x *torch.Tensor, prefix string) *torch.Tensor {
		return x.Matmul(p(prefix + ".weight").T()).Add(p(prefix + ".bias"))
	}
	out := map[string]*torch.Tensor{}
	embed := p("wte.weight").IndexSelect(0, ids.Reshape(-1)).Reshape(B, T, C)
	pos := p("wpe.weight").Narrow(0, 0, T).Unsqueeze(0).Expand(B, T, C)
	out["hook_embed"], out["hook_pos_embed"] = embed, pos
	x := embed.Add(pos)
	future := torch.Ones([]int{T, T}, torch.Bool).Triu(1)
	for l := 0; l < c.Layers; l++ {
		b := "blocks." + string(rune('0'+l)) + "."
		out[b+"hook_resid_pre"] = x
		h := ln(x, b+"ln_1")
		out[b+"ln1.hook_normalized"] = h
		qkv := lin(h, b+"attn.qkv").View(B, T, 3, H, hd)
		q, k, v := qkv.Select(2, 0), qkv.Select(2, 1), qkv.Select(2, 2) // [B, T, H, hd]
		out[b+"attn.hook_q"], out[b+"attn.hook_k"], out[b+"attn.hook_v"] = q, k, v
		scores := torch.Einsum("bqhd,bkhd->bhqk", q, k).MulScalar(1/math.Sqrt(float64(hd))).MaskedFill(future, math.Inf(-1))
		out[b+"attn.hook_attn_scores"] = scores
		pattern := scores.Softmax(-1)
		out[b+"attn.hook_pattern"] = pattern
		z := torch.Einsum("bhqk,bkhd->bqhd", pattern, v)
		out[b+"attn.hook_z"] = z
		out[b+"attn_preproj"] = z.Reshape(B, T, C)
		attnOut := lin(z.Reshape(B, T, C), b+"attn.proj")
		if zeroAttn[l] {
			attnOut = attnOut.MulScalar(0)
		}
		out[b+"hook_attn_out"] = attnOut
		x = x.Add(attnOut)
		out[b+"hook_resid_mid"] = x
		h = ln(x, b+"ln_2")
		out[b+"ln2.hook_normalized"] = h
		pre := lin(h, b+"mlp.fc")
		out[b+"mlp.hook_pre"] = pre
		post := pre.MulScalar(0.5).Mul(pre.DivScalar(math.Sqrt2).Erf().AddScalar(1)) // exact GELU
		out[b+"mlp.hook_post"] = post
		mlpOut := lin(post, b+"mlp.proj")
		out[b+"hook_mlp_out"] = mlpOut
		x = x.Add(mlpOut)
		out[b+"hook_resid_post"] = x
	}
	final := ln(x, "ln_f")
	out["ln_final.hook_normalized"] = final
	out["logits"] = final.Matmul(p("wte.weight").T())
	return out
}

func maxDiff(a, b *torch.Tensor) float64 {
	return a.To(torch.Float64).Sub(b.To(torch.Float64)).Abs().Amax().Item()
}

// TestRunWithCacheMatchesByHand: every site of a 2-layer model caches the
// value recomputed by hand from the parameters.
func TestRunWithCacheMatchesByHand(t *testing.T) {
	m := newGPT(t, tiny())
	m.Store.Train(false)
	s := torch.NewScope()
	defer s.Close()
	ids := torch.RandInt(0, 32, []int{2, 9})
	want := byHand(m, ids, nil)

	logits, cache := m.RunWithCache(ids, nil)
	defer cache.Close()
	worst, worstSite := 0.0, ""
	sites := m.AllSites()
	require.Len(t, sites, 2+2*16+1, "hook_embed, hook_pos_embed, 16 per block, ln_final")
	require.Equal(t, len(sites), cache.Len(), "every site fired: %v", cache.Names())
	for _, site := range sites {
		got := cache.Get(site)
		require.NotNil(t, got, site.String())
		require.Equal(t, torch.CPU.Type, got.Device().Type)
		require.False(t, got.RequiresGrad())
		w, ok := want[site.String()]
		require.True(t, ok, "no hand value for %s", site)
		require.Equal(t, w.Shape(), got.Shape(), site.String())
		if site.Point == nn.AttnScores { // −∞ where masked
			got = got.MaskedFill(got.IsFinite().LogicalNot(), 0)
			w = w.MaskedFill(w.IsFinite().LogicalNot(), 0)
		}
		d := maxDiff(got, w)
		require.Less(t, d, 2e-5, site.String())
		if d > worst {
			worst, worstSite = d, site.String()
		}
	}
	t.Logf("%d sites match the values by hand; largest difference %.2g at %s", len(sites), worst, worstSite)
	require.Less(t, maxDiff(logits, want["logits"]), 2e-5)
	require.Equal(t, []int{2, 9, 4, 8}, cache.Get(nn.Site{Layer: 1, Point: nn.AttnQ}).Shape())
	require.Equal(t, []int{2, 4, 9, 9}, cache.Get(nn.Site{Layer: 1, Point: nn.AttnPattern}).Shape())

	// Aliases and names reach the same tensors.
	a, err := cache.Lookup("blocks.1.residual")
	require.NoError(t, err)
	require.Same(t, a, cache.Get(nn.Site{Layer: 1, Point: nn.ResidPost}))
	_, err = cache.Lookup("blocks.0.attn.hook_rot_q")
	require.ErrorContains(t, err, "not in the cache")
	require.Equal(t, 0, m.Hooks.Len(), "caching hooks are removed")
}

// TestRunWithCacheLeavesModelUnchanged: with no hook, or with hooks that
// only read (scores and pattern excepted, which switch to explicit
// attention), the logits are bit-identical to a plain forward pass.
func TestRunWithCacheLeavesModelUnchanged(t *testing.T) {
	for _, cfg := range []nn.GPTConfig{
		tiny(),
		{Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 4, KVHeads: 2, Positions: "rotary", GatedMLP: true,
			Activation: nn.SiLU, Norm: "rmsnorm", NoBias: true},
		{Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 4, ParallelResidual: true},
	} {
		m := newGPT(t, cfg)
		m.Store.Train(false)
		torch.WithScope(func() {
			ids := torch.RandInt(0, 32, []int{2, 7})
			plain := m.Forward(ids, nil)
			noExplicit := func(s nn.Site) bool { return s.Point != nn.AttnScores && s.Point != nn.AttnPattern }
			logits, cache := m.RunWithCache(ids, noExplicit)
			require.Equal(t, 0.0, maxDiff(plain, logits), "bit-identical")
			require.Equal(t, len(m.AllSites())-2*cfg.Layers, cache.Len(), cache.Names())
			if cfg.Positions == "rotary" {
				// hook_rot_q is hook_q after the rotary embedding; GQA keys have KVHeads heads.
				q := cache.Get(nn.Site{Layer: 0, Point: nn.AttnQ})
				rot := m.Blocks[0].Attn.Rotary.Apply(q.Transpose(1, 2), 0, nil).Transpose(1, 2)
				require.Less(t, maxDiff(rot, cache.Get(nn.Site{Layer: 0, Point: nn.AttnRotQ})), 1e-6)
				require.Equal(t, []int{2, 7, 2, 8}, cache.Get(nn.Site{Layer: 0, Point: nn.AttnK}).Shape())
				// A gated MLP: post = silu(pre) ⊙ pre_linear.
				pre, lin := cache.Get(nn.Site{Layer: 1, Point: nn.MLPPre}), cache.Get(nn.Site{Layer: 1, Point: nn.MLPPreLinear})
				require.Less(t, maxDiff(pre.Silu().Mul(lin), cache.Get(nn.Site{Layer: 1, Point: nn.MLPPost})), 1e-6)
			}
			cache.Close()
			// The pattern switches those blocks to explicit attention: equal within float error.
			logits, cache = m.RunWithCache(ids, nn.PointFilter(nn.AttnPattern))
			defer cache.Close()
			require.Less(t, maxDiff(plain, logits), 1e-5)
			require.Equal(t, cfg.Layers, cache.Len())
			require.False(t, m.Blocks[0].Attn.Explicit, "the default stays fused")
		})
	}
}

// TestPatching: a hook that overwrites a site changes downstream exactly as
// the computation by hand says.
func TestPatching(t *testing.T) {
	m := newGPT(t, tiny())
	m.Store.Train(false)
	s := torch.NewScope()
	defer s.Close()
	ids := torch.RandInt(0, 32, []int{2, 9})
	other := torch.RandInt(0, 32, []int{2, 9})

	for _, c := range []struct {
		name  string
		hooks func() []nn.SiteHook
		want  func() *torch.Tensor
	}{
		{"zero attention output of layer 1",
			func() []nn.SiteHook {
				return []nn.SiteHook{{Site: nn.Site{Layer: 1, Point: nn.HookAttnOut},
					Hook: func(x *torch.Tensor) *torch.Tensor { return torch.ZerosLike(x) }}}
			},
			func() *torch.Tensor { return byHand(m, ids, map[int]bool{1: true})["logits"] }},
		{"last resid_post from another input",
			func() []nn.SiteHook {
				_, c := m.RunWithCache(other, nn.SiteNames("blocks.1.hook_resid_post"))
				defer c.Close()
				return []nn.SiteHook{{Site: nn.Site{Layer: 1, Point: nn.ResidPost},
					Hook: nn.Patch(c.Get(nn.Site{Layer: 1, Point: nn.Residual}).Clone())}}
			},
			func() *torch.Tensor { return m.Forward(other, nil) }},
		{"pattern of layer 0 uniform over the past",
			func() []nn.SiteHook {
				uniform := torch.Ones([]int{9, 9}).Tril(0)
				uniform = uniform.Div(uniform.SumKeep(-1))
				return []nn.SiteHook{{Site: nn.Site{Layer: 0, Point: nn.AttnPattern}, Hook: nn.Patch(uniform)}}
			},
			func() *torch.Tensor {
				// Uniform attention averages the values of the past: patch z instead.
				var v *torch.Tensor
				remove := m.Hooks.Add(nn.Site{Layer: 0, Point: nn.AttnV}, func(x *torch.Tensor) *torch.Tensor { v = x; return x })
				defer remove()
				mean := torch.Ones([]int{9, 9}).Tril(0)
				mean = mean.Div(mean.SumKeep(-1))
				z := func(x *torch.Tensor) *torch.Tensor { return torch.Einsum("qk,bkhd->bqhd", mean, v) }
				return m.RunWithHooks(ids, nn.SiteHook{Site: nn.Site{Layer: 0, Point: nn.AttnZ}, Hook: z})
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hooks := c.hooks()
			got := m.RunWithHooks(ids, hooks...)
			require.Equal(t, 0, m.Hooks.Len())
			require.Less(t, maxDiff(got, c.want()), 2e-5)
			require.Greater(t, maxDiff(got, m.Forward(ids, nil)), 1e-4, "the patch matters")
		})
	}
}

func TestSiteNames(t *testing.T) {
	for _, c := range []struct {
		name string
		want nn.Site
	}{
		{"hook_embed", nn.Site{Layer: -1, Point: nn.HookEmbed}},
		{"ln_final.hook_normalized", nn.Site{Layer: -1, Point: nn.LNFinal}},
		{"final", nn.Site{Layer: -1, Point: nn.Final}},
		{"blocks.3.attn.hook_q", nn.Site{Layer: 3, Point: nn.AttnQ}},
		{"blocks.0.ln1.hook_normalized", nn.Site{Layer: 0, Point: nn.LN1Normalized}},
		{"blocks.1.hook_resid_post", nn.Site{Layer: 1, Point: nn.ResidPost}},
		{"blocks.1.residual", nn.Site{Layer: 1, Point: nn.Residual}},
	} {
		got, err := nn.ParseSite(c.name)
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got)
		require.Equal(t, c.name, got.String())
	}
	require.True(t, nn.Site{Layer: 1, Point: nn.ResidPost}.Same(nn.Site{Layer: 1, Point: nn.Residual}))
	require.Equal(t, "blocks.2.mlp.hook_post", nn.Site{Layer: 2, Point: nn.MLPMid}.TLName())
	require.Equal(t, "blocks.2.attn_preproj", nn.Site{Layer: 2, Point: nn.AttnPreProj}.TLName())

	// Hooks added under a name fire for its alias.
	m := newGPT(t, tiny())
	fired := 0
	m.Hooks.Add(nn.Site{Layer: 0, Point: nn.HookMLPOut}, func(x *torch.Tensor) *torch.Tensor { fired++; return x })
	require.True(t, m.Hooks.Has(nn.Site{Layer: 0, Point: nn.MLPOut}))
	torch.WithScope(func() { m.Forward(torch.RandInt(0, 32, []int{1, 4}), nil) })
	require.Equal(t, 1, fired)
}
