// attention.cc: scaled dot-product attention on CPUs with AVX-512, by the
// shim's own GEMM (gemm.cc), for float32 without dropout or an explicit mask.
//
// The maths is libtorch 1.13's CPU path (its "math" attention): scores
// S = q·kᵀ·scale, P = softmax(S) with the causal mask, out = P·v; the
// backward dV = Pᵀ·dO, dP = dO·vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ =
// dS·k·scale, dK = dSᵀ·q·scale. What differs is where the products run and
// what they skip:
//   - q, k, v and dO are read through their strides (the heads' transposes
//     cost no copies), and out is written as [B, L, H, E] and returned as its
//     [B, H, L, E] view, so the caller's transpose back to tokens is free;
//   - rows go in blocks of 48, and a causal block's products stop at its
//     last row's key (the masked half of S is neither computed nor
//     multiplied: about half the FLOPs of libtorch's bmm path at L = S);
//   - each block of rows makes its scores, their softmax (AVX-512, over the
//     keys the row sees only; a masked probability is exactly zero) and its
//     output in one pass, while the block is in cache; the backward's dP,
//     the softmax's gradient and dQ the same way. libtorch's exp is Sleef's
//     (1 ulp), ours a degree-7 polynomial (about 1 ulp): probabilities can
//     differ from the bmm path's in the last bits.
// With create_graph the backward is libtorch's, differentiable (recomputed
// from the saved inputs). TestAttentionKernel checks outputs and gradients
// against float64 libtorch attention.

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>
#include <limits>

#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace hl {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t RB = 48;  // rows (and keys) per block

// libtorch_attention is libtorch's own (its math path on the CPU).
at::Tensor libtorch_attention(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                              const c10::optional<at::Tensor> &mask, double dropout_p, bool causal) {
#if HL_TORCH_GE(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask, dropout_p, causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask, dropout_p, false, causal));
#endif
}

// Heads addresses one head's [rows, cols] matrix of a [B, H, rows, cols]
// tensor by its strides.
struct Heads {
  const float *p;
  int64_t sb, sh, rs, cs;
  explicit Heads(const at::Tensor &t)
      : p(t.data_ptr<float>()), sb(t.stride(0)), sh(t.stride(1)), rs(t.stride(2)), cs(t.stride(3)) {}
  // at is head (b, h) from row r on; its transpose swaps rs and cs.
  GemmOperand at(int64_t b, int64_t h, int64_t r = 0) const { return {p + b * sb + h * sh + r * rs, rs, cs}; }
  GemmOperand t(int64_t b, int64_t h, int64_t r = 0) const { return {p + b * sb + h * sh + r * rs, cs, rs}; }
};

// Shape is what every phase iterates over: heads, row blocks and, for a
// causal block, the keys it sees.
struct Shape {
  int64_t B, H, L, S, E, Ev;
  bool causal;
  int64_t blocks() const { return (L + RB - 1) / RB; }
  int64_t keys(int64_t r1) const { return causal ? std::min(S, r1) : S; }  // keys seen by rows < r1
  // each calls f(b, h, r0, r1) for every (head, block of rows), in parallel.
  template <typename F>
  void each(const F &f) const {
    const int64_t nb = blocks();
    at::parallel_for(0, B * H * nb, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t bh = u / nb, r0 = (u % nb) * RB;
        f(bh / H, bh % H, r0, std::min(L, r0 + RB));
      }
    });
  }
};

void scale_rows(float *p, int64_t rows, int64_t cols, int64_t ld, float s) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) p[i * ld + j] *= s;
}

// softmax_row turns row[0, seen) of raw scores into probabilities,
// softmax(scale · row), and zeroes row[seen, n): the masked keys of a
// causal row. softmax_grad_row turns dp[0, seen) into the scores' gradient
// p ⊙ (dp − Σ p·dp) and zeroes dp[seen, n). Only the keys a row sees are
// touched (the bmm path exponentiates the masked half too); both run while
// the block's rows are in cache, right after the product that made them.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f")
// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_ps()
// and warn about it at -O3 (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// exp16 is eˣ to about 1 ulp: x = n·ln 2 + r (Cody–Waite, |r| ≤ ln 2 / 2),
// eʳ by its Taylor polynomial of degree 7 (truncation < 1e-8 relative),
// times 2ⁿ. Inputs below −103 give 0 (or a denormal), as expf does.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.72f)), _mm512_set1_ps(-103.9f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

// hmax and hsum reduce a vector's lanes (GCC 12's _mm512_reduce_* warn).
inline float hmax(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return *std::max_element(t, t + 16);
}
inline float hsum(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float s = 0;
  for (float x : t) s += x;
  return s;
}

inline __mmask16 tail(int64_t left) { return left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1); }

void softmax_row(float *row, int64_t seen, int64_t n, float scale) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < seen; j += 16)
    mx = _mm512_mask_max_ps(mx, tail(seen - j), mx, _mm512_maskz_loadu_ps(tail(seen - j), row + j));
  const __m512 m = _mm512_set1_ps(hmax(mx) * scale), sc = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < seen; j += 16) {
    const __mmask16 k = tail(seen - j);
    const __m512 e = exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, row + j), sc, m));
    sum = _mm512_mask_add_ps(sum, k, sum, e);
    _mm512_mask_storeu_ps(row + j, k, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / hsum(sum));
  for (int64_t j = 0; j < seen; j += 16)
    _mm512_mask_storeu_ps(row + j, tail(seen - j), _mm512_mul_ps(_mm512_maskz_loadu_ps(tail(seen - j), row + j), inv));
  std::fill(row + seen, row + n, 0.0f);
}

void softmax_grad_row(const float *p, float *dp, int64_t seen, int64_t n) {
  __m512 dot = _mm512_setzero_ps();
  for (int64_t j = 0; j < seen; j += 16) {
    const __mmask16 k = tail(seen - j);
    dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + j), _mm512_maskz_loadu_ps(k, dp + j), dot);
  }
  const __m512 d = _mm512_set1_ps(hsum(dot));
  for (int64_t j = 0; j < seen; j += 16) {
    const __mmask16 k = tail(seen - j);
    const __m512 pj = _mm512_maskz_loadu_ps(k, p + j);
    _mm512_mask_storeu_ps(dp + j, k, _mm512_mul_ps(pj, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, dp + j), d)));
  }
  std::fill(dp + seen, dp + n, 0.0f);
}
#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
void softmax_row(float *row, int64_t seen, int64_t n, float scale) {
  float m = -std::numeric_limits<float>::infinity(), sum = 0;
  for (int64_t j = 0; j < seen; ++j) m = std::max(m, row[j]);
  for (int64_t j = 0; j < seen; ++j) sum += row[j] = std::exp(row[j] * scale - m * scale);
  for (int64_t j = 0; j < seen; ++j) row[j] *= 1.0f / sum;
  std::fill(row + seen, row + n, 0.0f);
}
void softmax_grad_row(const float *p, float *dp, int64_t seen, int64_t n) {
  float dot = 0;
  for (int64_t j = 0; j < seen; ++j) dot += p[j] * dp[j];
  for (int64_t j = 0; j < seen; ++j) dp[j] = p[j] * (dp[j] - dot);
  std::fill(dp + seen, dp + n, 0.0f);
}
#endif

struct Attention : public torch::autograd::Function<Attention> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &q_in, const at::Tensor &k_in,
                               const at::Tensor &v_in, double scale, bool causal) {
    RECORD_USER_SCOPE("hl::attention");
    const at::Tensor q = q_in.detach(), k = k_in.detach(), v = v_in.detach();
    const Shape sh{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), causal};
    const Heads Q(q), K(k), V(v);
    const float s = static_cast<float>(scale);
    // One pass per block of rows: its scores, their softmax, its output,
    // while the block's probabilities are in cache. P [B, H, L, S] keeps
    // them for the backward; a causal block's columns from its last key on
    // are never written or read.
    auto P = at::empty({sh.B, sh.H, sh.L, sh.S}, q.options());
    auto out = at::empty({sh.B, sh.L, sh.H, sh.Ev}, q.options());
    const Heads Pm(P);
    float *pp = P.data_ptr<float>(), *op = out.data_ptr<float>();
    sh.each([&](int64_t b, int64_t h, int64_t r0, int64_t r1) {
      float *rows = pp + ((b * sh.H + h) * sh.L + r0) * sh.S;
      const int64_t n = sh.keys(r1);
      gemm(r1 - r0, n, sh.E, Q.at(b, h, r0), K.t(b, h), rows, sh.S, nullptr);
      for (int64_t i = 0; i < r1 - r0; ++i)
        softmax_row(rows + i * sh.S, causal ? std::min(sh.S, r0 + i + 1) : sh.S, n, s);
      gemm(r1 - r0, sh.Ev, n, Pm.at(b, h, r0), V.at(b, h), op + ((b * sh.L + r0) * sh.H + h) * sh.Ev, sh.H * sh.Ev,
           nullptr);
    });
    ctx->save_for_backward({q_in, k_in, v_in});
    ctx->saved_data["P"] = P;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["causal"] = causal;
    return {out.permute({0, 2, 1, 3})};
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::attention_backward");
    const auto saved = ctx->get_saved_variables();
    const double scale = ctx->saved_data["scale"].toDouble();
    const bool causal = ctx->saved_data["causal"].toBool();
    if (at::GradMode::is_enabled()) {  // create_graph: libtorch's differentiable path
      const auto y = libtorch_attention(saved[0], saved[1], saved[2], {}, 0.0, causal);
      auto g = torch::autograd::grad({y}, {saved[0], saved[1], saved[2]}, {grads[0]}, true, true, false);
      g.resize(5);  // none for scale and causal
      return g;
    }
    const at::Tensor q = saved[0].detach(), k = saved[1].detach(), v = saved[2].detach();
    const at::Tensor P = ctx->saved_data["P"].toTensor();
    const at::Tensor gO = grads[0];
    const Shape sh{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), causal};
    const Heads Q(q), K(k), V(v), Pm(P), G(gO);
    const float s = static_cast<float>(scale);

    // By blocks of query rows: dP = dO·vᵀ on the keys the block sees, the
    // scores' gradient dS = P ⊙ (dP − rowsum(P ⊙ dP)) in its place, and
    // dQ = dS·k·scale, while the block is in cache.
    auto dS = at::empty_like(P);
    const Heads D(dS);
    auto gq = at::empty({sh.B, sh.H, sh.L, sh.E}, q.options());
    auto gk = at::empty({sh.B, sh.H, sh.S, sh.E}, q.options());
    auto gv = at::empty({sh.B, sh.H, sh.S, sh.Ev}, q.options());
    float *dsp = dS.data_ptr<float>(), *gqp = gq.data_ptr<float>(), *gkp = gk.data_ptr<float>(),
          *gvp = gv.data_ptr<float>();
    const float *pp = P.data_ptr<float>();
    sh.each([&](int64_t b, int64_t h, int64_t r0, int64_t r1) {
      const int64_t off = ((b * sh.H + h) * sh.L + r0) * sh.S, n = sh.keys(r1);
      float *rows = dsp + off;
      gemm(r1 - r0, n, sh.Ev, G.at(b, h, r0), V.t(b, h), rows, sh.S, nullptr);
      for (int64_t i = 0; i < r1 - r0; ++i)
        softmax_grad_row(pp + off + i * sh.S, rows + i * sh.S, causal ? std::min(sh.S, r0 + i + 1) : sh.S, n);
      float *qrows = gqp + ((b * sh.H + h) * sh.L + r0) * sh.E;
      gemm(r1 - r0, sh.E, n, D.at(b, h, r0), K.at(b, h), qrows, sh.E, nullptr);
      scale_rows(qrows, r1 - r0, sh.E, sh.E, s);
    });
    // dK = dSᵀ·q·scale and dV = Pᵀ·dO by blocks of keys: a causal block of
    // keys [j0, j1) is seen by the queries from j0 on (L = S).
    const Shape keys{sh.B, sh.H, sh.S, sh.S, sh.E, sh.Ev, false};
    keys.each([&](int64_t b, int64_t h, int64_t j0, int64_t j1) {
      const int64_t from = causal ? j0 : 0;
      float *krows = gkp + ((b * sh.H + h) * sh.S + j0) * sh.E;
      float *vrows = gvp + ((b * sh.H + h) * sh.S + j0) * sh.Ev;
      GemmOperand dst = D.t(b, h, from), pt = Pm.t(b, h, from);
      dst.p += j0 * D.cs;
      pt.p += j0 * Pm.cs;
      gemm(j1 - j0, sh.E, sh.L - from, dst, Q.at(b, h, from), krows, sh.E, nullptr);
      scale_rows(krows, j1 - j0, sh.E, sh.E, s);
      gemm(j1 - j0, sh.Ev, sh.L - from, pt, G.at(b, h, from), vrows, sh.Ev, nullptr);
    });
    return {gq, gk, gv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor attention(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const c10::optional<at::Tensor> &mask,
                     double dropout_p, bool causal) {
  const auto own = [&](const at::Tensor &t) {
    return t.dim() == 4 && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == at::kStrided;
  };
  const bool ours = own_gemm(q) && own(q) && own(k) && own(v) && !(mask.has_value() && mask->defined()) &&
                    dropout_p == 0 && q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1) &&
                    q.size(1) == v.size(1) && q.size(3) == k.size(3) && k.size(2) == v.size(2) &&
                    (!causal || q.size(2) == k.size(2)) && q.numel() > 0 && k.numel() > 0 && v.numel() > 0;
  if (!ours) return libtorch_attention(q, k, v, mask, dropout_p, causal);
  return Attention::apply(q, k, v, 1.0 / std::sqrt(static_cast<double>(q.size(3))), causal)[0];
}

}  // namespace hl
