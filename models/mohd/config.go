package mohd

import (
	"fmt"
	"math"
)

// Scale is the activation-scaling rule that makes up for the dimensions a
// token leaves out (brief §2.2 step 4). The paper states that scaling exists
// [V]; its formula is not recovered.
type Scale string

// Activation-scaling rules.
const (
	// ScaleNorm keeps the norm, per token: z = α·(w ⊙ u) with
	// α = ‖u‖₂ / (‖w ⊙ u‖₂ + ε) [R, the default].
	ScaleNorm Scale = "norm"
	// ScaleConst is the constant α = √(D/d_act), with routed gates N_r·p_j
	// (K·p_j with renorm) so that a uniform router gives gate 1 [R].
	ScaleConst Scale = "const"
	// ScaleGateSum is the third-party formula α = (Σ_{j∈T_t} p_j)·N_r on the
	// routed groups (brief §2.1: α = (Σ g_i)·N over gated groups, with N read
	// as the routed count because our shared groups carry no gate) [T].
	ScaleGateSum Scale = "gate_sum"
	// ScaleOff is α = 1: the "w/o activation scaling" ablation.
	ScaleOff Scale = "off"
)

// Fusion is the group-fusion rule applied to a sublayer's output (§2.2 step 6).
type Fusion string

// Group-fusion rules.
const (
	// FusionMonarch is ŷ = y + Pᵀ·BD₂·P·BD₁·y: block-diagonal BD₁ (N blocks
	// g×g), the fixed transpose permutation P, block-diagonal BD₂ (g blocks
	// N×N), with BD₂ = 0 at init so that ŷ = y at the start [V: Monarch-like
	// fusion exists; the exact factorisation is ours, R].
	FusionMonarch Fusion = "monarch"
	// FusionOff is F ≡ 0: the "w/o group fusion" ablation.
	FusionOff Fusion = "off"
)

// Write says where the fused update may write (§2.2 step 6).
type Write string

// Fusion write-back rules.
const (
	// WriteDense writes F(y) into every group, so information computed in
	// the active groups can reach groups the token did not select [R, default].
	WriteDense Write = "dense"
	// WriteMasked keeps only the active groups: ŷ = m ⊙ (y + F(y)) [R].
	WriteMasked Write = "masked"
)

// RouterScope says how many routers a block has (§2.2 step 2).
type RouterScope string

// Router scopes.
const (
	// RouterSublayer gives the attention and FFN sublayers a router each [R, default].
	RouterSublayer RouterScope = "sublayer"
	// RouterLayer routes once per block, on the attention input, and reuses
	// the choice for the FFN (whose scaling α still uses its own input) [R].
	RouterLayer RouterScope = "layer"
)

// ExecPath is how the sparse projections are computed (§2.4). Both give the
// same numbers up to float rounding.
type ExecPath string

// Execution paths.
const (
	// PathMasked multiplies dense D-wide matrices with zeros in the inactive
	// groups: the reference, whose cost follows D.
	PathMasked ExecPath = "masked"
	// PathGathered computes the shared groups with one GEMM over their rows
	// and the routed groups MoE-style (the assignments sorted by group, one
	// GEMM per group in one grouped product, torch.GroupedMM, that gathers
	// the rows and adds the results back): its cost follows d_act.
	PathGathered ExecPath = "gathered"
)

// Config is a mohd recipe's model section. Vocab and context default to the
// data's. The names follow the brief: D = width, N = groups, N_s = shared,
// K = topk, d_a = heads·head_dim, d_ff = ffn.
type Config struct {
	Family  string `key:"family"`
	Vocab   int    `key:"vocab"`
	Context int    `key:"context"`
	// Width is D, the residual width (D = d for compression, m·d for
	// expansion by m).
	Width  int `key:"width" required:"true"`
	Layers int `key:"layers" required:"true"`
	Heads  int `key:"heads" required:"true"`
	// HeadDim is the attention head size (width/heads when 0); d_a =
	// heads·head_dim stays at the base model's value in MoHD.
	HeadDim int `key:"head_dim"`
	// FFN is d_ff, the SwiGLU inner width.
	FFN int `key:"ffn" required:"true"`
	// Vanilla makes the dense LLaMA block of the same code: N = N_s = 1,
	// K = 0, no router, scaling and fusion off, no balance loss. The
	// MoHD-only keys below are then ignored (and recorded as used).
	Vanilla     bool    `key:"vanilla"`
	Groups      int     `key:"groups"`       // N; g = D/N
	Shared      int     `key:"shared"`       // N_s, the always-on groups (the first N_s)
	TopK        int     `key:"topk"`         // K routed groups per token, of N_r = N − N_s
	Scale       string  `key:"scale"`        // norm, const, gate_sum or off
	ScaleEps    float64 `key:"scale_eps"`    // ε of the norm-preserving α
	Fusion      string  `key:"fusion"`       // monarch or off
	FusionWrite string  `key:"fusion_write"` // dense or masked
	Router      string  `key:"router"`       // sublayer or layer
	// RouterStd is W_r's init std: small but not zero (exact zero makes
	// every token pick the same groups through ties).
	RouterStd float64 `key:"router_std"`
	// Renorm divides the chosen routed gates by their sum [R option; the
	// paper's gate normalisation is unknown].
	Renorm bool `key:"renorm"`
	// Balance is λ of the load-balance loss λ·N_r·Σ_j f_j·P̄_j, averaged
	// over routers [R]; 0 turns it off.
	Balance float64 `key:"balance"`
	Path    string  `key:"path"` // masked or gathered
	// InitStd is the weights' init std; projections into the residual stream
	// use InitStd/√(2·layers).
	InitStd    float64 `key:"init_std"`
	NormEps    float64 `key:"norm_eps"`
	RotaryBase float64 `key:"rotary_base"`
}

// DefaultConfig is the model section's defaults: the brief's C50 routing
// (N = 16, N_s = 6, K = 2) and every [R] choice at its default.
func DefaultConfig() Config {
	return Config{Groups: 16, Shared: 6, TopK: 2, Scale: string(ScaleNorm), ScaleEps: 1e-6,
		Fusion: string(FusionMonarch), FusionWrite: string(WriteDense), Router: string(RouterSublayer),
		RouterStd: 1e-3, Balance: 0.01, Path: string(PathGathered), InitStd: 0.02, NormEps: 1e-5, RotaryBase: 10000}
}

// resolve applies the vanilla switch and the head_dim default.
func (c *Config) resolve() {
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Width / c.Heads
	}
	if c.Vanilla {
		c.Groups, c.Shared, c.TopK = 1, 1, 0
		c.Scale, c.Fusion, c.Balance, c.Renorm = string(ScaleOff), string(FusionOff), 0, false
	}
}

// ConfigError is an invalid model section: Key is the recipe key under
// model, Reason says why.
type ConfigError struct {
	Key, Reason string
}

// Error is "model.<key>: <reason>".
func (e *ConfigError) Error() string { return "model." + e.Key + ": " + e.Reason }

// Validate reports the first inconsistency in c (after its defaults).
func (c Config) Validate() error {
	c.resolve()
	bad := func(key, format string, args ...any) error {
		return &ConfigError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Vocab < 1:
		return bad("vocab", "must be positive, got %d", c.Vocab)
	case c.Context < 1:
		return bad("context", "must be positive, got %d", c.Context)
	case c.Width < 1:
		return bad("width", "must be positive, got %d", c.Width)
	case c.Layers < 1:
		return bad("layers", "must be positive, got %d", c.Layers)
	case c.Heads < 1:
		return bad("heads", "must be positive, got %d", c.Heads)
	case c.HeadDim < 2 || c.HeadDim%2 != 0:
		return bad("head_dim", "must be even and at least 2 (rotary), got %d", c.HeadDim)
	case c.FFN < 1:
		return bad("ffn", "must be positive, got %d", c.FFN)
	case c.Groups < 1 || c.Width%c.Groups != 0:
		return bad("groups", "N = %d must be positive and divide width %d", c.Groups, c.Width)
	case c.Shared < 0 || c.Shared > c.Groups:
		return bad("shared", "N_s = %d must be in [0, groups = %d]", c.Shared, c.Groups)
	case c.Shared < c.Groups && (c.TopK < 1 || c.TopK > c.Groups-c.Shared):
		return bad("topk", "K = %d must be in [1, N_r = %d] when some groups are routed", c.TopK, c.Groups-c.Shared)
	case c.Shared == c.Groups && c.TopK != 0 && !c.Vanilla:
		return bad("topk", "K = %d, but every group is shared (N_s = N): set topk: 0", c.TopK)
	case c.RouterStd <= 0 && c.Shared < c.Groups:
		return bad("router_std", "must be positive (zero init ties every token's top-K), got %v", c.RouterStd)
	case c.Balance < 0:
		return bad("balance", "must not be negative, got %v", c.Balance)
	case c.ScaleEps <= 0:
		return bad("scale_eps", "must be positive, got %v", c.ScaleEps)
	case c.InitStd <= 0 || math.IsInf(c.InitStd, 0):
		return bad("init_std", "must be positive, got %v", c.InitStd)
	case c.NormEps <= 0:
		return bad("norm_eps", "must be positive, got %v", c.NormEps)
	case c.RotaryBase <= 0:
		return bad("rotary_base", "must be positive, got %v", c.RotaryBase)
	}
	oneOf := func(key, v string, want ...string) error {
		for _, w := range want {
			if v == w {
				return nil
			}
		}
		return bad(key, "want one of %v, got %q", want, v)
	}
	for _, err := range []error{
		oneOf("scale", c.Scale, string(ScaleNorm), string(ScaleConst), string(ScaleGateSum), string(ScaleOff)),
		oneOf("fusion", c.Fusion, string(FusionMonarch), string(FusionOff)),
		oneOf("fusion_write", c.FusionWrite, string(WriteDense), string(WriteMasked)),
		oneOf("router", c.Router, string(RouterSublayer), string(RouterLayer)),
		oneOf("path", c.Path, string(PathMasked), string(PathGathered)),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// G is the group size g = D/N.
func (c Config) G() int { return c.Width / c.Groups }

// Routed is N_r = N − N_s.
func (c Config) Routed() int { return c.Groups - c.Shared }

// AttnWidth is d_a = heads·head_dim.
func (c Config) AttnWidth() int { return c.Heads * c.HeadDim }

// ActiveWidth is d_act = (N_s + K)·g.
func (c Config) ActiveWidth() int { return (c.Shared + c.TopK) * c.G() }

// Delta is δ = d_act/D, the active fraction of the residual width.
func (c Config) Delta() float64 { return float64(c.ActiveWidth()) / float64(c.Width) }

// routers is the number of routers per block.
func (c Config) routers() int {
	switch {
	case c.Routed() == 0:
		return 0
	case RouterScope(c.Router) == RouterLayer:
		return 1
	}
	return 2
}
