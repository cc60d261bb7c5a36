package nn_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// optionConfigs exercise the options of the Hugging Face architectures:
// grouped-query attention, local windows, gated MLPs, per-group biases and
// the attention scale.
func optionConfigs() map[string]nn.GPTConfig {
	llama := nn.GPTConfig{Vocab: 32, Context: 24, Width: 32, Layers: 2, Heads: 4, KVHeads: 2, Positions: "rotary",
		Norm: "rmsnorm", GatedMLP: true, Activation: nn.SiLU, NoBias: true, MLPWidth: 40}
	qwen := llama
	qwen.KVHeads, qwen.QKVBias, qwen.Windows, qwen.TiedHead = 1, nn.BiasOn, []int{0, 5}, true
	neo := nn.GPTConfig{Vocab: 32, Context: 24, Width: 32, Layers: 2, Heads: 4, AttnScale: 1, QKVBias: nn.BiasOff,
		Windows: []int{0, 4}, Activation: nn.GELUTanh, TiedHead: true}
	explicit := qwen
	explicit.ExplicitAttention, explicit.AttnScale = true, 0.3
	return map[string]nn.GPTConfig{"gqa": llama, "gqa+window": qwen, "unscaled+window": neo, "explicit": explicit}
}

// TestOptionsKVCacheMatchesFullForward: incremental decoding with grouped
// key/value heads and local windows gives the full forward's logits.
func TestOptionsKVCacheMatchesFullForward(t *testing.T) {
	for name, cfg := range optionConfigs() {
		t.Run(name, func(t *testing.T) {
			m := newGPT(t, cfg)
			m.Store.Train(false)
			torch.NoGrad(func() {
				s := torch.NewScope()
				defer s.Close()
				B, T := 2, 16
				ids := torch.RandInt(0, cfg.Vocab, []int{B, T})
				full := m.Forward(ids, nil)
				cache := m.NewKVCache(B, T)
				defer cache.Close()
				require.Equal(t, []int{B, cfg.KVHeadCount(), T, cfg.HeadDim()}, cache.K[0].Shape())
				parts := []*torch.Tensor{m.Forward(ids.Narrow(1, 0, 3), &nn.ForwardOptions{Cache: cache})}
				for i := 3; i < T; i++ {
					parts = append(parts, m.Forward(ids.Narrow(1, i, 1), &nn.ForwardOptions{Cache: cache}))
				}
				d := full.Sub(torch.Cat(parts, 1)).Abs().Amax().Item()
				t.Logf("max |Δlogits| full vs cached: %.2e", d)
				require.Less(t, d, 1e-5)
			})
		})
	}
}

// TestOptionsExplicitMatchesFused: the explicit attention path (scores,
// mask, softmax) and the fused kernel agree under every option.
func TestOptionsExplicitMatchesFused(t *testing.T) {
	for name, cfg := range optionConfigs() {
		t.Run(name, func(t *testing.T) {
			cfg.ExplicitAttention = false
			fused := newGPT(t, cfg)
			cfg.ExplicitAttention = true
			explicit := newGPT(t, cfg) // same seed: same weights
			torch.NoGrad(func() {
				s := torch.NewScope()
				defer s.Close()
				ids := torch.RandInt(0, cfg.Vocab, []int{2, 12})
				require.Less(t, fused.Forward(ids, nil).Sub(explicit.Forward(ids, nil)).Abs().Amax().Item(), 1e-5)
			})
		})
	}
}

// TestWindowLimitsReach: with one layer of window w, the logits at position
// i do not depend on tokens before i−w+1, and a window as long as the
// sequence is global attention.
func TestWindowLimitsReach(t *testing.T) {
	const w = 4
	cfg := nn.GPTConfig{Vocab: 32, Context: 16, Width: 32, Layers: 1, Heads: 4, Windows: []int{w}}
	m := newGPT(t, cfg)
	global := cfg
	global.Windows = nil
	g := newGPT(t, global)
	long := cfg
	long.Windows = []int{16}
	l := newGPT(t, long)
	torch.NoGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		ids := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		other := slices.Clone(ids)
		other[0], other[1] = 30, 31
		a := m.Forward(torch.FromSlice(ids, []int{1, 12}), nil)
		b := m.Forward(torch.FromSlice(other, []int{1, 12}), nil)
		// Positions ≥ 2+w−1 do not see tokens 0 and 1.
		require.Equal(t, 0.0, a.Narrow(1, 1+w, 12-1-w).Sub(b.Narrow(1, 1+w, 12-1-w)).Abs().Amax().Item())
		require.Greater(t, a.Narrow(1, w, 1).Sub(b.Narrow(1, w, 1)).Abs().Amax().Item(), 1e-3, "position w sees token 1")
		x := torch.FromSlice(ids, []int{1, 12})
		require.Less(t, g.Forward(x, nil).Sub(l.Forward(x, nil)).Abs().Amax().Item(), 1e-6)
	})
}

// TestOptionsRaggedGenerate: left-padded batched generation with grouped
// key/value heads and windows gives each prompt's tokens alone.
func TestOptionsRaggedGenerate(t *testing.T) {
	cfg := optionConfigs()["gqa+window"]
	m := newGPT(t, cfg)
	prompts := [][]int64{{3, 1, 4, 1, 5, 9, 2}, {2, 7}, {1, 8, 2, 8}}
	batch, err := m.Generate(prompts, nn.GenerateOptions{MaxNew: 8, Stop: -1})
	require.NoError(t, err)
	for i, p := range prompts {
		alone, err := m.Generate([][]int64{p}, nn.GenerateOptions{MaxNew: 8, Stop: -1})
		require.NoError(t, err)
		require.Equal(t, alone[0], batch[i], "prompt %d", i)
	}
}

func TestOptionsParameters(t *testing.T) {
	cfgs := optionConfigs()
	m := newGPT(t, cfgs["gqa+window"])
	C, hd := 32, 8
	require.Equal(t, []int{(4 + 2*1) * hd, C}, m.Store.Get("blocks.0.attn.qkv.weight").T.Shape())
	require.NotNil(t, m.Store.Get("blocks.0.attn.qkv.bias"), "QKVBias on despite NoBias")
	require.Nil(t, m.Store.Get("blocks.0.attn.proj.bias"))
	require.Equal(t, []int{40, C}, m.Store.Get("blocks.0.mlp.gate.weight").T.Shape())
	require.Equal(t, []int{40, C}, m.Store.Get("blocks.0.mlp.fc.weight").T.Shape())
	require.Nil(t, m.Store.Get("blocks.0.mlp.fc.bias"))
	neo := newGPT(t, cfgs["unscaled+window"])
	require.Nil(t, neo.Store.Get("blocks.0.attn.qkv.bias"), "QKVBias off")
	require.NotNil(t, neo.Store.Get("blocks.0.attn.proj.bias"))
	require.NotNil(t, neo.Store.Get("blocks.0.mlp.fc.bias"))
}

func TestOptionsConfigErrors(t *testing.T) {
	base := nn.GPTConfig{Vocab: 8, Context: 4, Width: 8, Layers: 2, Heads: 4}
	for _, c := range []struct {
		edit func(*nn.GPTConfig)
		want string
	}{
		{func(c *nn.GPTConfig) { c.KVHeads = 3 }, "kv_heads 3 must divide heads 4"},
		{func(c *nn.GPTConfig) { c.Windows = []int{2} }, "windows has 1 entries"},
		{func(c *nn.GPTConfig) { c.Windows = []int{2, -1} }, "window -1 of layer 1"},
		{func(c *nn.GPTConfig) { c.MLPWidth = -1 }, "mlp_width"},
		{func(c *nn.GPTConfig) { c.AttnScale = -1 }, "attn_scale"},
		{func(c *nn.GPTConfig) { c.OutBias = "maybe" }, `bias "maybe"`},
	} {
		cfg := base
		c.edit(&cfg)
		_, err := nn.NewGPT(cfg)
		require.ErrorContains(t, err, c.want)
	}
}
