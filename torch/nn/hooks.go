package nn

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Point names an insertion point inside a Transformer block.
type Point string

// Insertion points, in forward order. Shapes are for input [B, T]:
const (
	// AttnPreProj is the per-head attention output before the output
	// projection, heads merged: [B, T, H·headDim], head h at columns
	// [h·headDim, (h+1)·headDim).
	AttnPreProj Point = "attn_preproj"
	// AttnWeights is the attention probability tensor [B, H, T, S]; it exists
	// only with explicit (non-fused) attention and is read-only in effect.
	AttnWeights Point = "attn_weights"
	// AttnOut is the attention sublayer output after the projection [B, T, C].
	AttnOut Point = "attn"
	// MLPMid is the MLP hidden activation after the nonlinearity (times the up
	// projection in a gated MLP) [B, T, hidden].
	MLPMid Point = "mlp_mid"
	// MLPOut is the MLP output before the residual add [B, T, C].
	MLPOut Point = "mlp"
	// AttnPlusMLP is attn + mlp output before the residual add (parallel
	// residual blocks only) [B, T, C].
	AttnPlusMLP Point = "attn_plus_mlp"
	// Residual is the residual stream after the block [B, T, C].
	Residual Point = "residual"
	// Final is the final hidden state after the last norm [B, T, C] (Layer -1).
	Final Point = "final"
)

// TransformerLens's hook names (Nanda & Bloom, TransformerLens,
// HookedTransformer). Where TransformerLens names an activation that a point
// above already exposes, the name is an alias of that point (see Canonical):
// both names reach the same hooks, so the codebook family's sites and
// TransformerLens-style code see and patch the same tensor. Shapes are for
// input [B, T] with H heads of Dh = C/H dimensions (KVH key/value heads with
// grouped-query attention).
const (
	// HookEmbed is the token embedding [B, T, C] (Layer -1). GPT.Hidden
	// applies it to the input embeddings it is given.
	HookEmbed Point = "hook_embed"
	// HookPosEmbed is the learned position embedding broadcast to [B, T, C]
	// (Layer -1; rotary models have none).
	HookPosEmbed Point = "hook_pos_embed"
	// ResidPre is a block's input residual stream [B, T, C].
	ResidPre Point = "hook_resid_pre"
	// LN1Normalized is the attention's normalised input [B, T, C]; with a
	// LayerNorm it includes the gain and bias, unlike TransformerLens, which
	// folds them into the next weights.
	LN1Normalized Point = "ln1.hook_normalized"
	// AttnQ, AttnK and AttnV are the per-head queries [B, T, H, Dh], keys and
	// values [B, T, KVH, Dh], before rotary embeddings (as TransformerLens).
	AttnQ Point = "attn.hook_q"
	AttnK Point = "attn.hook_k"
	AttnV Point = "attn.hook_v"
	// AttnRotQ and AttnRotK are the queries and keys after the rotary
	// embedding (rotary models only).
	AttnRotQ Point = "attn.hook_rot_q"
	AttnRotK Point = "attn.hook_rot_k"
	// AttnScores are the scaled, masked scores q·k [B, H, T, S] (−∞ where
	// masked) before the softmax. Hooking it or AttnPattern switches the
	// block to explicit attention for that forward pass.
	AttnScores Point = "attn.hook_attn_scores"
	// AttnPattern is TransformerLens's name of AttnWeights [B, H, T, S].
	AttnPattern Point = "attn.hook_pattern"
	// AttnZ is the per-head attention output before the output projection
	// [B, T, H, Dh] (AttnPreProj, heads split; its hooks run first).
	AttnZ Point = "attn.hook_z"
	// HookAttnOut is TransformerLens's name of AttnOut [B, T, C].
	HookAttnOut Point = "hook_attn_out"
	// ResidMid is the residual stream between attention and MLP [B, T, C]
	// (sequential blocks only, as in TransformerLens).
	ResidMid Point = "hook_resid_mid"
	// LN2Normalized is the MLP's normalised input [B, T, C].
	LN2Normalized Point = "ln2.hook_normalized"
	// MLPPre is the MLP pre-activation [B, T, hidden] (the gate's in a gated
	// MLP, as TransformerLens's gated MLPs).
	MLPPre Point = "mlp.hook_pre"
	// MLPPreLinear is the up projection of a gated MLP [B, T, hidden].
	MLPPreLinear Point = "mlp.hook_pre_linear"
	// MLPPost is TransformerLens's name of MLPMid [B, T, hidden].
	MLPPost Point = "mlp.hook_post"
	// HookMLPOut is TransformerLens's name of MLPOut [B, T, C].
	HookMLPOut Point = "hook_mlp_out"
	// ResidPost is TransformerLens's name of Residual [B, T, C].
	ResidPost Point = "hook_resid_post"
	// LNFinal is TransformerLens's name of Final (Layer -1).
	LNFinal Point = "ln_final.hook_normalized"
)

var points = []Point{AttnPreProj, AttnWeights, AttnOut, MLPMid, MLPOut, AttnPlusMLP, Residual, Final}

// tlPoints are the block points with TransformerLens's names, in forward order.
var tlPoints = []Point{ResidPre, LN1Normalized, AttnQ, AttnK, AttnV, AttnRotQ, AttnRotK, AttnScores, AttnPattern,
	AttnZ, HookAttnOut, ResidMid, LN2Normalized, MLPPre, MLPPreLinear, MLPPost, HookMLPOut, ResidPost}

// aliases maps TransformerLens names to the points that hold the same tensor.
var aliases = map[Point]Point{
	AttnPattern: AttnWeights, HookAttnOut: AttnOut, MLPPost: MLPMid, HookMLPOut: MLPOut,
	ResidPost: Residual, LNFinal: Final,
}

// tlNames is the inverse of aliases.
var tlNames = map[Point]Point{}

func init() {
	for a, p := range aliases {
		tlNames[p] = a
	}
}

// Canonical resolves an alias (a TransformerLens name of an existing point)
// to the point it names; other points are returned unchanged.
func (p Point) Canonical() Point {
	if c, ok := aliases[p]; ok {
		return c
	}
	return p
}

// TLName is the TransformerLens name of p (p itself when it has none, as
// attn_preproj and attn_plus_mlp).
func (p Point) TLName() Point {
	if a, ok := tlNames[p]; ok {
		return a
	}
	return p
}

// global reports whether p is a model-level point (Layer -1).
func (p Point) global() bool {
	switch p {
	case Final, LNFinal, HookEmbed, HookPosEmbed:
		return true
	}
	return false
}

// Canonical is the site with its point resolved (see Point.Canonical).
func (s Site) Canonical() Site { return Site{Layer: s.Layer, Point: s.Point.Canonical()} }

// TLName is the site's TransformerLens name: "blocks.1.hook_resid_post" for
// blocks.1.residual, "ln_final.hook_normalized" for final.
func (s Site) TLName() string { return Site{Layer: s.Layer, Point: s.Point.TLName()}.String() }

// Same reports whether s and o name the same activation (aliases included).
func (s Site) Same(o Site) bool { return s.Canonical() == o.Canonical() }

// Site is an insertion point of one layer (Layer is -1 for Final).
type Site struct {
	Layer int
	Point Point
}

// String is "blocks.L.point", or the point's name for model-level points
// ("final", "hook_embed", …).
func (s Site) String() string {
	if s.Point.global() {
		return string(s.Point)
	}
	return "blocks." + strconv.Itoa(s.Layer) + "." + string(s.Point)
}

// ParseSite reads a Site from its String form, with either the points above
// or TransformerLens's names ("blocks.0.attn.hook_q", "hook_embed"). Aliases
// are kept as written (Site.Canonical resolves them).
func ParseSite(s string) (Site, error) {
	for _, p := range []Point{Final, LNFinal, HookEmbed, HookPosEmbed} {
		if s == string(p) {
			return Site{Layer: -1, Point: p}, nil
		}
	}
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 || parts[0] != "blocks" {
		return Site{}, fmt.Errorf("bad site %q (want blocks.<layer>.<point>, final, hook_embed or hook_pos_embed)", s)
	}
	layer, err := strconv.Atoi(parts[1])
	if err != nil || layer < 0 {
		return Site{}, fmt.Errorf("bad layer in site %q", s)
	}
	for _, p := range append(points[:len(points):len(points)], tlPoints...) {
		if string(p) == parts[2] && !p.global() {
			return Site{Layer: layer, Point: p}, nil
		}
	}
	return Site{}, fmt.Errorf("unknown insertion point %q in site %q", parts[2], s)
}

// Hook sees an activation at a site and returns it, or a replacement of the
// same shape. Hooks run inside the forward pass, so a replacement takes part
// in autograd like any other tensor.
type Hook func(x *torch.Tensor) *torch.Tensor

// Hooks holds the hooks of a model, by site.
type Hooks struct {
	bySite map[Site][]*hookEntry
}

type hookEntry struct{ f Hook }

// Add installs f at site, after any hooks already there, and returns a
// function that removes it. A site and its aliases (Site.Canonical) share
// one list of hooks, run in the order they were added.
func (h *Hooks) Add(site Site, f Hook) (remove func()) {
	site = site.Canonical()
	if h.bySite == nil {
		h.bySite = map[Site][]*hookEntry{}
	}
	e := &hookEntry{f: f}
	h.bySite[site] = append(h.bySite[site], e)
	return func() {
		list := h.bySite[site]
		for i, x := range list {
			if x == e {
				h.bySite[site] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(h.bySite[site]) == 0 {
			delete(h.bySite, site)
		}
	}
}

// Has reports whether any hook is installed at site (or an alias of it).
func (h *Hooks) Has(site Site) bool {
	if len(h.bySite) == 0 {
		return false
	}
	return len(h.bySite[site.Canonical()]) > 0
}

// Apply runs site's hooks in order on x (x itself when there are none).
func (h *Hooks) Apply(site Site, x *torch.Tensor) *torch.Tensor {
	if len(h.bySite) == 0 {
		return x
	}
	for _, e := range h.bySite[site.Canonical()] {
		x = e.f(x)
	}
	return x
}

// Clear removes every hook.
func (h *Hooks) Clear() { h.bySite = nil }

// Len is the number of hooks installed.
func (h *Hooks) Len() int {
	n := 0
	for _, l := range h.bySite {
		n += len(l)
	}
	return n
}

// With installs hooks for the duration of f and removes them when f returns
// or panics (TransformerLens's run_with_hooks). Hooks at one site run in the
// order of the slice, after any installed before.
func (h *Hooks) With(hooks []SiteHook, f func()) {
	removes := make([]func(), 0, len(hooks))
	defer func() {
		for i := len(removes) - 1; i >= 0; i-- {
			removes[i]()
		}
	}()
	for _, sh := range hooks {
		removes = append(removes, h.Add(sh.Site, sh.Hook))
	}
	f()
}

// SiteHook is a hook and where it goes.
type SiteHook struct {
	Site Site
	Hook Hook
}
