package nn

import (
	"fmt"
	"strconv"
	"strings"

	"hiddenlab/torch"
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
	// MLPMid is the MLP hidden activation after the nonlinearity [B, T, hidden].
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

var points = []Point{AttnPreProj, AttnWeights, AttnOut, MLPMid, MLPOut, AttnPlusMLP, Residual, Final}

// Site is an insertion point of one layer (Layer is -1 for Final).
type Site struct {
	Layer int
	Point Point
}

// String is "blocks.L.point", or "final".
func (s Site) String() string {
	if s.Point == Final {
		return string(Final)
	}
	return "blocks." + strconv.Itoa(s.Layer) + "." + string(s.Point)
}

// ParseSite reads a Site from its String form.
func ParseSite(s string) (Site, error) {
	if s == string(Final) {
		return Site{Layer: -1, Point: Final}, nil
	}
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 || parts[0] != "blocks" {
		return Site{}, fmt.Errorf("bad site %q (want blocks.<layer>.<point> or final)", s)
	}
	layer, err := strconv.Atoi(parts[1])
	if err != nil || layer < 0 {
		return Site{}, fmt.Errorf("bad layer in site %q", s)
	}
	for _, p := range points {
		if string(p) == parts[2] && p != Final {
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
// function that removes it.
func (h *Hooks) Add(site Site, f Hook) (remove func()) {
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

// Has reports whether any hook is installed at site.
func (h *Hooks) Has(site Site) bool { return len(h.bySite[site]) > 0 }

// Apply runs site's hooks in order on x.
func (h *Hooks) Apply(site Site, x *torch.Tensor) *torch.Tensor {
	for _, e := range h.bySite[site] {
		x = e.f(x)
	}
	return x
}

// Clear removes every hook.
func (h *Hooks) Clear() { h.bySite = nil }
