package nn

import (
	"math"

	"hiddenlab/torch"
)

// Attention is causal multi-head self-attention with a fused QKV projection.
type Attention struct {
	QKV, Proj   *Linear
	Heads       int
	HeadDim     int
	Rotary      *Rotary // nil with learned positions
	AttnDropout float64
	Resid       *Dropout
	// Explicit computes softmax(q kᵀ/√d) v step by step, exposing the
	// attention weights at the AttnWeights site; otherwise the fused kernel
	// runs.
	Explicit bool
	store    *Store
}

// NewAttention creates attention over width dim with the given heads.
func NewAttention(p Path, dim, heads int, bias bool, std, projStd, dropout float64) *Attention {
	return &Attention{
		QKV:         NewLinear(p.Sub("qkv"), dim, 3*dim, bias, std),
		Proj:        NewLinear(p.Sub("proj"), dim, dim, bias, projStd),
		Heads:       heads,
		HeadDim:     dim / heads,
		AttnDropout: dropout,
		Resid:       NewDropout(p, dropout),
		store:       p.store,
	}
}

// Pass is the per-forward state every layer shares: hooks, the KV cache and
// the masks for padded batches.
type Pass struct {
	Hooks *Hooks
	Cache *KVCache
	// KeyMask [B, S] (bool, true = real token) marks the keys that may be
	// attended to, over the cached positions and the new ones; nil: all.
	KeyMask *torch.Tensor
	// Positions [B, L] (int64) are the new tokens' positions; nil: Offset…
	Positions *torch.Tensor
	// Offset is the number of positions already in the cache.
	Offset int
}

func (ps *Pass) hook(site Site, x *torch.Tensor) *torch.Tensor {
	if ps == nil || ps.Hooks == nil {
		return x
	}
	return ps.Hooks.Apply(site, x)
}

// mask returns the boolean attention mask [B or 1, 1, L, S] for L new queries
// over S = offset+L keys, or nil when plain causal attention applies.
func (ps *Pass) mask(L int) *torch.Tensor {
	if ps == nil || (ps.KeyMask == nil && ps.Offset == 0) {
		return nil
	}
	S := ps.Offset + L
	causal := torch.Ones([]int{L, S}, torch.Bool).Tril(ps.Offset) // key j visible to query i iff j ≤ offset+i
	if ps.KeyMask == nil {
		return causal
	}
	// Padded queries attend to themselves only, so no row is empty.
	self := torch.Ones([]int{L, S}, torch.Bool).Triu(ps.Offset).Tril(ps.Offset)
	keys := ps.KeyMask.Unsqueeze(1).Unsqueeze(1) // [B, 1, 1, S]
	return causal.LogicalAnd(keys).LogicalOr(self)
}

// Forward attends over x [B, T, C] for layer layer.
func (a *Attention) Forward(x *torch.Tensor, layer int, ps *Pass) *torch.Tensor {
	B, T, C := x.Size(0), x.Size(1), x.Size(2)
	qkv := a.QKV.Forward(x).View(B, T, 3, a.Heads, a.HeadDim).Permute(2, 0, 3, 1, 4) // [3, B, H, T, hd]
	q, k, v := qkv.Select(0, 0), qkv.Select(0, 1), qkv.Select(0, 2)
	offset := 0
	var positions *torch.Tensor
	if ps != nil {
		offset, positions = ps.Offset, ps.Positions
	}
	if a.Rotary != nil {
		q = a.Rotary.Apply(q, offset, positions)
		k = a.Rotary.Apply(k, offset, positions)
	}
	if ps != nil && ps.Cache != nil {
		k, v = ps.Cache.append(layer, k, v, offset)
	}
	mask := ps.mask(T)
	dropout := 0.0
	if a.store.Training() {
		dropout = a.AttnDropout
	}
	var y *torch.Tensor
	if a.Explicit {
		att := q.Matmul(k.T()).MulScalar(1 / math.Sqrt(float64(a.HeadDim)))
		if mask == nil {
			mask = torch.Ones([]int{T, T}, torch.Bool).Tril(0)
		}
		att = att.MaskedFill(mask.LogicalNot(), math.Inf(-1)).Softmax(-1)
		att = ps.hook(Site{layer, AttnWeights}, att)
		if dropout > 0 {
			att = att.Dropout(dropout, true)
		}
		y = att.Matmul(v)
	} else {
		y = torch.Attention(q, k, v, mask, dropout, mask == nil)
	}
	y = y.Transpose(1, 2).Reshape(B, T, C) // heads merged
	y = ps.hook(Site{layer, AttnPreProj}, y)
	out := a.Resid.Forward(a.Proj.Forward(y))
	return ps.hook(Site{layer, AttnOut}, out)
}
