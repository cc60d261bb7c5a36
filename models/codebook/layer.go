package codebook

import (
	"fmt"
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Layer is a group of G codebooks (paper §2; official code
// CodebookLayer/GroupCodebookLayer). Its input x [B, T, D] is split into G
// contiguous chunks of d = D/G features (G = 1: a vanilla codebook; G = the
// number of heads at attn_preproj: one codebook per head), and for each chunk
// and token:
//
//  1. a = LayerNorm_d(x): the codebook sees the normalised activation;
//  2. s_i = a · c_i / ‖c_i‖ for all C codes c_i (cosine ranking);
//  3. the k best codes are selected (no gradient);
//  4. y = (1/k) Σ c_i over them — the mean of the raw codes, as the official
//     code does (the paper says "sum"), replacing x;
//  5. the gradient passes straight through to a (∂L/∂a = ∂L/∂y), and the
//     reconstruction loss mean_tokens ‖y − sg(a)‖² of every codebook is added
//     to the training loss (λ = 1), so the selected codes receive ∂L/∂y / k
//     plus the MSE gradient and unselected codes nothing.
type Layer struct {
	G, C, K int           // codebooks, codes per codebook, codes selected per token
	D       int           // input width; each codebook sees D/G features
	Codes   *torch.Tensor // [G, C, D/G]
	LNW     *torch.Tensor // [G, D/G] LayerNorm gain
	LNB     *torch.Tensor // [G, D/G] LayerNorm bias
	Eps     float64
	// ChunkElems bounds the score matrix materialised at once (tokens×G×C).
	// The default, 2²³ floats (32 MiB), stays below the 64 MiB glibc mmap
	// threshold the torch package sets, so a chunk's buffer is reused from the
	// heap instead of being mapped and page-faulted in at every forward.
	ChunkElems int
	// Counts [G, C] counts, per code, the training forwards in which it was
	// selected at least once (since the last ResetCounts), as the official
	// update_metrics does (counts[unique ids] += 1): a code is dead where
	// its count is 0.
	Counts *torch.Tensor

	// Record keeps the ids and the input of the last forward (for caches,
	// searches and neuron baselines).
	Record bool
	// Bypass passes inputs through unchanged (used to collect the
	// underlying activations, e.g. for k-means initialisation); with Record
	// the input is still kept.
	Bypass bool
	// Intervention applied at the next forwards, if any.
	Intervention *Intervention
	// Reference runs the unfused path (Select, Lookup and autograd through
	// the MSE and straight-through) instead of torch.CodebookQuantize (fused.go).
	Reference bool

	lastIDs *torch.Tensor // [B, T, G, K] int64, when Record
	lastIn  *torch.Tensor // [B, T, D], when Record
	mse     *torch.Tensor // reconstruction loss of the last forward
	store   *nn.Store
}

// NewLayer creates G codebooks of C codes over width D at p: codes from
// N(0, 1) (PyTorch's nn.Embedding default, so ‖c‖ ≈ √d like the normalised
// inputs), LayerNorm gain 1 and bias 0.
func NewLayer(p nn.Path, D, G, C, K int) (*Layer, error) {
	switch {
	case G < 1 || D%G != 0:
		return nil, fmt.Errorf("codebook: width %d does not split into %d groups", D, G)
	case C < 1 || K < 1 || K > C:
		return nil, fmt.Errorf("codebook: need 1 ≤ k (%d) ≤ codes (%d)", K, C)
	}
	d := D / G
	l := &Layer{G: G, C: C, K: K, D: D, Eps: 1e-5, ChunkElems: 1 << 23, store: p.Store()}
	l.Codes = p.Param("codes", torch.Randn([]int{G, C, d}))
	l.LNW = p.Param("ln.weight", torch.Ones([]int{G, d}))
	l.LNB = p.Param("ln.bias", torch.Zeros([]int{G, d}))
	l.Counts = p.Buffer("counts", torch.Zeros([]int{G, C}, torch.Int64), false)
	return l, nil
}

// Normalize is step 1: the per-group LayerNorm of x [..., D] → [..., G, d].
func (l *Layer) Normalize(x *torch.Tensor) *torch.Tensor {
	d := l.D / l.G
	shape := append(x.Shape()[:x.Dim()-1], l.G, d)
	xs := x.Reshape(shape...)
	if l.G == 1 { // one gain and bias: libtorch's affine LayerNorm, one node
		return torch.LayerNorm(xs, 1, l.LNW.View(d), l.LNB.View(d), l.Eps)
	}
	return torch.LayerNorm(xs, 1, l.LNW, l.LNB, l.Eps) // a gain and bias per group: one node
}

// Select is steps 2–3: the ids [N, G, K] (int64) of the K codes most similar
// to a [N, G, d], computed without gradient in chunks of tokens so that the
// N×G×C score matrix never exists at once. Disabled codes (an intervention)
// are never chosen. Scores are computed in float32 even inside a bf16
// autocast region: bf16 keeps 8 bits of mantissa, so among thousands of codes
// near-equal scores would round together and the top-k would flip between
// them.
func (l *Layer) Select(a *torch.Tensor) *torch.Tensor {
	var ids *torch.Tensor
	torch.WithoutAutocast(a.Device().Type, func() { ids = l.selectFP32(a.To(torch.Float32)) })
	return ids
}

func (l *Layer) selectFP32(a *torch.Tensor) *torch.Tensor {
	var ids *torch.Tensor
	torch.NoGrad(func() {
		s := torch.NewScope()
		defer s.Close()
		N := a.Size(0)
		norm := l.Codes.Div(l.Codes.NormKeep(2, -1).ClampMin(1e-12)) // [G, C, d]
		normT := norm.Transpose(1, 2)                                // [G, d, C]
		at := a.Detach().Transpose(0, 1)                             // [G, N, d]
		var mask *torch.Tensor
		if iv := l.Intervention; iv != nil && len(iv.Disable) > 0 {
			mask = iv.disableMask(l.G, l.C, a.Device())
		}
		chunk := max(1, l.ChunkElems/(l.G*l.C))
		var parts []*torch.Tensor
		for start := 0; start < N; start += chunk {
			n := min(chunk, N-start)
			scores := at.Narrow(1, start, n).Bmm(normT) // [G, n, C]
			if mask != nil {
				scores = scores.MaskedFill(mask, math.Inf(-1))
			}
			_, idx := scores.TopK(l.K, -1) // [G, n, K]
			parts = append(parts, idx)
		}
		ids = torch.Cat(parts, 1).Transpose(0, 1).Contiguous() // [N, G, K]
		s.Keep(ids)
	})
	return ids
}

// Lookup is step 4: the mean of the selected raw codes, [N, G, d], for ids
// [N, G, K]. An id of −1 (a blocked slot) contributes a zero vector but still
// counts in the divisor K, as in the official code.
func (l *Layer) Lookup(ids *torch.Tensor) *torch.Tensor {
	N := ids.Size(0)
	d := l.D / l.G
	GC := l.G * l.C
	// Blocked slots read an extra zero row (id G·C) of the table: cheaper than
	// masking the [N, G, K, d] gathered codes (a broadcast multiply as costly
	// as the lookup itself on the CPU), and the zero row's gradient is dropped.
	table := torch.Cat([]*torch.Tensor{l.Codes.Reshape(GC, d), torch.Zeros([]int{1, d}, l.Codes.DType(), ids.Device())}, 0)
	offset := torch.Arange(0, float64(GC), float64(l.C), ids.Device()).View(1, l.G, 1)
	flat := ids.Add(offset).MaskedFill(ids.LtScalar(0), float64(GC)).Reshape(-1)
	vecs := torch.Embedding(table, flat).View(N, l.G, l.K, d)
	return vecs.Sum(2).DivScalar(float64(l.K))
}

// Forward replaces x [B, T, D] by its codebook reconstruction and records
// the reconstruction loss (MSELoss) and, while training, the code counts.
func (l *Layer) Forward(x *torch.Tensor) *torch.Tensor {
	shape := x.Shape()
	if l.Record {
		if l.lastIn != nil {
			l.lastIn.Free()
		}
		l.lastIn = x.Detach().Retain()
	}
	if l.Bypass {
		l.mse = nil
		return x
	}
	a := l.Normalize(x)
	tokens := a.Numel() / l.D
	flat := a.Reshape(tokens, l.G, l.D/l.G)
	out, ids, mse := l.Quantize(flat, shape)
	l.mse = mse
	if l.Record {
		if l.lastIDs != nil {
			l.lastIDs.Free()
		}
		l.lastIDs = ids.View(append(shape[:len(shape)-1], l.G, l.K)...).Detach().Retain()
	}
	return out.Reshape(shape...)
}

// Quantize is steps 2–5 on normalised inputs a [N, G, d]: it returns the
// output (value: the mean of the selected codes; gradient: straight through
// to a), the ids [N, G, K] and the reconstruction loss Σ over codebooks of
// mean_tokens ‖y − sg(a)‖². shape is the input's shape, for interventions
// that address token positions.
func (l *Layer) Quantize(a *torch.Tensor, shape []int) (out, ids, mse *torch.Tensor) {
	if l.fused(a) {
		return l.quantizeFused(a)
	}
	ids = l.Select(a)
	if iv := l.Intervention; iv != nil {
		ids = iv.patch(ids, shape)
	}
	q := l.Lookup(ids)
	if l.store.Training() {
		l.count(ids)
	}
	ad := a.Detach()
	mse = q.Sub(ad).Square().Sum(-1).Mean(0).Sum()
	out = q.Add(a.Sub(ad)) // straight-through: ∂out/∂a = I
	return out, ids, mse
}

// MSE is the reconstruction loss of the last Forward (a scalar in the graph).
func (l *Layer) MSE() *torch.Tensor { return l.mse }

// IDs returns the ids of the last Forward [B, T, G, K] when Record is set (the
// layer keeps ownership until the next Forward or Close).
func (l *Layer) IDs() *torch.Tensor { return l.lastIDs }

// Input returns the input of the last Forward [B, T, D] when Record is set.
func (l *Layer) Input() *torch.Tensor { return l.lastIn }

// count adds 1 to the Counts of every code that ids [N, G, K] select at
// least once (the official update_metrics: one count per forward, not per
// selection). Blocked slots (−1) count nothing; the official code would
// count them on the last code, a quirk of inference-time interventions
// that hiddenlab does not copy (it counts while training only).
func (l *Layer) count(ids *torch.Tensor) { torch.CodebookCount(ids, l.Counts) }

// ResetCounts zeroes the usage counts.
func (l *Layer) ResetCounts() { l.Counts.Fill(0) }

// DeadFraction is the share of codes (over all G codebooks) never selected
// since the last ResetCounts.
func (l *Layer) DeadFraction() float64 {
	var f float64
	torch.WithScope(func() { f = l.Counts.EqScalar(0).To(torch.Float64).Mean().Item() })
	return f
}

// ReplaceDead overwrites every code unused since the last reset with a
// random normalised input of x [.., D] plus rho·‖v‖·N(0, I) noise (the
// official code's optional dead-code replacement), then resets the counts.
// As in the official replace_dead_codes, each codebook draws its inputs
// without replacement (the first n of a random permutation of the N
// inputs; when n > N the permutation repeats). It returns how many codes
// were replaced.
func (l *Layer) ReplaceDead(x *torch.Tensor, rho float64) int {
	replaced := 0
	torch.NoGrad(func() {
		torch.WithScope(func() {
			d := l.D / l.G
			a := l.Normalize(x).Reshape(-1, l.G, d) // [N, G, d]
			N := a.Size(0)
			dead := l.Counts.EqScalar(0).Bools()
			codes := l.Codes.Detach().Clone()
			for g := 0; g < l.G; g++ {
				var rows []int64
				for c := 0; c < l.C; c++ {
					if dead[g*l.C+c] {
						rows = append(rows, int64(c))
					}
				}
				if len(rows) == 0 {
					continue
				}
				pick := randomPermutation(N, len(rows), a.Device())
				v := a.Select(1, g).IndexSelect(0, pick) // [n, d]
				if rho > 0 {
					v = v.Add(torch.RandnLike(v).Mul(v.NormKeep(2, -1)).MulScalar(rho))
				}
				idx := torch.FromSlice(rows, nil, a.Device())
				codes = codes.IndexPut([]*torch.Tensor{torch.Full([]int{len(rows)}, float64(g), torch.Int64, a.Device()), idx}, v, false)
				replaced += len(rows)
			}
			l.Codes.CopyFrom(codes)
		})
	})
	l.ResetCounts()
	return replaced
}

// randomPermutation returns the first n entries (int64) of a uniformly
// random permutation of 0..N−1 repeated as often as needed (the official
// torch.randperm, tiled when n > N): n distinct inputs when n ≤ N.
func randomPermutation(N, n int, dev torch.Device) *torch.Tensor {
	_, perm := torch.Empty([]int{N}, dev).Uniform(0, 1).TopK(min(n, N), -1) // random keys, sorted: a random order
	if n <= N {
		return perm
	}
	reps := make([]*torch.Tensor, (n+N-1)/N)
	for i := range reps {
		reps[i] = perm
	}
	return torch.Cat(reps, 0).Narrow(0, 0, n)
}

// KMeansInit sets each codebook's codes to k-means centroids (Lloyd's
// algorithm, cosine-free Euclidean on the normalised inputs, iters
// iterations, centroids seeded from random inputs) of the normalised
// activations x [.., D]. It works for group codebooks too (the official
// code's group k-means is a no-op; this is not). The assignment step works
// in chunks of ChunkElems distances and each iteration frees its
// temporaries, so memory stays bounded by the inputs and one chunk.
func (l *Layer) KMeansInit(x *torch.Tensor, iters int) {
	torch.NoGrad(func() {
		torch.WithScope(func() {
			d := l.D / l.G
			a := l.Normalize(x).Reshape(-1, l.G, d).Transpose(0, 1).Contiguous() // [G, N, d]
			N := a.Size(1)
			pick := torch.RandInt(0, N, []int{l.C}, a.Device())
			cent := a.IndexSelect(1, pick) // [G, C, d]
			chunk := max(1, l.ChunkElems/(l.G*l.C))
			for it := 0; it < iters; it++ {
				s := torch.NewScope()
				// The nearest centroid minimises ‖a − c‖² = ‖a‖² − 2 a·c + ‖c‖²,
				// i.e. maximises a·c − ‖c‖²/2, per group.
				half := cent.Square().Sum(-1).MulScalar(0.5).Unsqueeze(1) // [G, 1, C]
				centT := cent.Transpose(1, 2)                             // [G, d, C]
				var parts []*torch.Tensor
				for start := 0; start < N; start += chunk {
					cs := torch.NewScope()
					best := a.Narrow(1, start, min(chunk, N-start)).Bmm(centT).Sub(half).Argmax(-1, false)
					cs.Keep(best)
					cs.Close()
					parts = append(parts, best)
				}
				assign := torch.Cat(parts, 1) // [G, N]
				sums := torch.ZerosLike(cent).ScatterAdd(1, assign.Unsqueeze(-1).Expand(l.G, N, d), a)
				counts := torch.Zeros([]int{l.G, l.C}, a.Device()).ScatterAdd(1, assign, torch.Ones([]int{l.G, N}, a.Device()))
				mean := sums.Div(counts.ClampMin(1).Unsqueeze(-1))
				empty := counts.EqScalar(0).Unsqueeze(-1)
				cent = torch.Where(empty, cent, mean)
				s.Keep(cent)
				s.Close()
			}
			l.Codes.CopyFrom(cent)
		})
	})
}

// Close frees the recordings.
func (l *Layer) Close() {
	l.lastIDs.Free()
	l.lastIn.Free()
	l.lastIDs, l.lastIn = nil, nil
}
