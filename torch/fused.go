package torch

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// CodebookQuantize is the fused quantisation of a codebook layer
// (models/codebook) in one shim call: for a [N, G, d] (LayerNorm'd inputs of
// G codebooks) and codes [G, C, d] it returns
//
//   - out [N, G, d]: the mean of the k codes of each group with the highest
//     cosine similarity a·c/‖c‖; its gradient passes straight through to a;
//   - ids [N, G, k] (int64): the selected codes, best first;
//   - mse (a scalar): Σ_g mean_N ‖out − sg(a)‖², whose gradient reaches the
//     selected codes only.
//
// The scores are computed without an autograd graph in blocks of tokens
// sized from the L2 cache (at most chunk when chunk > 0), all groups in one batched
// GEMM (float32 on a CPU with AVX-512: the shim's own kernel, see
// CodebookScores; where the CPU also has AVX512_BF16, only the codes that a
// bfloat16 screen with a proven error bound leaves as possible winners are
// scored exactly — the same ids, see cc/codebook.cc; HIDDENLAB_SIMD=avx512f
// turns the screen off); the backward is hand-written (a custom autograd node): a receives
// ∂L/∂out, the selected codes (∂L/∂out + ∂L/∂mse·2(out − a)/N)/k,
// accumulated in a fixed order, so that runs with the same seed and thread
// count are bitwise identical.
func CodebookQuantize(a, codes *Tensor, k, chunk int) (out, ids, mse *Tensor) {
	o, i, m, err := capi.CodebookQuantize(a.handle(), codes.handle(), int64(k), int64(chunk))
	fail("codebook_quantize", err)
	return adopt(o), adopt(i), adopt(m)
}

// CodebookScores returns the scores CodebookQuantize ranks, [N, G, C]: the
// cosine a·c/‖c‖ of every token's group input a [N, G, d] with every code of
// its group (codes [G, C, d]), without an autograd graph — for looking at the
// margins the selection decides on. They are computed as the op computes
// them: in float32 on a CPU with AVX-512 by the shim's own kernel (one chain
// of fused multiply-adds over d per score, the order of the BLAS's own GEMM
// for d ≤ 256), elsewhere as one batched GEMM with the normalised codes.
func CodebookScores(a, codes *Tensor) *Tensor {
	h, err := capi.CodebookScores(a.handle(), codes.handle())
	return wrap("codebook_scores", h, err)
}

// CodebookCount adds 1, in place, to counts[g, c] (int64 [G, C]) for every
// code c of group g that ids (int64 [N, G, k], CodebookQuantize's) select at
// least once: a code's count is the number of calls that selected it, not
// the number of selections. Ids below 0 (blocked slots) or past C count
// nothing. On the CPU one pass over the ids; elsewhere the same from tensor
// ops.
func CodebookCount(ids, counts *Tensor) {
	fail("codebook_count", capi.CodebookCount(ids.handle(), counts.handle()))
}

// GroupedMM is the grouped matrix product of a mixture's routed
// projections, one shim call and one autograd node for all groups. The
// rows of x [R, p] — or x's rows src[i] when src is not nil (int64 [M]) —
// are sorted by group, loads[j] of them in group j; row i of group j is
// multiplied by w[j] (w [G, p, q]; with transW, w is [G, q, p] and the
// product is by w[j]ᵀ, as torch.Linear) and added to row dest[i] of a zero
// [outRows, q] result; without dest (nil) the result is [M, q], row i in
// place i. M = Σ loads. Each group is one GEMM on views of x and w; the
// gather of rows src and the scatter-add into rows dest happen in the op
// (in float32 on a CPU with AVX-512 inside the GEMM: the rows are read where
// they lie and each product is added into its rows by the micro-kernel, no
// copies), and the backward sums rows in a fixed order (bitwise
// reproducible).
func GroupedMM(x, w *Tensor, loads []int, src, dest *Tensor, outRows int, transW bool) *Tensor {
	h, err := capi.GroupedMM(x.handle(), w.handle(), int64s(loads), opt(src), opt(dest), int64(outRows), transW)
	return wrap("grouped_mm", h, err)
}

// RoutedIn is the input projection of a routed sublayer whose weight w
// [S + G·g, n] holds S shared rows and then G groups of g routed rows
// (models/mohd's gathered path): row t of the [rows, n] result is
// xs[t]·w[:S] + Σ_k x[t·K + k]·w_j over its K assignments, x [rows·K, g]
// in order of rows, the k-th in group j. order [rows·K] lists the
// assignments sorted by group, loads[j] of them in group j (no row twice
// in one group). xs [rows, S] may be nil when S = 0. One node: on AVX-512
// CPUs one kernel keeps each output's chain in registers from the shared
// steps through the row's groups (in order of group); the backward writes
// w's whole gradient, a GEMM per row block, where ops on views of w would
// each zero-fill a full-size gradient for autograd to add.
func RoutedIn(xs, x, w *Tensor, loads []int, order *Tensor, rows int) *Tensor {
	h, err := capi.RoutedIn(opt(xs), x.handle(), w.handle(), int64s(loads), order.handle(), int64(rows))
	return wrap("routed_in", h, err)
}

// RoutedOut is the output projection of such a sublayer, w [S + G·g, p]
// in torch.Linear's layout, for x [R, p]: y [R, S + G·g] holds x·w[:S]ᵀ in
// its first S columns and, in group j's g columns, x[t]·w_jᵀ at the rows
// t = src[i] of group j (sorted by group, loads[j] of them, no row twice in
// a group) and zeros at the other rows. One node: the products write into
// y's columns where they lie, x's gradient starts as the shared part's
// GEMM, w's is written block by block.
func RoutedOut(x, w *Tensor, loads []int, g int, src *Tensor) *Tensor {
	h, err := capi.RoutedOut(x.handle(), w.handle(), int64s(loads), int64(g), src.handle())
	return wrap("routed_out", h, err)
}

// SquareSum is Σ x² over x's last dimension (models/mohd's group
// energies): x.Square().Sum(-1), which on the CPU over a short last
// dimension (≤ 64 entries) is one loop a row forward and backward in the
// shim, where libtorch's reductions run a partial vector a row.
func SquareSum(x *Tensor) *Tensor {
	h, err := capi.SquareSum(x.handle())
	return wrap("square_sum", h, err)
}

// RouteTopK is a mixture router's choice for p [rows, G]: top [rows, k]
// (int64) holds each row's k largest entries' indices, largest first (NaN
// counts as largest, the lower index first between equals: TopK's
// choice), order [rows·k] the assignments a = t·k + i (row t's i-th
// choice) sorted by group and within a group by a, and loads[j] group j's
// count. One pass and a counting sort in the shim, where TopK, a one-hot
// sum and a Sort take three kernels made for long rows; the indices carry
// no gradient (the chosen values are p.Gather(1, top)). On another device
// p's rows are read on the CPU.
func RouteTopK(p *Tensor, k int) (top, order *Tensor, loads []int) {
	if p.Dim() != 2 {
		panic(&Error{Op: "route_topk", Kind: KindShape, Msg: fmt.Sprintf("p must be 2-D [rows, groups], not %v", p.Shape())})
	}
	ls := make([]int64, p.Size(1))
	t, o, err := capi.RouteTopK(p.handle(), int64(k), ls)
	fail("route_topk", err)
	loads = make([]int, len(ls))
	for j, n := range ls {
		loads[j] = int(n)
	}
	return adopt(t), adopt(o), loads
}

// Monarch is the group fusion of models/mohd, F(y) = Pᵀ·BD₂·P·BD₁·y, in
// one shim call and one autograd node: y [BT, N·g] in N groups of g, bd1
// [N, g, g] mixes within each group, the transpose permutation P turns the
// groups into g positions of N, bd2 [g, N, N] mixes across groups at each
// position, and Pᵀ turns back: out[t, n·g+i] = Σ_m (Σ_j y[t, m·g+j]·
// bd1[m, j, i])·bd2[i, m, n]. On the CPU (float32 and float64, g ≤ 64)
// the shim computes it token by token in vectorised loops, the backward
// recomputing the intermediate and summing the weight gradients in a fixed
// order (bit-identical for any thread count); elsewhere both products are
// batched GEMMs on operands made contiguous once (composed from libtorch
// ops, the products' transposed operands cost more than the products at
// g = 8).
func Monarch(y, bd1, bd2 *Tensor) *Tensor {
	h, err := capi.Monarch(y.handle(), bd1.handle(), bd2.handle())
	return wrap("monarch", h, err)
}

// SwiGLU is the gate of a SwiGLU feed-forward layer, silu(a) ⊙ b for x =
// [a | b] split in two halves of its last dimension: x [..., 2n] → [..., n].
// One autograd node: on the CPU in float32 the forward reads x once and the
// backward writes both halves of x's gradient in one pass (composed, the
// split, silu and product cost a concatenation of the halves' gradients
// and about thirteen passes over the data); σ is recomputed, not saved.
func SwiGLU(x *Tensor) *Tensor {
	h, err := capi.SwiGLU(x.handle())
	return wrap("swiglu", h, err)
}
