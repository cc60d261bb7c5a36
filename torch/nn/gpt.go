package nn

import (
	"fmt"
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
)

// GPTConfig describes a decoder-only Transformer.
type GPTConfig struct {
	Vocab    int     // vocabulary size
	Context  int     // maximum sequence length
	Width    int     // residual width (d_model)
	Layers   int     // number of blocks
	Heads    int     // attention heads per block
	MLPRatio float64 // MLP hidden = MLPRatio·Width (4 when 0)
	// Activation of the MLP: gelu (default), gelu_tanh, silu or relu.
	Activation Activation
	TiedHead   bool // the output head reuses the token embedding
	// Positions: "learned" (default) or "rotary".
	Positions  string
	RotaryDims int     // rotated features per head (all when 0)
	RotaryBase float64 // 10000 when 0
	// ParallelResidual computes x + attn(ln1 x) + mlp(ln2 x) (GPT-NeoX)
	// instead of the sequential pre-norm block (GPT-2).
	ParallelResidual bool
	Norm             string  // layernorm (default), layernorm_nobias or rmsnorm
	NormEps          float64 // 1e-5 when 0
	NoBias           bool    // no biases in linear layers
	Dropout          float64
	InitStd          float64 // 0.02 when 0
	// ExplicitAttention exposes attention weights at the AttnWeights site.
	ExplicitAttention bool

	// The options below express the Hugging Face architectures (package hf);
	// their zero values keep the model above unchanged.

	// KVHeads is the number of key/value heads of grouped-query attention
	// (Ainslie et al. 2023; Llama, Qwen2): query head h reads key/value head
	// h/(Heads/KVHeads). Heads when 0; it must divide Heads.
	KVHeads int
	// MLPWidth is the MLP hidden width; it overrides MLPRatio when positive
	// (Hugging Face configs give intermediate_size, not a ratio).
	MLPWidth int
	// GatedMLP computes Proj(act(Gate x) ⊙ FC x) — SwiGLU with SiLU (Llama,
	// Qwen2) — instead of Proj(act(FC x)).
	GatedMLP bool
	// QKVBias, OutBias and MLPBias override NoBias for the query/key/value
	// projection, the attention output projection and the MLP's layers
	// (Qwen2: biases on q, k, v only; GPT-Neo: on all but q, k, v).
	QKVBias, OutBias, MLPBias Bias
	// AttnScale multiplies the scores q·k before the softmax; 1/√HeadDim
	// when 0. GPT-Neo does not scale (1).
	AttnScale float64
	// Windows gives each layer's local attention window (GPT-Neo's local
	// layers, sliding windows): with w > 0 the query at position i sees the
	// keys at i−w+1 … i only; 0 is global attention. Empty: all global;
	// otherwise one entry per layer.
	Windows []int
}

// Bias overrides GPTConfig.NoBias for one group of linear layers.
type Bias string

// Bias settings.
const (
	BiasDefault Bias = ""    // follow NoBias
	BiasOn      Bias = "on"  // biases even with NoBias
	BiasOff     Bias = "off" // no biases even without NoBias
)

// HasBias resolves b against NoBias.
func (c GPTConfig) HasBias(b Bias) bool {
	switch b {
	case BiasOn:
		return true
	case BiasOff:
		return false
	}
	return !c.NoBias
}

// KVHeadCount is the number of key/value heads (Heads unless KVHeads is set).
func (c GPTConfig) KVHeadCount() int {
	if c.KVHeads == 0 {
		return c.Heads
	}
	return c.KVHeads
}

// Window is layer's local attention window (0: global).
func (c GPTConfig) Window(layer int) int {
	if layer < len(c.Windows) {
		return c.Windows[layer]
	}
	return 0
}

func (c *GPTConfig) defaults() {
	if c.MLPRatio == 0 {
		c.MLPRatio = 4
	}
	if c.Activation == "" {
		c.Activation = GELU
	}
	if c.Positions == "" {
		c.Positions = "learned"
	}
	if c.RotaryBase == 0 {
		c.RotaryBase = 10000
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.InitStd == 0 {
		c.InitStd = 0.02
	}
}

// WithDefaults returns c with the documented defaults filled in (what
// GPT.Config holds).
func (c GPTConfig) WithDefaults() GPTConfig {
	c.defaults()
	return c
}

// Validate reports the first inconsistency in c.
func (c GPTConfig) Validate() error {
	c.defaults()
	switch {
	case c.Vocab < 1, c.Context < 1, c.Width < 1, c.Layers < 1, c.Heads < 1:
		return fmt.Errorf("vocab, context, width, layers and heads must be positive (got %d, %d, %d, %d, %d)",
			c.Vocab, c.Context, c.Width, c.Layers, c.Heads)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("width %d is not divisible by heads %d", c.Width, c.Heads)
	case c.Positions != "learned" && c.Positions != "rotary":
		return fmt.Errorf("positions %q: want learned or rotary", c.Positions)
	case c.Positions == "rotary" && (c.RotaryDims%2 != 0 || c.RotaryDims > c.Width/c.Heads || c.RotaryDims < 0):
		return fmt.Errorf("rotary_dims %d must be even and at most the head dim %d", c.RotaryDims, c.Width/c.Heads)
	case !c.Activation.Valid():
		return fmt.Errorf("activation %q: want gelu, gelu_tanh, silu or relu", c.Activation)
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("dropout %v must be in [0, 1)", c.Dropout)
	case c.MLPRatio < 0:
		return fmt.Errorf("mlp_ratio %v must be positive", c.MLPRatio)
	case c.MLPWidth < 0:
		return fmt.Errorf("mlp_width %d must not be negative", c.MLPWidth)
	case c.KVHeads < 0 || c.KVHeads > 0 && c.Heads%c.KVHeads != 0:
		return fmt.Errorf("kv_heads %d must divide heads %d", c.KVHeads, c.Heads)
	case c.AttnScale < 0 || math.IsNaN(c.AttnScale) || math.IsInf(c.AttnScale, 0):
		return fmt.Errorf("attn_scale %v must be positive (0: 1/sqrt(head dim))", c.AttnScale)
	case len(c.Windows) != 0 && len(c.Windows) != c.Layers:
		return fmt.Errorf("windows has %d entries, want one per layer (%d) or none", len(c.Windows), c.Layers)
	}
	for i, w := range c.Windows {
		if w < 0 {
			return fmt.Errorf("window %d of layer %d must not be negative", w, i)
		}
	}
	for _, b := range []Bias{c.QKVBias, c.OutBias, c.MLPBias} {
		if b != BiasDefault && b != BiasOn && b != BiasOff {
			return fmt.Errorf("bias %q: want on, off or empty", b)
		}
	}
	if c.Norm != "" && c.Norm != "layernorm" && c.Norm != "layernorm_nobias" && c.Norm != "rmsnorm" {
		return fmt.Errorf("norm %q: want layernorm, layernorm_nobias or rmsnorm", c.Norm)
	}
	return nil
}

// HeadDim is Width/Heads.
func (c GPTConfig) HeadDim() int { return c.Width / c.Heads }

// MLPHidden is the MLP's hidden width.
func (c GPTConfig) MLPHidden() int {
	if c.MLPWidth > 0 {
		return c.MLPWidth
	}
	c.defaults()
	return int(math.Round(c.MLPRatio * float64(c.Width)))
}

// Block is a pre-norm Transformer block.
type Block struct {
	Layer    int
	LN1, LN2 Norm
	Attn     *Attention
	MLP      *MLP
	Parallel bool
}

// Forward applies the block to the residual stream x [B, T, C].
func (b *Block) Forward(x *torch.Tensor, ps *Pass) *torch.Tensor {
	L := b.Layer
	x = ps.hook(Site{L, ResidPre}, x)
	var hk mlpHooks
	if ps != nil && ps.Hooks != nil && len(ps.Hooks.bySite) > 0 {
		hk = mlpHooks{
			pre:    func(h *torch.Tensor) *torch.Tensor { return ps.hook(Site{L, MLPPre}, h) },
			linear: func(h *torch.Tensor) *torch.Tensor { return ps.hook(Site{L, MLPPreLinear}, h) },
			post:   func(h *torch.Tensor) *torch.Tensor { return ps.hook(Site{L, MLPMid}, h) },
		}
	}
	mlp := func(h *torch.Tensor) *torch.Tensor {
		return ps.hook(Site{L, MLPOut}, b.MLP.forward(ps.hook(Site{L, LN2Normalized}, b.LN2.Forward(h)), hk))
	}
	if b.Parallel {
		branch := b.Attn.Forward(ps.hook(Site{L, LN1Normalized}, b.LN1.Forward(x)), L, ps).Add(mlp(x))
		x = x.Add(ps.hook(Site{L, AttnPlusMLP}, branch))
	} else {
		x = x.Add(b.Attn.Forward(ps.hook(Site{L, LN1Normalized}, b.LN1.Forward(x)), L, ps))
		x = ps.hook(Site{L, ResidMid}, x)
		x = x.Add(mlp(x))
	}
	return ps.hook(Site{L, Residual}, x)
}

// GPT is a decoder-only Transformer language model with named insertion
// points: see Point for what each site exposes, and Hooks to read or replace
// activations during the forward pass.
type GPT struct {
	Config GPTConfig
	Store  *Store
	WTE    *Embedding
	WPE    *Embedding // nil with rotary positions
	Drop   *Dropout
	Blocks []*Block
	LNF    Norm
	Head   *Linear // nil when tied to WTE
	Hooks  Hooks
}

// NewGPT builds a GPT in a new store, initialised as GPT-2: N(0, 0.02²)
// weights, N(0, (0.02/√(2·layers))²) for projections into the residual
// stream, zero biases, unit norms. Seed libtorch first for reproducibility.
func NewGPT(cfg GPTConfig) (*GPT, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gpt config: %w", err)
	}
	cfg.defaults()
	s := NewStore()
	root := s.Root()
	std, projStd := cfg.InitStd, ResidualStd(cfg.InitStd, cfg.Layers)
	norm := cfg.Norm
	if norm == "" {
		norm = "layernorm"
	}
	m := &GPT{Config: cfg, Store: s}
	m.WTE = NewEmbedding(root.Sub("wte"), cfg.Vocab, cfg.Width, std)
	if cfg.Positions == "learned" {
		m.WPE = NewEmbedding(root.Sub("wpe"), cfg.Context, cfg.Width, std)
	}
	m.Drop = NewDropout(root, cfg.Dropout)
	var rot *Rotary
	if cfg.Positions == "rotary" {
		dims := cfg.RotaryDims
		if dims == 0 {
			dims = cfg.HeadDim()
		}
		rot = NewRotary(root.Sub("rotary"), dims, cfg.Context, cfg.RotaryBase)
	}
	for i := 0; i < cfg.Layers; i++ {
		p := root.Sub("blocks").Index(i)
		ln1, _ := NewNorm(p.Sub("ln_1"), norm, cfg.Width, cfg.NormEps)
		ln2, _ := NewNorm(p.Sub("ln_2"), norm, cfg.Width, cfg.NormEps)
		attn := NewAttentionWith(p.Sub("attn"), AttentionOptions{
			Dim: cfg.Width, Heads: cfg.Heads, KVHeads: cfg.KVHeadCount(),
			QKVBias: cfg.HasBias(cfg.QKVBias), OutBias: cfg.HasBias(cfg.OutBias),
			Std: std, ProjStd: projStd, Dropout: cfg.Dropout,
		})
		attn.Rotary, attn.Explicit = rot, cfg.ExplicitAttention
		attn.Scale, attn.Window = cfg.AttnScale, cfg.Window(i)
		var mlp *MLP
		if cfg.GatedMLP {
			mlp = NewGatedMLP(p.Sub("mlp"), cfg.Width, cfg.MLPHidden(), cfg.Activation, cfg.HasBias(cfg.MLPBias), std, projStd)
		} else {
			mlp = NewMLP(p.Sub("mlp"), cfg.Width, cfg.MLPHidden(), cfg.Activation, cfg.HasBias(cfg.MLPBias), std, projStd)
		}
		m.Blocks = append(m.Blocks, &Block{Layer: i, LN1: ln1, LN2: ln2, Attn: attn, MLP: mlp, Parallel: cfg.ParallelResidual})
	}
	m.LNF, _ = NewNorm(root.Sub("ln_f"), norm, cfg.Width, cfg.NormEps)
	if !cfg.TiedHead {
		m.Head = NewLinear(root.Sub("head"), cfg.Width, cfg.Vocab, false, std)
	}
	return m, nil
}

// Close frees the model's parameters.
func (m *GPT) Close() { m.Store.Close() }

// Sites lists the model's original insertion points (the Point constants
// before TransformerLens's names; the codebook family inserts at these).
// AllSites lists every hook site.
func (m *GPT) Sites() []Site {
	var out []Site
	for i := range m.Blocks {
		for _, p := range points {
			if p == Final || (p == AttnWeights && !m.Config.ExplicitAttention) || (p == AttnPlusMLP && !m.Config.ParallelResidual) {
				continue
			}
			out = append(out, Site{i, p})
		}
	}
	return append(out, Site{-1, Final})
}

// AllSites lists every hook site of the model in forward order, under
// TransformerLens's names where they exist (hook_embed, blocks.L.hook_resid_pre,
// blocks.L.attn.hook_q, …, ln_final.hook_normalized) and the points without
// one (attn_preproj, attn_plus_mlp). Sites lists the original points only.
func (m *GPT) AllSites() []Site {
	out := []Site{{-1, HookEmbed}}
	if m.WPE != nil {
		out = append(out, Site{-1, HookPosEmbed})
	}
	for i := range m.Blocks {
		for _, p := range blockPoints(m.Config) {
			out = append(out, Site{i, p})
		}
	}
	return append(out, Site{-1, LNFinal})
}

// blockPoints are the points of one block of c in forward order.
func blockPoints(c GPTConfig) []Point {
	ps := []Point{ResidPre, LN1Normalized, AttnQ, AttnK, AttnV}
	if c.Positions == "rotary" {
		ps = append(ps, AttnRotQ, AttnRotK)
	}
	ps = append(ps, AttnScores, AttnPattern, AttnZ, AttnPreProj, HookAttnOut)
	if !c.ParallelResidual {
		ps = append(ps, ResidMid)
	}
	ps = append(ps, LN2Normalized, MLPPre)
	if c.GatedMLP {
		ps = append(ps, MLPPreLinear)
	}
	ps = append(ps, MLPPost, HookMLPOut)
	if c.ParallelResidual {
		ps = append(ps, AttnPlusMLP)
	}
	return append(ps, ResidPost)
}

// ModelHooks implements Hookable.
func (m *GPT) ModelHooks() *Hooks { return &m.Hooks }

// Embed looks up token embeddings of ids [B, T] → [B, T, C] (no positions).
func (m *GPT) Embed(ids *torch.Tensor) *torch.Tensor { return m.WTE.Forward(ids) }

// ForwardOptions carry optional state into a forward pass.
type ForwardOptions struct {
	Cache     *KVCache      // incremental decoding; the cache advances by T
	KeyMask   *torch.Tensor // [B, cache.Len+T] bool, true = real token (left padding)
	Positions *torch.Tensor // [B, T] int64 positions (default cache.Len…)
}

// Hidden runs the blocks over input embeddings x [B, T, C] (positions are
// added here) and returns the final normalised hidden state [B, T, C].
func (m *GPT) Hidden(x *torch.Tensor, o *ForwardOptions) *torch.Tensor {
	T := x.Size(1)
	ps := &Pass{Hooks: &m.Hooks}
	if o != nil {
		ps.Cache, ps.KeyMask, ps.Positions = o.Cache, o.KeyMask, o.Positions
		if o.Cache != nil {
			ps.Offset = o.Cache.Len
		}
	}
	if ps.Offset+T > m.Config.Context {
		panic(&torch.Error{Op: "gpt", Kind: torch.KindShape,
			Msg: fmt.Sprintf("sequence of %d positions exceeds the context %d", ps.Offset+T, m.Config.Context)})
	}
	x = ps.hook(Site{-1, HookEmbed}, x)
	if m.WPE != nil {
		var pos *torch.Tensor
		if ps.Positions != nil {
			pos = m.WPE.Forward(ps.Positions)
		} else {
			pos = m.WPE.Weight.Narrow(0, ps.Offset, T)
		}
		if ps.has(Site{-1, HookPosEmbed}) {
			if pos.Dim() == 2 {
				pos = pos.Unsqueeze(0).Expand(x.Size(0), T, x.Size(2))
			}
			pos = ps.hook(Site{-1, HookPosEmbed}, pos)
		}
		x = x.Add(pos)
	}
	x = m.Drop.Forward(x)
	for _, b := range m.Blocks {
		x = b.Forward(x, ps)
	}
	if ps.Cache != nil {
		ps.Cache.Len += T
	}
	return ps.hook(Site{-1, Final}, m.LNF.Forward(x))
}

// Logits projects hidden states [B, T, C] to vocabulary logits [B, T, V].
func (m *GPT) Logits(h *torch.Tensor) *torch.Tensor {
	if m.Head == nil {
		return torch.Linear(h, m.WTE.Weight, nil)
	}
	return m.Head.Forward(h)
}

// Forward maps token ids [B, T] (int64) to logits [B, T, V].
func (m *GPT) Forward(ids *torch.Tensor, o *ForwardOptions) *torch.Tensor {
	return m.Logits(m.Hidden(m.Embed(ids), o))
}

// NewKVCache allocates a cache for this model (float32 on the embedding's device).
func (m *GPT) NewKVCache(batch, max int) *KVCache {
	w := m.WTE.Weight
	return NewKVCache(m.Config.Layers, batch, m.Config.KVHeadCount(), m.Config.HeadDim(), max, w.DType(), w.Device())
}

// LMLoss is the mean next-token cross-entropy of logits [B, T, V] against
// targets [B, T] (int64), skipping targets equal to ignore.
func LMLoss(logits, targets *torch.Tensor, ignore int64) *torch.Tensor {
	V := logits.Size(-1)
	o := torch.DefaultCrossEntropy
	o.IgnoreIndex = ignore
	return torch.CrossEntropyWith(logits.Reshape(-1, V), targets.Reshape(-1), o)
}
