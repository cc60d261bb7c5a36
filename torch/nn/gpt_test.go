package nn_test

import (
	"math"
	"testing"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
	"github.com/stretchr/testify/require"
)

func tiny() nn.GPTConfig {
	return nn.GPTConfig{Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 4, TiedHead: true}
}

func newGPT(t *testing.T, cfg nn.GPTConfig) *nn.GPT {
	t.Helper()
	torch.ManualSeed(1)
	m, err := nn.NewGPT(cfg)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

func TestGPTParameters(t *testing.T) {
	cfg := tiny()
	m := newGPT(t, cfg)
	names := []string{}
	for _, p := range m.Store.Params() {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{
		"wte.weight", "wpe.weight",
		"blocks.0.ln_1.weight", "blocks.0.ln_1.bias", "blocks.0.ln_2.weight", "blocks.0.ln_2.bias",
		"blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
		"blocks.0.mlp.fc.weight", "blocks.0.mlp.fc.bias", "blocks.0.mlp.proj.weight", "blocks.0.mlp.proj.bias",
		"blocks.1.ln_1.weight", "blocks.1.ln_1.bias", "blocks.1.ln_2.weight", "blocks.1.ln_2.bias",
		"blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "blocks.1.attn.proj.bias",
		"blocks.1.mlp.fc.weight", "blocks.1.mlp.fc.bias", "blocks.1.mlp.proj.weight", "blocks.1.mlp.proj.bias",
		"ln_f.weight", "ln_f.bias",
	}, names)
	C, V, T, L := cfg.Width, cfg.Vocab, cfg.Context, cfg.Layers
	require.Equal(t, V*C+T*C+L*(12*C*C+13*C)+2*C, m.Store.NumParams(nil))

	// Initialisation: N(0, 0.02) weights, residual projections scaled by 1/√(2L).
	std := func(name string) float64 { return m.Store.Get(name).T.Std().Item() }
	torch.WithScope(func() {
		require.InDelta(t, 0.02, std("blocks.0.mlp.fc.weight"), 0.002)
		require.InDelta(t, 0.02/math.Sqrt(4), std("blocks.1.mlp.proj.weight"), 0.001)
		require.Equal(t, 0.0, m.Store.Get("blocks.0.attn.qkv.bias").T.Abs().Sum().Item())
		require.Equal(t, float64(C), m.Store.Get("ln_f.weight").T.Sum().Item())
	})

	// Untied head adds V·C; rotary drops the position table.
	u := newGPT(t, nn.GPTConfig{Vocab: V, Context: T, Width: C, Layers: L, Heads: 4, Positions: "rotary"})
	require.Equal(t, V*C+L*(12*C*C+13*C)+2*C+C*V, u.Store.NumParams(nil))
	require.NotNil(t, u.Store.Get("blocks.0.attn.qkv.weight"))
	require.Nil(t, u.Store.Get("wpe.weight"))
}

func TestGPTConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  nn.GPTConfig
		want string
	}{
		{nn.GPTConfig{Vocab: 8, Context: 4, Width: 30, Layers: 1, Heads: 4}, "not divisible"},
		{nn.GPTConfig{Vocab: 0, Context: 4, Width: 8, Layers: 1, Heads: 1}, "must be positive"},
		{nn.GPTConfig{Vocab: 8, Context: 4, Width: 8, Layers: 1, Heads: 1, Positions: "alibi"}, "positions"},
		{nn.GPTConfig{Vocab: 8, Context: 4, Width: 8, Layers: 1, Heads: 1, Positions: "rotary", RotaryDims: 3}, "rotary_dims"},
		{nn.GPTConfig{Vocab: 8, Context: 4, Width: 8, Layers: 1, Heads: 1, Activation: "swish"}, "activation"},
		{nn.GPTConfig{Vocab: 8, Context: 4, Width: 8, Layers: 1, Heads: 1, Norm: "batchnorm"}, "norm"},
		{nn.GPTConfig{Vocab: 8, Context: 4, Width: 8, Layers: 1, Heads: 1, Dropout: 1}, "dropout"},
	} {
		_, err := nn.NewGPT(c.cfg)
		require.ErrorContains(t, err, c.want)
	}
}

// TestOverfitOneBatch: a tiny GPT memorises one fixed batch.
func TestOverfitOneBatch(t *testing.T) {
	m := newGPT(t, tiny())
	opt, err := optim.NewAdamW(&optim.Group{Params: m.Store.Params(), LR: 3e-3})
	require.NoError(t, err)
	defer opt.Close()
	s := torch.NewScope()
	defer s.Close()
	ids := torch.RandInt(0, 32, []int{4, 16})
	targets := torch.RandInt(0, 32, []int{4, 16})
	var first, last float64
	for step := 0; step < 300; step++ {
		torch.WithScope(func() {
			loss := nn.LMLoss(m.Forward(ids, nil), targets, -100)
			m.Store.ZeroGrad(true)
			loss.Backward()
			opt.Step(1)
			last = loss.Item()
			if step == 0 {
				first = last
			}
		})
		if last < 0.05 {
			break
		}
	}
	t.Logf("loss %.3f -> %.4f", first, last)
	require.InDelta(t, math.Log(32), first, 0.3, "starts near uniform")
	require.Less(t, last, 0.05)
}

// TestKVCacheMatchesFullForward: incremental decoding gives the full
// forward's logits at every position.
func TestKVCacheMatchesFullForward(t *testing.T) {
	cfgs := map[string]nn.GPTConfig{
		"learned":  tiny(),
		"rotary":   {Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 4, Positions: "rotary", RotaryDims: 4, ParallelResidual: true},
		"explicit": {Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 2, ExplicitAttention: true, Norm: "rmsnorm"},
	}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			m := newGPT(t, cfg)
			m.Store.Train(false)
			torch.NoGrad(func() {
				s := torch.NewScope()
				defer s.Close()
				B, T := 3, 12
				ids := torch.RandInt(0, cfg.Vocab, []int{B, T})
				full := m.Forward(ids, nil)
				cache := m.NewKVCache(B, T)
				defer cache.Close()
				// Prefill 5 tokens, then one at a time.
				parts := []*torch.Tensor{m.Forward(ids.Narrow(1, 0, 5), &nn.ForwardOptions{Cache: cache})}
				for i := 5; i < T; i++ {
					parts = append(parts, m.Forward(ids.Narrow(1, i, 1), &nn.ForwardOptions{Cache: cache}))
				}
				require.Equal(t, T, cache.Len)
				inc := torch.Cat(parts, 1)
				d := full.Sub(inc).Abs().Amax().Item()
				t.Logf("max |Δlogits| full vs cached: %.2e", d)
				require.Less(t, d, 1e-5)
			})
		})
	}
}

// TestLeftPaddingMatchesUnpadded: a left-padded row with its key mask and
// positions gives the logits of the same prompt alone.
func TestLeftPaddingMatchesUnpadded(t *testing.T) {
	for _, pos := range []string{"learned", "rotary"} {
		cfg := tiny()
		cfg.Positions = pos
		m := newGPT(t, cfg)
		m.Store.Train(false)
		torch.NoGrad(func() {
			s := torch.NewScope()
			defer s.Close()
			short := []int64{3, 1, 4, 1, 5}
			alone := m.Forward(torch.FromSlice(short, []int{1, 5}), nil)
			padded := torch.FromSlice([]int64{0, 0, 0, 3, 1, 4, 1, 5}, []int{1, 8})
			keys := torch.FromSlice([]bool{false, false, false, true, true, true, true, true}, []int{1, 8})
			positions := torch.FromSlice([]int64{0, 0, 0, 0, 1, 2, 3, 4}, []int{1, 8})
			out := m.Forward(padded, &nn.ForwardOptions{KeyMask: keys, Positions: positions}).Narrow(1, 3, 5)
			require.Less(t, alone.Sub(out).Abs().Amax().Item(), 1e-5, pos)
			require.False(t, out.IsNaN().Any().Item() != 0)
		})
	}
}

func TestHooks(t *testing.T) {
	m := newGPT(t, tiny())
	s := torch.NewScope()
	defer s.Close()
	ids := torch.RandInt(0, 32, []int{2, 8})

	// Reading: every site of the model fires once, with the documented shape.
	seen := map[string][]int{}
	var removes []func()
	for _, site := range m.Sites() {
		removes = append(removes, m.Hooks.Add(site, func(x *torch.Tensor) *torch.Tensor {
			seen[site.String()] = x.Shape()
			return x
		}))
	}
	base := m.Forward(ids, nil)
	require.Len(t, seen, len(m.Sites()))
	require.Equal(t, []int{2, 8, 32}, seen["blocks.1.attn_preproj"])
	require.Equal(t, []int{2, 8, 128}, seen["blocks.0.mlp_mid"])
	require.Equal(t, []int{2, 8, 32}, seen["final"])
	for _, r := range removes {
		r()
	}
	require.False(t, m.Hooks.Has(nn.Site{Layer: 0, Point: nn.MLPOut}))

	// Replacing: zeroing the MLP output equals a model whose MLP projections are zero.
	for i := range m.Blocks {
		m.Hooks.Add(nn.Site{Layer: i, Point: nn.MLPOut}, func(x *torch.Tensor) *torch.Tensor { return x.MulScalar(0) })
	}
	hooked := m.Forward(ids, nil)
	m.Hooks.Clear()
	for _, b := range m.Blocks {
		b.MLP.Proj.Weight.Fill(0)
		b.MLP.Proj.Bias.Fill(0)
	}
	zeroed := m.Forward(ids, nil)
	require.Less(t, hooked.Sub(zeroed).Abs().Amax().Item(), 1e-6)
	require.Greater(t, base.Sub(zeroed).Abs().Amax().Item(), 1e-3, "the hook changed the output")

	for _, site := range m.Sites() {
		back, err := nn.ParseSite(site.String())
		require.NoError(t, err)
		require.Equal(t, site, back)
	}
	_, err := nn.ParseSite("blocks.x.mlp")
	require.Error(t, err)
	_, err = nn.ParseSite("blocks.0.bogus")
	require.ErrorContains(t, err, "unknown insertion point")
}

// TestExplicitAttentionMatchesFused and exposes the attention weights.
func TestExplicitAttentionMatchesFused(t *testing.T) {
	cfg := tiny()
	m := newGPT(t, cfg)
	s := torch.NewScope()
	defer s.Close()
	ids := torch.RandInt(0, 32, []int{2, 10})
	fused := m.Forward(ids, nil)
	for _, b := range m.Blocks {
		b.Attn.Explicit = true
	}
	var weights *torch.Tensor
	m.Hooks.Add(nn.Site{Layer: 0, Point: nn.AttnWeights}, func(x *torch.Tensor) *torch.Tensor { weights = x; return x })
	explicit := m.Forward(ids, nil)
	require.Less(t, fused.Sub(explicit).Abs().Amax().Item(), 1e-5)
	require.Equal(t, []int{2, 4, 10, 10}, weights.Shape())
	// Rows sum to one and nothing attends to the future.
	require.InDelta(t, 0, weights.Sum(-1).SubScalar(1).Abs().Amax().Item(), 1e-5)
	require.Equal(t, 0.0, weights.Triu(1).Abs().Sum().Item())
}

func TestGenerate(t *testing.T) {
	m := newGPT(t, tiny())
	s := torch.NewScope()
	defer s.Close()
	prompts := [][]int64{{1, 2, 3}, {4, 5, 6, 7, 8}}
	out, err := m.Generate(prompts, nn.GenerateOptions{MaxNew: 6, Stop: -1})
	require.NoError(t, err)
	// Greedy decoding with the cache equals argmax over full forwards without it.
	torch.NoGrad(func() {
		for b, p := range prompts {
			seq := append([]int64{}, p...)
			for i := 0; i < 6; i++ {
				logits := m.Forward(torch.FromSlice(seq, []int{1, len(seq)}), nil)
				seq = append(seq, logits.Select(1, -1).Argmax(-1, false).Int64s()[0])
			}
			require.Equal(t, seq[len(p):], out[b], "row %d", b)
		}
	})
	// A stop token ends its row at its first occurrence and is kept.
	stop := out[0][len(out[0])-1]
	first := 0
	for out[0][first] != stop {
		first++
	}
	out2, err := m.Generate(prompts[:1], nn.GenerateOptions{MaxNew: 6, Stop: stop})
	require.NoError(t, err)
	require.Equal(t, out[0][:first+1], out2[0])
	// Sampling with top-k 1 is greedy; temperature sampling stays in the vocabulary.
	k1, err := m.Generate(prompts, nn.GenerateOptions{MaxNew: 6, Stop: -1, Sampling: nn.Sampling{Temperature: 1, TopK: 1}})
	require.NoError(t, err)
	require.Equal(t, out, k1)
	torch.ManualSeed(5)
	hot, err := m.Generate(prompts, nn.GenerateOptions{MaxNew: 6, Stop: -1, Sampling: nn.Sampling{Temperature: 2}})
	require.NoError(t, err)
	for _, row := range hot {
		for _, id := range row {
			require.True(t, id >= 0 && id < 32)
		}
	}
	_, err = m.Generate([][]int64{make([]int64, 14)}, nn.GenerateOptions{MaxNew: 6})
	require.ErrorContains(t, err, "exceeds the context")
	require.True(t, m.Store.Training(), "Generate restores training mode")
}

func TestLoadStateDict(t *testing.T) {
	a := newGPT(t, tiny())
	b := newGPT(t, nn.GPTConfig{Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 4, TiedHead: true, InitStd: 0.5})
	src := map[string]*torch.Tensor{}
	for _, p := range a.Store.StateDict() {
		src[p.Name] = p.T
	}
	require.NoError(t, b.Store.LoadStateDict(src, nn.LoadOptions{}))
	torch.WithScope(func() {
		require.Equal(t, a.Store.Get("blocks.1.mlp.fc.weight").T.Float32s(), b.Store.Get("blocks.1.mlp.fc.weight").T.Float32s())
	})

	// Differences are all named, and nothing is copied.
	s := torch.NewScope()
	defer s.Close()
	bad := map[string]*torch.Tensor{}
	for k, v := range src {
		bad[k] = v
	}
	delete(bad, "ln_f.bias")
	bad["blocks.0.attn.qkv.weight"] = torch.Zeros([]int{3, 3})
	bad["wpe.weight"] = torch.Zeros([]int{16, 32}, torch.Float64)
	bad["extra.weight"] = torch.Zeros([]int{1})
	before := b.Store.Get("wte.weight").T.Float32s()
	err := b.Store.LoadStateDict(bad, nn.LoadOptions{})
	require.ErrorContains(t, err, "missing ln_f.bias")
	require.ErrorContains(t, err, "blocks.0.attn.qkv.weight: shape [3 3], model has [96 32]")
	require.ErrorContains(t, err, "wpe.weight: dtype float64, model has float32")
	require.ErrorContains(t, err, "unexpected extra.weight")
	require.Equal(t, before, b.Store.Get("wte.weight").T.Float32s())
	// Relaxed loading for inserted modules.
	delete(bad, "blocks.0.attn.qkv.weight")
	delete(bad, "wpe.weight")
	err = b.Store.LoadStateDict(bad, nn.LoadOptions{
		AllowMissing:    func(n string) bool { return n == "ln_f.bias" || n == "blocks.0.attn.qkv.weight" || n == "wpe.weight" },
		AllowUnexpected: func(n string) bool { return n == "extra.weight" },
	})
	require.NoError(t, err)
}

// TestTrainingDoesNotLeak: 500 GPT training steps return the live-handle
// counter to its baseline.
func TestTrainingDoesNotLeak(t *testing.T) {
	torch.RunLocked(func() {
		baseline := torch.LiveTensors()
		m, err := nn.NewGPT(nn.GPTConfig{Vocab: 32, Context: 16, Width: 32, Layers: 2, Heads: 4, Dropout: 0.1})
		require.NoError(t, err)
		opt, err := optim.NewAdamW(&optim.Group{Params: m.Store.Params(), LR: 1e-3, WeightDecay: 0.1})
		require.NoError(t, err)
		sched := optim.Cosine{Warmup: 10, Total: 500}
		data := torch.RandInt(0, 32, []int{8, 17}).Retain()
		afterSetup := torch.LiveTensors()
		for step := 0; step < 500; step++ {
			torch.WithScope(func() {
				x, y := data.Narrow(1, 0, 16), data.Narrow(1, 1, 16)
				loss := nn.LMLoss(m.Forward(x, nil), y, -100)
				m.Store.ZeroGrad(true)
				loss.Backward()
				optim.ClipGradNorm(m.Store.Params(), 1)
				opt.Step(sched.Factor(step))
			})
		}
		require.Equal(t, afterSetup, torch.LiveTensors(), "steps leave no handles behind")
		data.Free()
		opt.Close()
		m.Close()
		t.Logf("live handles: baseline %d, with model and optimizer %d, after 500 steps and Close %d", baseline, afterSetup, torch.LiveTensors())
		require.Equal(t, baseline, torch.LiveTensors())
	})
}
