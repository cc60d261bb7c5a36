package nn

import (
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Attention is causal multi-head self-attention with a fused QKV projection.
// With grouped-query attention (KVHeads < Heads) the projection's outputs are
// the Heads query heads, then the KVHeads key heads, then the KVHeads value
// heads; otherwise they are [3, Heads, HeadDim] (q, k, v).
type Attention struct {
	QKV, Proj   *Linear
	Heads       int
	KVHeads     int // key/value heads (Heads without grouping)
	HeadDim     int
	Rotary      *Rotary // nil with learned positions
	AttnDropout float64
	Resid       *Dropout
	// Explicit computes softmax(q kᵀ/√d) v step by step, exposing the
	// attention weights at the AttnWeights site; otherwise the fused kernel
	// runs.
	Explicit bool
	// Scale multiplies the scores q·k (1/√HeadDim when 0).
	Scale float64
	// Window > 0 restricts each query to the Window most recent positions,
	// itself included (local attention); 0 is global.
	Window int
	store  *Store
}

// NewAttention creates attention over width dim with the given heads.
func NewAttention(p Path, dim, heads int, bias bool, std, projStd, dropout float64) *Attention {
	return NewAttentionWith(p, AttentionOptions{Dim: dim, Heads: heads, QKVBias: bias, OutBias: bias,
		Std: std, ProjStd: projStd, Dropout: dropout})
}

// AttentionOptions configure NewAttentionWith.
type AttentionOptions struct {
	Dim, Heads int
	KVHeads    int // Heads when 0
	// QKVBias and OutBias give the input and output projections biases.
	QKVBias, OutBias bool
	// Std and ProjStd initialise the input and output projections.
	Std, ProjStd, Dropout float64
}

// NewAttentionWith creates attention as o describes.
func NewAttentionWith(p Path, o AttentionOptions) *Attention {
	kv := o.KVHeads
	if kv == 0 {
		kv = o.Heads
	}
	hd := o.Dim / o.Heads
	return &Attention{
		QKV:         NewLinear(p.Sub("qkv"), o.Dim, (o.Heads+2*kv)*hd, o.QKVBias, o.Std),
		Proj:        NewLinear(p.Sub("proj"), o.Dim, o.Dim, o.OutBias, o.ProjStd),
		Heads:       o.Heads,
		KVHeads:     kv,
		HeadDim:     hd,
		AttnDropout: o.Dropout,
		Resid:       NewDropout(p, o.Dropout),
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

// has reports whether a hook is installed at site.
func (ps *Pass) has(site Site) bool { return ps != nil && ps.Hooks != nil && ps.Hooks.Has(site) }

// heads applies site's hooks to per-head t [B, H, T, hd], which they see as
// TransformerLens's [B, T, H, hd]; without hooks t is returned untouched.
func (ps *Pass) heads(site Site, t *torch.Tensor) *torch.Tensor {
	if !ps.has(site) {
		return t
	}
	return ps.Hooks.Apply(site, t.Transpose(1, 2)).Transpose(1, 2)
}

// mask returns the boolean attention mask [B or 1, 1, L, S] for L new queries
// over S = offset+L keys, or nil when plain causal attention applies. A local
// window w > 0 hides keys more than w−1 positions before the query. With left
// padding the window counts cache slots, which equals counting positions since
// a row's real tokens are contiguous.
func (ps *Pass) mask(L, window int) *torch.Tensor {
	offset := 0
	var keyMask *torch.Tensor
	if ps != nil {
		offset, keyMask = ps.Offset, ps.KeyMask
	}
	windowed := window > 0 && offset+L > window
	if keyMask == nil && offset == 0 && !windowed {
		return nil
	}
	S := offset + L
	causal := torch.Ones([]int{L, S}, torch.Bool).Tril(offset) // key j visible to query i iff j ≤ offset+i
	if windowed {
		causal = causal.Triu(offset - window + 1) // … and j > offset+i−window
	}
	if keyMask == nil {
		return causal
	}
	// Padded queries attend to themselves only, so no row is empty.
	self := torch.Ones([]int{L, S}, torch.Bool).Triu(offset).Tril(offset)
	keys := keyMask.Unsqueeze(1).Unsqueeze(1) // [B, 1, 1, S]
	return causal.LogicalAnd(keys).LogicalOr(self)
}

// Forward attends over x [B, T, C] for layer layer.
func (a *Attention) Forward(x *torch.Tensor, layer int, ps *Pass) *torch.Tensor {
	B, T, C := x.Size(0), x.Size(1), x.Size(2)
	var q, k, v *torch.Tensor
	grouped := a.KVHeads != 0 && a.KVHeads != a.Heads
	if !grouped {
		qkv := a.QKV.Forward(x).View(B, T, 3, a.Heads, a.HeadDim).Permute(2, 0, 3, 1, 4) // [3, B, H, T, hd]
		// One backward for the three (a concatenation), not three full-size
		// zero-filled gradients added up.
		qkvs := qkv.Unbind(0)
		q, k, v = qkvs[0], qkvs[1], qkvs[2]
	} else {
		qkv := a.QKV.Forward(x).View(B, T, a.Heads+2*a.KVHeads, a.HeadDim).Transpose(1, 2) // [B, H+2·KV, T, hd]
		q = qkv.Narrow(1, 0, a.Heads)
		k = qkv.Narrow(1, a.Heads, a.KVHeads)
		v = qkv.Narrow(1, a.Heads+a.KVHeads, a.KVHeads)
	}
	q = ps.heads(Site{layer, AttnQ}, q)
	k = ps.heads(Site{layer, AttnK}, k)
	v = ps.heads(Site{layer, AttnV}, v)
	offset := 0
	var positions *torch.Tensor
	if ps != nil {
		offset, positions = ps.Offset, ps.Positions
	}
	if a.Rotary != nil {
		q = a.Rotary.Apply(q, offset, positions)
		k = a.Rotary.Apply(k, offset, positions)
		q = ps.heads(Site{layer, AttnRotQ}, q)
		k = ps.heads(Site{layer, AttnRotK}, k)
	}
	if ps != nil && ps.Cache != nil {
		k, v = ps.Cache.append(layer, k, v, offset)
	}
	if grouped { // every key/value head serves Heads/KVHeads consecutive query heads
		rep, S := a.Heads/a.KVHeads, k.Size(2)
		k = k.Unsqueeze(2).Expand(B, a.KVHeads, rep, S, a.HeadDim).Reshape(B, a.Heads, S, a.HeadDim)
		v = v.Unsqueeze(2).Expand(B, a.KVHeads, rep, S, a.HeadDim).Reshape(B, a.Heads, S, a.HeadDim)
	}
	mask := ps.mask(T, a.Window)
	dropout := 0.0
	if a.store.Training() {
		dropout = a.AttnDropout
	}
	var y *torch.Tensor
	// Hooks on the scores or the pattern need them: that block computes
	// attention step by step for this pass (the fused kernel stays the default).
	if a.Explicit || ps.has(Site{layer, AttnWeights}) || ps.has(Site{layer, AttnScores}) {
		scale := a.Scale
		if scale == 0 {
			scale = 1 / math.Sqrt(float64(a.HeadDim))
		}
		att := q.Matmul(k.T()).MulScalar(scale)
		if mask == nil {
			mask = torch.Ones([]int{T, T}, torch.Bool, q.Device()).Tril(0)
		}
		att = att.MaskedFill(mask.LogicalNot(), math.Inf(-1))
		att = ps.hook(Site{layer, AttnScores}, att)
		att = att.Softmax(-1)
		att = ps.hook(Site{layer, AttnWeights}, att)
		if dropout > 0 {
			att = att.Dropout(dropout, true)
		}
		y = att.Matmul(v)
	} else {
		if a.Scale != 0 { // the fused kernel divides by √hd itself
			q = q.MulScalar(a.Scale * math.Sqrt(float64(a.HeadDim)))
		}
		y = torch.Attention(q, k, v, mask, dropout, mask == nil)
	}
	z := ps.hook(Site{layer, AttnZ}, y.Transpose(1, 2)) // [B, T, H, hd]
	y = z.Reshape(B, T, C)                              // heads merged
	y = ps.hook(Site{layer, AttnPreProj}, y)
	out := a.Resid.Forward(a.Proj.Forward(y))
	return ps.hook(Site{layer, AttnOut}, out)
}
