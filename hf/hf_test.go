package hf_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/hf"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// randomize fills every parameter with N(0, 0.1²) noise, so that a mix-up of
// any two weights (biases and norms included) shows.
func randomize(t *testing.T, s *nn.Store) {
	t.Helper()
	torch.NoGrad(func() {
		for _, p := range s.StateDict() {
			torch.WithScope(func() { p.T.CopyFrom(torch.RandnLike(p.T).MulScalar(0.1)) })
		}
	})
}

// newModel builds a randomised model from an HF config (HF field names).
func newModel(t *testing.T, hfConfig map[string]any) (*nn.GPT, hf.ModelType) {
	t.Helper()
	js, err := json.Marshal(hfConfig)
	require.NoError(t, err)
	cfg, typ, err := hf.ParseConfig(js)
	require.NoError(t, err)
	torch.ManualSeed(3)
	m, err := nn.NewGPT(cfg)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	randomize(t, m.Store)
	return m, typ
}

// requireSameModel compares every parameter of a and b (exactly, or after
// rounding a's to dtype) and their logits.
func requireSameModel(t *testing.T, a, b *nn.GPT, dtype torch.DType) {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	require.Equal(t, len(a.Store.StateDict()), len(b.Store.StateDict()))
	for _, p := range a.Store.StateDict() {
		q := b.Store.Get(p.Name)
		require.NotNil(t, q, p.Name)
		want := p.T.Detach().To(dtype).To(torch.Float32)
		require.Equal(t, 0.0, want.Sub(q.T).Abs().Amax().Item(), p.Name)
	}
	ids := torch.RandInt(0, a.Config.Vocab, []int{2, 10})
	if dtype == torch.Float32 {
		require.Equal(t, 0.0, a.Forward(ids, nil).Sub(b.Forward(ids, nil)).Abs().Amax().Item())
	}
}

// TestRoundTrip saves every reference architecture and loads it back: the
// same config, bit-identical weights in f32 (bf16/f16: the rounded ones), in
// one file or in shards.
func TestRoundTrip(t *testing.T) {
	for _, c := range refCases() {
		for _, o := range []struct {
			name string
			opt  hf.SaveOptions
		}{
			{"f32", hf.SaveOptions{}},
			{"sharded", hf.SaveOptions{MaxShardBytes: 16 << 10}},
			{"bf16", hf.SaveOptions{DType: torch.BFloat16}},
			{"f16", hf.SaveOptions{DType: torch.Float16, Tokens: &hf.Tokens{BOS: 1, EOS: []int64{2, 3}, Pad: -1}}},
		} {
			t.Run(c.Name+"/"+o.name, func(t *testing.T) {
				m, typ := newModel(t, c.Config)
				dir := filepath.Join(t.TempDir(), "model")
				require.NoError(t, hf.Save(dir, typ, m.Config, m.Store, o.opt))
				cfg, typ2, err := hf.ReadConfig(dir)
				require.NoError(t, err)
				require.Equal(t, typ, typ2)
				require.Equal(t, m.Config, cfg, "config.json round trip")
				if o.opt.MaxShardBytes > 0 {
					_, err := os.Stat(filepath.Join(dir, hf.IndexFile))
					require.NoError(t, err, "sharded")
				}
				back, err := hf.Load(dir, torch.CPU)
				require.NoError(t, err)
				defer back.Close()
				requireSameModel(t, m, back, o.opt.DType)
				tok, err := hf.ReadTokens(dir)
				require.NoError(t, err)
				if o.opt.Tokens != nil {
					require.Equal(t, *o.opt.Tokens, tok)
				} else {
					require.Equal(t, hf.Tokens{BOS: -1, Pad: -1}, tok)
				}
			})
		}
	}
}

// TestTypeFor exports hiddenlab's own configurations: the chosen
// architecture loads back as the same model (weights HF has and hiddenlab
// lacks are zeros), and an inexpressible model is refused.
func TestTypeFor(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  nn.GPTConfig
		want hf.ModelType
	}{
		{"gpt2 style", nn.GPTConfig{Vocab: 64, Context: 16, Width: 32, Layers: 2, Heads: 4, TiedHead: true}, hf.GPT2},
		{"no biases", nn.GPTConfig{Vocab: 64, Context: 16, Width: 32, Layers: 2, Heads: 4, NoBias: true, Norm: "layernorm_nobias", MLPRatio: 2}, hf.GPT2},
		{"neox style", nn.GPTConfig{Vocab: 48, Context: 16, Width: 48, Layers: 2, Heads: 2, Positions: "rotary",
			RotaryDims: 8, ParallelResidual: true, Activation: nn.GELUTanh}, hf.GPTNeoX},
		{"neox, odd pct", nn.GPTConfig{Vocab: 48, Context: 16, Width: 72, Layers: 1, Heads: 3, Positions: "rotary", RotaryDims: 8}, hf.GPTNeoX},
		{"neo", nn.GPTConfig{Vocab: 48, Context: 16, Width: 32, Layers: 2, Heads: 2, AttnScale: 1, QKVBias: nn.BiasOff, Windows: []int{3, 0}}, hf.GPTNeo},
		{"llama", nn.GPTConfig{Vocab: 40, Context: 12, Width: 24, Layers: 2, Heads: 3, Positions: "rotary", Norm: "rmsnorm",
			NoBias: true, GatedMLP: true, Activation: nn.SiLU, MLPWidth: 30}, hf.Llama},
		{"qwen2", nn.GPTConfig{Vocab: 40, Context: 12, Width: 24, Layers: 2, Heads: 4, KVHeads: 2, Positions: "rotary", Norm: "rmsnorm",
			NoBias: true, QKVBias: nn.BiasOn, GatedMLP: true, Activation: nn.SiLU, Windows: []int{0, 4}}, hf.Qwen2},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, err := hf.TypeFor(c.cfg)
			require.NoError(t, err)
			require.Equal(t, c.want, typ)
			torch.ManualSeed(3)
			m, err := nn.NewGPT(c.cfg)
			require.NoError(t, err)
			defer m.Close()
			randomize(t, m.Store)
			dir := filepath.Join(t.TempDir(), "model")
			require.NoError(t, hf.Save(dir, typ, m.Config, m.Store, hf.SaveOptions{}))
			back, err := hf.Load(dir, torch.CPU)
			require.NoError(t, err)
			defer back.Close()
			torch.WithScope(func() {
				ids := torch.RandInt(0, c.cfg.Vocab, []int{2, 10})
				require.Less(t, m.Forward(ids, nil).Sub(back.Forward(ids, nil)).Abs().Amax().Item(), 1e-5)
			})
		})
	}
	// The crosscheck's llama-style model has an ungated SiLU MLP: no HF
	// architecture has rotary, RMSNorm and an ungated MLP.
	_, err := hf.TypeFor(nn.GPTConfig{Vocab: 40, Context: 12, Width: 24, Layers: 2, Heads: 3, Positions: "rotary",
		Norm: "rmsnorm", NoBias: true, Activation: nn.SiLU})
	require.ErrorContains(t, err, "llama has a gated MLP, the model does not")
}

// TestErrors: broken model directories give errors naming the file and the
// tensor or field at fault; Save refuses what it cannot write.
func TestErrors(t *testing.T) {
	llama := map[string]any{"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32}
	editConfig := func(edit func(map[string]any)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, hf.ConfigFile)
			js, err := os.ReadFile(path)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(js, &m))
			edit(m)
			js, err = json.Marshal(m)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, js, 0o644))
		}
	}
	editWeights := func(edit func(map[string]*torch.Tensor)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, hf.WeightsFile)
			f, err := checkpoint.ReadSafetensors(path)
			require.NoError(t, err)
			defer f.Close()
			edit(f.Tensors)
			require.NoError(t, checkpoint.WriteSafetensors(path, f.Tensors, f.Metadata))
		}
	}
	for _, c := range []struct {
		name  string
		shard int64
		edit  func(t *testing.T, dir string)
		want  []string
	}{
		{"unknown model_type", 0, editConfig(func(m map[string]any) { m["model_type"] = "mamba" }),
			[]string{"config.json", `unknown model_type "mamba" (supported: gpt2, gpt_neox, gpt_neo, llama, qwen2)`}},
		{"bad field", 0, editConfig(func(m map[string]any) { m["hidden_size"] = "big" }),
			[]string{"config.json", `llama: field hidden_size: want an integer, got "big"`}},
		{"rope scaling", 0, editConfig(func(m map[string]any) { m["rope_scaling"] = map[string]any{"type": "linear", "factor": 2} }),
			[]string{"config.json", `field rope_scaling: "linear" scaling is not supported`}},
		{"wrong shape", 0, editConfig(func(m map[string]any) { m["intermediate_size"] = 50 }),
			[]string{"model.safetensors: tensor model.layers.0.mlp.gate_proj.weight has shape [48 32], config.json implies [50 32]"}},
		{"missing shard", 4 << 10, func(t *testing.T, dir string) {
			matches, _ := filepath.Glob(filepath.Join(dir, "model-00002-of-*.safetensors"))
			require.Len(t, matches, 1)
			require.NoError(t, os.Remove(matches[0]))
		}, []string{"model.safetensors.index.json names shard model-00002-of-", "which is missing"}},
		{"truncated header", 0, func(t *testing.T, dir string) {
			path := filepath.Join(dir, hf.WeightsFile)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, b[:100], 0o644))
		}, []string{"safetensors ", "model.safetensors: header length", "exceeds the file (100 bytes): truncated or not safetensors"}},
		{"truncated data", 0, func(t *testing.T, dir string) {
			path := filepath.Join(dir, hf.WeightsFile)
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, st.Size()-64))
		}, []string{"model.safetensors: tensor model.norm.weight: data offsets", "(truncated?)"}},
		{"missing tensor", 0, editWeights(func(m map[string]*torch.Tensor) { delete(m, "lm_head.weight") }),
			[]string{"(1 problem): missing tensor lm_head.weight [64 32]"}},
		{"unexpected tensor", 0, editWeights(func(m map[string]*torch.Tensor) { m["model.layers.0.extra.weight"] = torch.Zeros([]int{2}) }),
			[]string{"model.safetensors: unexpected tensor model.layers.0.extra.weight"}},
		{"integer tensor", 0, editWeights(func(m map[string]*torch.Tensor) { m["model.norm.weight"] = torch.Zeros([]int{32}, torch.Int32) }),
			[]string{"model.safetensors: tensor model.norm.weight has dtype int32, want a float type"}},
		{"no weights", 0, func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, hf.WeightsFile))) },
			[]string{"has neither model.safetensors nor model.safetensors.index.json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, typ := newModel(t, llama)
			dir := filepath.Join(t.TempDir(), "model")
			require.NoError(t, hf.Save(dir, typ, m.Config, m.Store, hf.SaveOptions{MaxShardBytes: c.shard}))
			c.edit(t, dir)
			_, err := hf.Load(dir, torch.CPU)
			require.Error(t, err)
			t.Log(err)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
			require.ErrorContains(t, err, dir, "the error names the directory or file")
		})
	}

	t.Run("save", func(t *testing.T) {
		m, typ := newModel(t, llama)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
		require.ErrorContains(t, hf.Save(dir, typ, m.Config, m.Store, hf.SaveOptions{}), "exists and is not empty")
		out := filepath.Join(t.TempDir(), "gpt2")
		err := hf.Save(out, hf.GPT2, m.Config, m.Store, hf.SaveOptions{})
		require.ErrorContains(t, err, "cannot save as gpt2: gpt2 has learned positions, the model has rotary")
		_, statErr := os.Stat(out)
		require.True(t, os.IsNotExist(statErr), "nothing written")
		require.ErrorContains(t, hf.Save(out, "mamba", m.Config, m.Store, hf.SaveOptions{}), `unknown model type "mamba"`)
		require.ErrorContains(t, hf.Save(out, typ, m.Config, m.Store, hf.SaveOptions{DType: torch.Int64}), "save dtype int64")
	})
}
