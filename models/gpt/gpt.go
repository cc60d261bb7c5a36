// Package gpt is the vanilla GPT family: model.family: gpt trains an
// nn.GPT on a language-model dataset (see package lm).
package gpt

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Config is the model section of a gpt recipe; vocab and context default to
// the data's.
type Config struct {
	Family           string  `key:"family"`
	Vocab            int     `key:"vocab"`
	Context          int     `key:"context"`
	Width            int     `key:"width" required:"true"`
	Layers           int     `key:"layers" required:"true"`
	Heads            int     `key:"heads" required:"true"`
	MLPRatio         float64 `key:"mlp_ratio"`
	Activation       string  `key:"activation"`
	TiedHead         bool    `key:"tied_head"`
	Positions        string  `key:"positions"`
	RotaryDims       int     `key:"rotary_dims"`
	RotaryBase       float64 `key:"rotary_base"`
	ParallelResidual bool    `key:"parallel_residual"`
	Norm             string  `key:"norm"`
	NoBias           bool    `key:"no_bias"`
	Dropout          float64 `key:"dropout"`
	InitStd          float64 `key:"init_std"`
	NormEps          float64 `key:"norm_eps"`
	// The Hugging Face architectures' options (see nn.GPTConfig and package
	// hf): grouped-query attention, an explicit MLP width, the gated (SwiGLU)
	// MLP, per-group bias overrides (on, off or empty), the attention score
	// scale (0: 1/√head_dim) and per-layer local attention windows.
	KVHeads   int     `key:"kv_heads"`
	MLPWidth  int     `key:"mlp_width"`
	GatedMLP  bool    `key:"gated_mlp"`
	QKVBias   string  `key:"qkv_bias"`
	OutBias   string  `key:"out_bias"`
	MLPBias   string  `key:"mlp_bias"`
	AttnScale float64 `key:"attn_scale"`
	Windows   []int   `key:"windows"`
}

// FromGPTConfig is the model section that builds c (for imported models).
func FromGPTConfig(c nn.GPTConfig) Config {
	return Config{Family: "gpt", Vocab: c.Vocab, Context: c.Context, Width: c.Width, Layers: c.Layers, Heads: c.Heads,
		MLPRatio: c.MLPRatio, Activation: string(c.Activation), TiedHead: c.TiedHead, Positions: c.Positions,
		RotaryDims: c.RotaryDims, RotaryBase: c.RotaryBase, ParallelResidual: c.ParallelResidual, Norm: c.Norm,
		NoBias: c.NoBias, Dropout: c.Dropout, InitStd: c.InitStd, NormEps: c.NormEps, KVHeads: c.KVHeads,
		MLPWidth: c.MLPWidth, GatedMLP: c.GatedMLP, QKVBias: string(c.QKVBias), OutBias: string(c.OutBias),
		MLPBias: string(c.MLPBias), AttnScale: c.AttnScale, Windows: c.Windows}
}

// Default is a gpt model section's defaults.
func Default() Config {
	return Config{MLPRatio: 4, Activation: "gelu", TiedHead: true, Positions: "learned", RotaryBase: 10000,
		Norm: "layernorm", InitStd: 0.02}
}

// GPTConfig converts the section into nn's configuration, taking vocab and
// context from the data when unset.
func (c Config) GPTConfig(d lm.Data) nn.GPTConfig {
	if c.Vocab == 0 {
		c.Vocab = d.Vocab()
	}
	if c.Context == 0 {
		c.Context = d.Context()
	}
	return nn.GPTConfig{Vocab: c.Vocab, Context: c.Context, Width: c.Width, Layers: c.Layers, Heads: c.Heads,
		MLPRatio: c.MLPRatio, Activation: nn.Activation(c.Activation), TiedHead: c.TiedHead, Positions: c.Positions,
		RotaryDims: c.RotaryDims, RotaryBase: c.RotaryBase, ParallelResidual: c.ParallelResidual, Norm: c.Norm,
		NoBias: c.NoBias, Dropout: c.Dropout, InitStd: c.InitStd, NormEps: c.NormEps, KVHeads: c.KVHeads,
		MLPWidth: c.MLPWidth, GatedMLP: c.GatedMLP, QKVBias: nn.Bias(c.QKVBias), OutBias: nn.Bias(c.OutBias),
		MLPBias: nn.Bias(c.MLPBias), AttnScale: c.AttnScale, Windows: c.Windows}
}

// Build decodes a model section into a GPT on the data's vocabulary,
// recording the resolved section.
func Build(r *experiment.Recipe, env experiment.Env, d lm.Data) (*Model, error) {
	cfg := Default()
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	if err := lm.FitData(r, d, &cfg.Vocab, &cfg.Context); err != nil {
		return nil, err
	}
	cfg.Family = r.Family
	r.Record("model", &cfg)
	g, err := nn.NewGPT(cfg.GPTConfig(d))
	if err != nil {
		return nil, fmt.Errorf("%s: model: %w", r.Raw.Path, err)
	}
	// Parameters are created on the CPU (so a seed gives the same model
	// everywhere) and moved to the run's device.
	if err := g.Store.To(env.Device); err != nil {
		g.Close()
		return nil, fmt.Errorf("moving the model to %v: %w", env.Device, err)
	}
	return &Model{GPT: g}, nil
}

// Model adapts nn.GPT to lm.Model.
type Model struct {
	*nn.GPT
}

// Store implements lm.Model.
func (m *Model) Store() *nn.Store { return m.GPT.Store }

// Forward implements lm.Model.
func (m *Model) Forward(ids *torch.Tensor) *torch.Tensor { return m.GPT.Forward(ids, nil) }

// Family builds this family's experiments (registered by package families).
type Family struct{}

func (Family) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	return lm.Build(r, env, Build)
}
