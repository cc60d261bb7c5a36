// Package gpt is the vanilla GPT family: model.family: gpt trains an
// nn.GPT on a language-model dataset (see package lm).
package gpt

import (
	"fmt"

	"hiddenlab/models/lm"
	"hiddenlab/runner"
	"hiddenlab/torch"
	"hiddenlab/torch/nn"
)

func init() { runner.Register("gpt", family{}) }

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
		NoBias: c.NoBias, Dropout: c.Dropout, InitStd: c.InitStd}
}

// Build decodes a model section into a GPT on the data's vocabulary,
// recording the resolved section.
func Build(r *runner.Recipe, env runner.Env, d lm.Data) (*Model, error) {
	cfg := Default()
	if err := r.Decode("model", &cfg); err != nil {
		return nil, err
	}
	gc := cfg.GPTConfig(d)
	if gc.Vocab < d.Vocab() {
		return nil, fmt.Errorf("%s: model.vocab: %d is smaller than the data's vocabulary %d", r.Raw.Path, gc.Vocab, d.Vocab())
	}
	if gc.Context < d.Context() {
		return nil, fmt.Errorf("%s: model.context: %d is shorter than the data's sequences (%d)", r.Raw.Path, gc.Context, d.Context())
	}
	cfg.Vocab, cfg.Context, cfg.Family = gc.Vocab, gc.Context, r.Family
	r.Record("model", &cfg)
	g, err := nn.NewGPT(gc)
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

type family struct{}

func (family) Build(r *runner.Recipe, env runner.Env) (runner.Experiment, error) {
	d, _, err := lm.LoadData(r, env.Dir, r.Train.Seed)
	if err != nil {
		return nil, err
	}
	m, err := Build(r, env, d)
	if err != nil {
		return nil, err
	}
	return lm.NewExperiment(r, env, m, d)
}
