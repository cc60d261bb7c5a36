// groupnorm.cc: LayerNorm over the last dimension with a gain and bias per
// group — x [..., G, d] normalised over d, then y = x̂·w[g] + b[g] with w,
// b [G, d] — as one custom autograd node (models/codebook's group
// codebooks: one LayerNorm per head at attn_preproj).
//
// Composed from libtorch ops it is a LayerNorm without affine, a product
// and a sum, and in the backward the LayerNorm's backward, a product and
// two reductions for the gain's and the bias's gradients: eight passes over
// [N, G, d] and five nodes. Here the forward reads x once and writes y,
// keeping each row's mean and 1/σ; the backward reads x and ∂y once, writes
// ∂x and sums the gain's and bias's gradients in blocks of tokens (a fixed
// order, whatever the threads: the sums are reproducible). In the codebook
// benchmark's step (four group codebooks, [2048, 4, 64] each; `hlbench
// -child codebook:codebook -threads 2 -profile -profile-shapes`) the
// composed ops took 5.3 ms (LayerNorm 1.95, its backward 0.72, the gain's
// product 0.91 and its backward 0.55 + 0.67, the bias 0.47), this node 2.0
// (0.6–0.7 forward, 1.2–1.4 backward; two runs).
//
// Rounding: mean and variance are float sums in 16 interleaved partial sums
// (libtorch's CPU LayerNorm uses its own vectorised order), so y differs
// from the composed ops' in the last bits; TestGroupLayerNorm checks values
// and gradients against float64. Other devices and dtypes, and gradients
// that must themselves be differentiable (create_graph), take the composed
// ops.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Args are one call's arrays: x, y (or ∂x) and ∂y [rows, d] with rows =
// R·G (row r in group r mod G), the gain w and bias b [G, d], each row's
// mean and 1/σ, and the backward's per-block sums part [blocks, 2, G, d].
struct Args {
  int64_t G, d, R;
  float eps;
  const float *x, *w, *b, *dy;
  float *y, *mean, *rstd, *part;
};

// reduce16 adds 16 partial sums pairwise.
inline float reduce16(float *acc) {
  for (int w = 8; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

// forward_rows normalises rows [r0, r1): the mean and Σ (x − μ)² as 16
// interleaved float partial sums each (vector registers), then y.
inline void forward_rows(const Args &a, int64_t r0, int64_t r1) {
  const int64_t d = a.d;
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = r0; r < r1; ++r) {
    const float *__restrict p = a.x + r * d;
    const float *__restrict wg = a.w + (r % a.G) * d;
    const float *__restrict bg = a.b + (r % a.G) * d;
    float *__restrict o = a.y + r * d;
    float acc[16] = {}, sq[16] = {};
    int64_t i = 0;
    for (; i + 16 <= d; i += 16)
      for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
    for (; i < d; ++i) acc[i % 16] += p[i];
    const float m = reduce16(acc) * inv_d;
    for (i = 0; i + 16 <= d; i += 16)
      for (int j = 0; j < 16; ++j) sq[j] += (p[i + j] - m) * (p[i + j] - m);
    for (; i < d; ++i) sq[i % 16] += (p[i] - m) * (p[i] - m);
    const float s = 1.0f / std::sqrt(reduce16(sq) * inv_d + a.eps);
    for (i = 0; i < d; ++i) o[i] = (p[i] - m) * s * wg[i] + bg[i];
    a.mean[r] = m;
    a.rstd[r] = s;
  }
}

// kBlock is the tokens per block of the backward's gain and bias sums.
constexpr int64_t kBlock = 64;

// backward_block writes ∂x (into a.y) for the rows of block blk's tokens
// and the block's sums Σ ∂y·x̂ and Σ ∂y per group into a.part; xh and h
// hold a row's x̂ and ∂y·w.
inline void backward_block(const Args &a, int64_t blk, float *__restrict xh, float *__restrict h) {
  const int64_t G = a.G, d = a.d;
  const float inv_d = 1.0f / static_cast<float>(d);
  float *__restrict gw = a.part + blk * 2 * G * d;
  float *__restrict gb = gw + G * d;
  std::fill(gw, gw + 2 * G * d, 0.0f);
  for (int64_t r = blk * kBlock * G; r < std::min(a.R, (blk + 1) * kBlock) * G; ++r) {
    const int64_t g = r % G;
    const float *__restrict p = a.x + r * d;
    const float *__restrict dy = a.dy + r * d;
    const float *__restrict wg = a.w + g * d;
    float *__restrict gwg = gw + g * d;
    float *__restrict gbg = gb + g * d;
    const float m = a.mean[r], s = a.rstd[r];
    for (int64_t i = 0; i < d; ++i) {
      xh[i] = (p[i] - m) * s;
      h[i] = dy[i] * wg[i];
      gwg[i] += dy[i] * xh[i];
      gbg[i] += dy[i];
    }
    float sh[16] = {}, shx[16] = {};
    int64_t i = 0;
    for (; i + 16 <= d; i += 16)
      for (int j = 0; j < 16; ++j) {
        sh[j] += h[i + j];
        shx[j] += h[i + j] * xh[i + j];
      }
    for (; i < d; ++i) {
      sh[i % 16] += h[i];
      shx[i % 16] += h[i] * xh[i];
    }
    const float mh = reduce16(sh) * inv_d, mhx = reduce16(shx) * inv_d;
    float *__restrict o = a.y + r * d;
    for (i = 0; i < d; ++i) o[i] = (h[i] - mh - xh[i] * mhx) * s;
  }
}

// The loops are compiled for any x86-64 and, chosen at run time, for AVX2
// with FMA and for AVX-512 (where the compiler may fuse a multiply and an
// add: the levels differ in the last bits).
#if defined(__x86_64__) && defined(__GNUC__)
#define HL_GROUPNORM_SIMD 1
__attribute__((target("avx2,fma"))) void forward_rows_avx2(const Args &a, int64_t r0, int64_t r1) {
  forward_rows(a, r0, r1);
}
__attribute__((target("avx512f,avx2,fma"))) void forward_rows_avx512(const Args &a, int64_t r0, int64_t r1) {
  forward_rows(a, r0, r1);
}
__attribute__((target("avx2,fma"))) void backward_block_avx2(const Args &a, int64_t blk, float *xh, float *h) {
  backward_block(a, blk, xh, h);
}
__attribute__((target("avx512f,avx2,fma"))) void backward_block_avx512(const Args &a, int64_t blk, float *xh,
                                                                        float *h) {
  backward_block(a, blk, xh, h);
}
#endif

void forward_loops(const Args &a) {
  at::parallel_for(0, a.R * a.G, 64, [&](int64_t r0, int64_t r1) {
#if HL_GROUPNORM_SIMD
    if (hl::simd_avx512()) return forward_rows_avx512(a, r0, r1);
    if (hl::simd_avx2()) return forward_rows_avx2(a, r0, r1);
#endif
    forward_rows(a, r0, r1);
  });
}

void backward_loops(const Args &a) {
  at::parallel_for(0, (a.R + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> xh(static_cast<size_t>(a.d)), h(static_cast<size_t>(a.d));
    for (int64_t blk = b0; blk < b1; ++blk) {
#if HL_GROUPNORM_SIMD
      if (hl::simd_avx512()) {
        backward_block_avx512(a, blk, xh.data(), h.data());
        continue;
      }
      if (hl::simd_avx2()) {
        backward_block_avx2(a, blk, xh.data(), h.data());
        continue;
      }
#endif
      backward_block(a, blk, xh.data(), h.data());
    }
  });
}

struct GroupLayerNorm : public torch::autograd::Function<GroupLayerNorm> {
  // x [R, G, d] (contiguous float32 on the CPU), w and b [G, d].
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w, const at::Tensor &b,
                               double eps) {
    RECORD_USER_SCOPE("hl::group_layer_norm");
    const int64_t G = w.size(0), d = w.size(1), rows = x.numel() / d;
    const auto wc = w.contiguous(), bc = b.contiguous();
    auto y = at::empty_like(x);
    auto mean = at::empty({rows}, x.options()), rstd = at::empty({rows}, x.options());
    forward_loops({G, d, rows / G, static_cast<float>(eps), x.data_ptr<float>(), wc.data_ptr<float>(),
                   bc.data_ptr<float>(), nullptr, y.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                   nullptr});
    ctx->save_for_backward({x, w, mean, rstd});
    ctx->saved_data["eps"] = eps;
    return {y};
  }

  // With x̂ = (x − μ)/σ and h = ∂y·w: ∂x = (h − mean(h) − x̂·mean(h·x̂))/σ,
  // ∂w = Σ_tokens ∂y·x̂, ∂b = Σ_tokens ∂y.
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::group_layer_norm_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &mean = saved[2], &rstd = saved[3];
    const int64_t G = w.size(0), d = w.size(1), rows = x.numel() / d, R = rows / G;
    if (at::GradMode::is_enabled()) {  // create_graph: the same formulas in differentiable ops
      const auto xv = x.view({R, G, d}), gy = grads[0].reshape({R, G, d});
      const auto c = xv - xv.mean(-1, true);
      const auto s = (c.square().mean(-1, true) + ctx->saved_data["eps"].toDouble()).rsqrt();
      const auto xhat = c * s, h = gy * w;
      const auto gx = (h - h.mean(-1, true) - xhat * (h * xhat).mean(-1, true)) * s;
      return {gx.view(x.sizes()), (gy * xhat).sum(0), gy.sum(0), at::Tensor()};
    }
    const auto gy = grads[0].contiguous();
    const auto wc = w.contiguous();
    auto gx = at::empty_like(x);
    const int64_t blocks = (R + kBlock - 1) / kBlock;
    auto part = at::empty({blocks, 2, G, d}, x.options());  // per block: Σ ∂y·x̂, Σ ∂y
    backward_loops({G, d, R, 0.0f, x.data_ptr<float>(), wc.data_ptr<float>(), nullptr, gy.data_ptr<float>(),
                    gx.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(), part.data_ptr<float>()});
    const float *pp = part.data_ptr<float>();
    // The blocks' sums, added in block order.
    auto sums = at::zeros({2, G, d}, x.options());
    float *sp = sums.data_ptr<float>();
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t i = 0; i < 2 * G * d; ++i) sp[i] += pp[blk * 2 * G * d + i];
    return {gx, sums[0], sums[1], at::Tensor()};
  }
};

}  // namespace

namespace hl {

namespace {
bool fused(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
         b.scalar_type() == at::kFloat && w.device().is_cpu() && b.device().is_cpu() && x.is_contiguous();
}
}  // namespace

at::Tensor group_layer_norm(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b, double eps) {
  if (!fused(x, w, b) || x.numel() == 0)
    return at::layer_norm(x, {x.size(-1)}, c10::nullopt, c10::nullopt, eps) * w + b;
  return GroupLayerNorm::apply(x, w, b, eps)[0];
}

}  // namespace hl
