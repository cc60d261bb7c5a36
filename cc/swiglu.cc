// swiglu.cc: the SwiGLU gate of models/mohd's FFN, silu(a) ⊙ b for
// x = [a | b] (the two halves of the last dimension), as one custom
// autograd node.
//
// Composed from libtorch ops, the gate is a split, silu and a product, and
// its backward two products, silu_backward and a concatenation of the two
// halves' gradients: thirteen passes over [rows, n] arrays that exceed the
// caches. Here the forward reads x once and writes the output (three
// passes), and the backward reads x and the output gradient once and
// writes both halves of x's gradient in place (five), recomputing σ(a)
// instead of saving silu(a). On the CPU in float32 with AVX2 the
// exponential is a polynomial (Cephes' expf, within 2 ulp of ATen's);
// other dtypes and devices take the composed ops.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HL_SWIGLU_AVX2 1
#endif

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The gate and its derivative for one value: σ = 1/(1 + e^{−a}),
// silu(a) = a·σ, silu′(a) = σ·(1 + a·(1 − σ)).
inline void gate_scalar(float a, float &sig, float &silu) {
  sig = 1.0f / (1.0f + std::exp(-a));
  silu = a * sig;
}

#if HL_SWIGLU_AVX2
// exp8 is e^x for 8 floats (Cephes' expf: x = n·ln 2 + r, e^r by a degree-6
// polynomial, 2^n by the exponent bits; x clamped to ±88.376).
__attribute__((target("avx2,fma"), always_inline)) inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// sigmoid8 is σ(a) for 8 floats.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 sigmoid8(__m256 a) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), a))));
}

__attribute__((target("avx2,fma"))) void forward_rows_avx2(const float *x, float *out, int64_t r0, int64_t r1,
                                                           int64_t n) {
  for (int64_t r = r0; r < r1; ++r) {
    const float *a = x + r * 2 * n, *b = a + n;
    float *o = out + r * n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 va = _mm256_loadu_ps(a + i);
      _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(va, sigmoid8(va)), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; ++i) {
      float sig, silu;
      gate_scalar(a[i], sig, silu);
      o[i] = silu * b[i];
    }
  }
}

__attribute__((target("avx2,fma"))) void backward_rows_avx2(const float *x, const float *gout, float *gx, int64_t r0,
                                                            int64_t r1, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t r = r0; r < r1; ++r) {
    const float *a = x + r * 2 * n, *b = a + n, *go = gout + r * n;
    float *ga = gx + r * 2 * n, *gb = ga + n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i), vg = _mm256_loadu_ps(go + i);
      const __m256 sig = sigmoid8(va);
      const __m256 dsilu = _mm256_mul_ps(sig, _mm256_fmadd_ps(va, _mm256_sub_ps(one, sig), one));
      _mm256_storeu_ps(ga + i, _mm256_mul_ps(_mm256_mul_ps(vg, vb), dsilu));
      _mm256_storeu_ps(gb + i, _mm256_mul_ps(vg, _mm256_mul_ps(va, sig)));
    }
    for (; i < n; ++i) {
      float sig, silu;
      gate_scalar(a[i], sig, silu);
      ga[i] = go[i] * b[i] * sig * (1.0f + a[i] * (1.0f - sig));
      gb[i] = go[i] * silu;
    }
  }
}
#endif

// use_loops: a contiguous float32 CPU tensor on a CPU with AVX2 and FMA.
bool use_loops(const at::Tensor &x) {
#if HL_SWIGLU_AVX2
  static const bool avx2 = hl::simd_avx2();
  return avx2 && x.device().is_cpu() && x.scalar_type() == at::kFloat;
#else
  return false;
#endif
}

// rows_grain: rows per parallel chunk, about 64 Ki values.
int64_t rows_grain(int64_t n) { return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, n)); }

struct SwiGLU : public torch::autograd::Function<SwiGLU> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x_in) {
    RECORD_USER_SCOPE("hl::swiglu");
    const auto x = x_in.contiguous();
    const int64_t n = x.size(-1) / 2, R = n == 0 ? 0 : x.numel() / (2 * n);
    auto shape = x.sizes().vec();
    shape.back() = n;
    at::Tensor out;
#if HL_SWIGLU_AVX2
    if (use_loops(x)) {
      out = at::empty(shape, x.options());
      const float *xp = x.data_ptr<float>();
      float *op = out.data_ptr<float>();
      at::parallel_for(0, R, rows_grain(n), [&](int64_t r0, int64_t r1) { forward_rows_avx2(xp, op, r0, r1, n); });
    }
#endif
    if (!out.defined()) {
      const auto halves = x.chunk(2, -1);
      out = at::silu(halves[0]) * halves[1];
    }
    ctx->save_for_backward({x});
    return {out};
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::swiglu_backward");
    const auto x = ctx->get_saved_variables()[0];
    const auto go = grads[0].contiguous();
    const int64_t n = x.size(-1) / 2, R = n == 0 ? 0 : x.numel() / (2 * n);
#if HL_SWIGLU_AVX2
    if (use_loops(x)) {
      auto gx = at::empty_like(x);
      const float *xp = x.data_ptr<float>(), *gp = go.data_ptr<float>();
      float *gxp = gx.data_ptr<float>();
      at::parallel_for(0, R, rows_grain(n),
                       [&](int64_t r0, int64_t r1) { backward_rows_avx2(xp, gp, gxp, r0, r1, n); });
      return {gx};
    }
#endif
    const auto halves = x.chunk(2, -1);
    const auto &a = halves[0], &b = halves[1];
    const auto sig = at::sigmoid(a);
    return {at::cat({go * b * sig * (1 + a * (1 - sig)), go * a * sig}, -1)};
  }
};

}  // namespace

extern "C" {

hl_status hl_swiglu(hl_tensor x, hl_tensor *out) {
  HL_TRY({
    const auto &X = hl::T(x);
    if (X.dim() == 0 || X.size(-1) % 2 != 0)
      throw hl::Error(HL_ERR_SHAPE, "swiglu: the last dimension must be even (the two halves a | b), got " +
                                        (X.dim() == 0 ? std::string("a scalar") : std::to_string(X.size(-1))));
    hl::put(out, SwiGLU::apply(X)[0]);
  })
}

}  // extern "C"
