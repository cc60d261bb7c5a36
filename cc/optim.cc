// optim.cc: optimizer steps and gradient clipping over parameter lists, each
// one call with libtorch's multi-tensor (_foreach) kernels; AdamW on float32
// CPU tensors in one pass of its own.
#include <cmath>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HL_ADAMW_AVX2 1
#endif

#include "internal.h"

namespace {

// Parameters that have a gradient, with the state tensors at the same index.
struct Active {
  std::vector<at::Tensor> params, grads, s1, s2;
};

Active active(const hl_tensor *params, const hl_tensor *state1, const hl_tensor *state2, int64_t n) {
  if (n < 0 || (n > 0 && params == nullptr)) throw hl::Error(HL_ERR_VALUE, "bad parameter list");
  Active a;
  for (int64_t i = 0; i < n; i++) {
    const at::Tensor &p = hl::T(params[i]);
    const at::Tensor &g = p.grad();
    if (!g.defined()) continue;
    if (g.sizes() != p.sizes()) throw hl::Error(HL_ERR_SHAPE, "gradient shape differs from parameter " + std::to_string(i));
    a.params.push_back(p);
    a.grads.push_back(g);
    if (state1 != nullptr) a.s1.push_back(hl::T(state1[i]));
    if (state2 != nullptr) a.s2.push_back(hl::T(state2[i]));
  }
  return a;
}

// AdamWScalars are one step's constants in float32, as libtorch converts
// the ops' double scalars for float32 tensors.
struct AdamWScalars {
  float decay;     // 1 − lr·weight_decay
  float b1, c1;    // β₁, 1 − β₁
  float b2, c2;    // β₂, 1 − β₂
  float sqrt_bc2;  // √(1 − β₂ᵗ)
  float eps;
  float step;      // −lr / (1 − β₁ᵗ)
  bool wd;
};

// adamw_elem is one element of the step, torch.optim.AdamW's operations in
// its order, each rounded to float32: p ← p·decay; m ← m·β₁ + (1 − β₁)·g;
// v ← v·β₂ + (1 − β₂)·g·g; p ← p + step·m / (√v / √bc₂ + ε).
inline void adamw_elem(const AdamWScalars &k, float &p, float g, float &m, float &v) {
  if (k.wd) p = p * k.decay;
  m = m * k.b1 + k.c1 * g;
  v = v * k.b2 + k.c2 * g * g;
  p = p + k.step * m / (std::sqrt(v) / k.sqrt_bc2 + k.eps);
}

#if HL_ADAMW_AVX2
// adamw_avx2 is adamw_elem over [i0, i1), 8 elements at a time (products and
// sums rounded one by one, no fused multiply-add, as adamw_elem).
__attribute__((target("avx2"))) void adamw_avx2(const AdamWScalars &k, float *p, const float *g, float *m, float *v,
                                               int64_t i0, int64_t i1) {
  const __m256 decay = _mm256_set1_ps(k.decay), b1 = _mm256_set1_ps(k.b1), c1 = _mm256_set1_ps(k.c1),
               b2 = _mm256_set1_ps(k.b2), c2 = _mm256_set1_ps(k.c2), sb = _mm256_set1_ps(k.sqrt_bc2),
               eps = _mm256_set1_ps(k.eps), step = _mm256_set1_ps(k.step);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    __m256 pv = _mm256_loadu_ps(p + i), gv = _mm256_loadu_ps(g + i);
    __m256 mv = _mm256_loadu_ps(m + i), vv = _mm256_loadu_ps(v + i);
    if (k.wd) pv = _mm256_mul_ps(pv, decay);
    mv = _mm256_add_ps(_mm256_mul_ps(mv, b1), _mm256_mul_ps(c1, gv));
    vv = _mm256_add_ps(_mm256_mul_ps(vv, b2), _mm256_mul_ps(_mm256_mul_ps(c2, gv), gv));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vv), sb), eps);
    pv = _mm256_add_ps(pv, _mm256_div_ps(_mm256_mul_ps(step, mv), denom));
    _mm256_storeu_ps(p + i, pv);
    _mm256_storeu_ps(m + i, mv);
    _mm256_storeu_ps(v + i, vv);
  }
  for (; i < i1; ++i) adamw_elem(k, p[i], g[i], m[i], v[i]);
}
#endif

// fused_adamw takes the parameters it can (float32, CPU, all four tensors
// contiguous) in one pass each: it reads p, g, m and v once and writes p, m
// and v, where the _foreach ops make about 22 passes over such tensors. It
// returns whether it took parameter i.
bool fused_adamw(const AdamWScalars &k, at::Tensor &p, const at::Tensor &g, at::Tensor &m, at::Tensor &v) {
  for (const at::Tensor *t : std::initializer_list<const at::Tensor *>{&p, &g, &m, &v})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous()) return false;
  if (g.numel() != p.numel() || m.numel() != p.numel() || v.numel() != p.numel()) return false;
  float *pp = p.data_ptr<float>(), *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float *gp = g.data_ptr<float>();
#if HL_ADAMW_AVX2
  static const bool avx2 = hl::simd_avx2();
#endif
  at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t i0, int64_t i1) {
#if HL_ADAMW_AVX2
    if (avx2) return adamw_avx2(k, pp, gp, mp, vp, i0, i1);
#endif
    for (int64_t i = i0; i < i1; ++i) adamw_elem(k, pp[i], gp[i], mp[i], vp[i]);
  });
  return true;
}

}  // namespace

extern "C" {

hl_status hl_adamw_step(const hl_tensor *params, const hl_tensor *exp_avg, const hl_tensor *exp_avg_sq, int64_t n,
                        int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay) {
  HL_TRY({
    RECORD_USER_SCOPE("hl::adamw_step");
    if (n > 0 && (exp_avg == nullptr || exp_avg_sq == nullptr)) throw hl::Error(HL_ERR_VALUE, "adamw needs both moment lists");
    if (step < 1) throw hl::Error(HL_ERR_VALUE, "adamw step counts from 1, got " + std::to_string(step));
    Active a = active(params, exp_avg, exp_avg_sq, n);
    if (a.params.empty()) return nullptr;
    at::NoGradGuard g;
    const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
    const AdamWScalars k{static_cast<float>(1 - lr * weight_decay),
                         static_cast<float>(beta1),
                         static_cast<float>(1 - beta1),
                         static_cast<float>(beta2),
                         static_cast<float>(1 - beta2),
                         static_cast<float>(std::sqrt(bc2)),
                         static_cast<float>(eps),
                         static_cast<float>(-lr / bc1),
                         weight_decay != 0};
    Active rest;  // the parameters the fused pass does not take
    for (size_t i = 0; i < a.params.size(); i++) {
      if (fused_adamw(k, a.params[i], a.grads[i], a.s1[i], a.s2[i])) continue;
      rest.params.push_back(a.params[i]);
      rest.grads.push_back(a.grads[i]);
      rest.s1.push_back(a.s1[i]);
      rest.s2.push_back(a.s2[i]);
    }
    a = std::move(rest);
    if (a.params.empty()) return nullptr;
    // The order of operations is torch.optim.AdamW's (single-tensor path).
    if (weight_decay != 0) at::_foreach_mul_(a.params, 1 - lr * weight_decay);
    at::_foreach_mul_(a.s1, beta1);
    at::_foreach_add_(a.s1, a.grads, 1 - beta1);
    at::_foreach_mul_(a.s2, beta2);
    at::_foreach_addcmul_(a.s2, a.grads, a.grads, 1 - beta2);
    // The denominator one tensor at a time: a foreach sqrt would hold a
    // temporary the size of the whole group at once (82 MB for the
    // codebooks at C = 10,000 in hlbench -suite codebook-memory); one at a
    // time the extra peak is the largest tensor. Same ops in the same order.
    for (size_t i = 0; i < a.params.size(); i++) {
      auto denom = a.s2[i].sqrt();
      denom.div_(std::sqrt(bc2));
      denom.add_(eps);
      a.params[i].addcdiv_(a.s1[i], denom, -lr / bc1);
    }
  })
}

hl_status hl_sgd_step(const hl_tensor *params, const hl_tensor *momentum_buf, int64_t n, int64_t step, double lr,
                      double momentum, double dampening, double weight_decay, int32_t nesterov) {
  HL_TRY({
    if (n > 0 && momentum != 0 && momentum_buf == nullptr) throw hl::Error(HL_ERR_VALUE, "sgd with momentum needs buffers");
    Active a = active(params, momentum != 0 ? momentum_buf : nullptr, nullptr, n);
    if (a.params.empty()) return nullptr;
    at::NoGradGuard g;
    // torch.optim.SGD: d = g + wd·p; buf = d on the first step, else
    // momentum·buf + (1-dampening)·d; d = d + momentum·buf (nesterov) or buf.
    std::vector<at::Tensor> d = a.grads;
    if (weight_decay != 0) d = at::_foreach_add(a.grads, a.params, weight_decay);
    if (momentum != 0) {
      if (step <= 1) {
        for (size_t i = 0; i < d.size(); i++) a.s1[i].copy_(d[i]);
      } else {
        at::_foreach_mul_(a.s1, momentum);
        at::_foreach_add_(a.s1, d, 1 - dampening);
      }
      if (nesterov) d = at::_foreach_add(d, a.s1, momentum);
      else d = a.s1;
    }
    at::_foreach_add_(a.params, d, -lr);
  })
}

hl_status hl_clip_grad_norm(const hl_tensor *params, int64_t n, double max_norm, double *total_norm) {
  HL_TRY({
    Active a = active(params, nullptr, nullptr, n);
    if (a.params.empty()) {
      *total_norm = 0;
      return nullptr;
    }
    at::NoGradGuard g;
    // torch.nn.utils.clip_grad_norm_: the 2-norm of the per-tensor 2-norms.
    auto norms = at::_foreach_norm(a.grads, 2);
    at::Tensor total = at::stack(norms).norm(2);
    *total_norm = total.item<double>();
    if (max_norm > 0) {
      at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
      for (auto &grad : a.grads) grad.mul_(coef);
    }
  })
}

}  // extern "C"
