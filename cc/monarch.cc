// monarch.cc: models/mohd's group fusion F(y) = Pᵀ·BD₂·P·BD₁·y as one
// custom autograd node.
//
// With y [BT, D] in N groups of g (y[t, n, j]), bd1 [N, g, g] and bd2
// [g, N, N]:
//
//	a[t, n, i]   = Σ_j y[t, n, j]·bd1[n, j, i]      (BD₁ within each group)
//	out[t, n, i] = Σ_m a[t, m, i]·bd2[i, m, n]      (P, BD₂ across groups, Pᵀ)
//
// On the CPU (float and double, g ≤ 64) both products run token by token
// in loops of their own: a token's a stays in L1, every inner loop runs
// over the g positions of a group (contiguous in y, a and out, and in bd2
// once it is laid out as b2[m, n, i] = bd2[i, m, n]), and the backward
// recomputes a instead of saving it. Composed from libtorch ops, the same
// maths is two batched GEMMs of tiny matrices (g × g and N × N) whose
// operands must be transposed copies of y and a, forward and backward: at
// D = 128 (g = 8) the copies cost more than the products. The backward
// sums the weight gradients over tiles of 32 tokens in registers, per
// block of tokens (a fixed partition of the BT tokens), and adds the
// blocks in order: the same result for any thread count. Other devices,
// dtypes and group sizes take the batched GEMMs.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cstring>
#include <vector>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The sizes and operands of one call; every pointer is to contiguous data.
template <typename T>
struct MonarchArgs {
  int64_t BT, N, g;
  const T *y;    // [BT, N, g]
  const T *bd1;  // [N, g, g] (n, j, i)
  const T *b2;   // [N, N, g] (m, n, i) = bd2[i, m, n]
};

// The kernels' inner loops run over the g positions of a group, through a
// rows policy R: VecRows where g is a multiple of the vector width (the
// loops are whole vectors, the sums stay in registers), ScalarRows for any
// other g ≤ kMaxG.
constexpr int64_t kMaxG = 64;

#define HL_ROWS_INLINE __attribute__((always_inline)) static inline

// VecRows works on rows of VG vectors of VB bytes (GCC vector extensions:
// compiled for whatever target the calling kernel has: 64-byte vectors for
// AVX-512, 32 for AVX2 with FMA or SSE2). Its functions are always inlined,
// so no vector crosses a call (what -Wpsabi warns about). The vector width
// changes how many sums share a loop, not the order of any one sum: every
// output is the same chain of multiply-adds at either width.
#pragma GCC diagnostic ignored "-Wpsabi"
template <typename T, int VG, int VB = 32>
struct VecRows {
  typedef T V __attribute__((vector_size(VB)));
  static constexpr int64_t W = VB / sizeof(T);
  HL_ROWS_INLINE V load(const T *p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  HL_ROWS_INLINE void store(T *p, const V &v) { std::memcpy(p, &v, sizeof v); }
  // Rows of the weight gradients, summed over count tokens of stride s
  // (rows x[t·s, …]) in registers, kB rows at a time (each loaded row of
  // the shared operand serves kB sums), then added to acc once.
  // (Half the vector registers: 16 of 32 bytes, 32 of 64.)
  static constexpr int64_t kB = std::min<int64_t>(VB / 4 / VG, VG * W);
  // acc[n, :] += Σ_t x[t·s, :] ⊙ w[t·s + n·g, :] for n < N.
  HL_ROWS_INLINE void acc_prods(T *acc, const T *x, const T *w, int64_t s, int64_t count, int64_t N, int64_t) {
    constexpr int64_t g = VG * W;
    int64_t n0 = 0;
    for (; n0 + kB <= N; n0 += kB) {
      V sum[kB][VG] = {};
      for (int64_t t = 0; t < count; ++t) {
        V xv[VG];
        for (int q = 0; q < VG; ++q) xv[q] = load(x + t * s + q * W);
        for (int64_t b = 0; b < kB; ++b)
          for (int q = 0; q < VG; ++q) sum[b][q] += xv[q] * load(w + t * s + (n0 + b) * g + q * W);
      }
      for (int64_t b = 0; b < kB; ++b)
        for (int q = 0; q < VG; ++q) store(acc + (n0 + b) * g + q * W, load(acc + (n0 + b) * g + q * W) + sum[b][q]);
    }
    for (; n0 < N; ++n0) {
      V sum[VG] = {};
      for (int64_t t = 0; t < count; ++t)
        for (int q = 0; q < VG; ++q) sum[q] += load(x + t * s + q * W) * load(w + t * s + n0 * g + q * W);
      for (int q = 0; q < VG; ++q) store(acc + n0 * g + q * W, load(acc + n0 * g + q * W) + sum[q]);
    }
  }
  // acc[j, :] += Σ_t v[t·s + j]·w[t·s, :] for j < g.
  HL_ROWS_INLINE void acc_outer(T *acc, const T *v, const T *w, int64_t s, int64_t count, int64_t) {
    constexpr int64_t g = VG * W;
    for (int64_t j0 = 0; j0 < g; j0 += kB) {
      V sum[kB][VG] = {};
      for (int64_t t = 0; t < count; ++t) {
        V wv[VG];
        for (int q = 0; q < VG; ++q) wv[q] = load(w + t * s + q * W);
        for (int64_t b = 0; b < kB; ++b)
          for (int q = 0; q < VG; ++q) sum[b][q] += v[t * s + j0 + b] * wv[q];
      }
      for (int64_t b = 0; b < kB; ++b)
        for (int q = 0; q < VG; ++q) store(acc + (j0 + b) * g + q * W, load(acc + (j0 + b) * g + q * W) + sum[b][q]);
    }
  }
  // out = x·M for a row x and M [g, g] (row-major).
  HL_ROWS_INLINE void vec_mat(T *out, const T *x, const T *M, int64_t) {
    V acc[VG] = {};
    for (int64_t j = 0; j < VG * W; ++j)
      for (int q = 0; q < VG; ++q) acc[q] += x[j] * load(M + j * VG * W + q * W);
    for (int q = 0; q < VG; ++q) store(out + q * W, acc[q]);
  }
  // out[n, :] = Σ_m x[m, :] ⊙ M[m, n, :] (x, out [N, g], M [N, N, g]), or
  // M[n, m, :] when by_row.
  HL_ROWS_INLINE void mix_positions(T *out, const T *x, const T *M, int64_t N, int64_t, bool by_row) {
    constexpr int64_t g = VG * W;
    for (int64_t n = 0; n < N; ++n) {
      V acc[VG] = {};
      for (int64_t m = 0; m < N; ++m) {
        const T *r = M + (by_row ? n * N + m : m * N + n) * g;
        for (int q = 0; q < VG; ++q) acc[q] += load(x + m * g + q * W) * load(r + q * W);
      }
      for (int q = 0; q < VG; ++q) store(out + n * g + q * W, acc[q]);
    }
  }
};

// ScalarRows is VecRows's loops for any g ≤ kMaxG, left to the compiler.
template <typename T>
struct ScalarRows {
  HL_ROWS_INLINE void acc_prods(T *__restrict acc, const T *__restrict x, const T *__restrict w, int64_t s,
                                int64_t count, int64_t N, int64_t g) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t t = 0; t < count; ++t)
        for (int64_t i = 0; i < g; ++i) acc[n * g + i] += x[t * s + i] * w[t * s + n * g + i];
  }
  HL_ROWS_INLINE void acc_outer(T *__restrict acc, const T *__restrict v, const T *__restrict w, int64_t s,
                                int64_t count, int64_t g) {
    for (int64_t j = 0; j < g; ++j)
      for (int64_t t = 0; t < count; ++t)
        for (int64_t i = 0; i < g; ++i) acc[j * g + i] += v[t * s + j] * w[t * s + i];
  }
  HL_ROWS_INLINE void vec_mat(T *__restrict out, const T *__restrict x, const T *__restrict M, int64_t g) {
    T acc[kMaxG] = {};
    for (int64_t j = 0; j < g; ++j)
      for (int64_t i = 0; i < g; ++i) acc[i] += x[j] * M[j * g + i];
    for (int64_t i = 0; i < g; ++i) out[i] = acc[i];
  }
  HL_ROWS_INLINE void mix_positions(T *__restrict out, const T *__restrict x, const T *__restrict M, int64_t N,
                                    int64_t g, bool by_row) {
    for (int64_t n = 0; n < N; ++n) {
      T acc[kMaxG] = {};
      for (int64_t m = 0; m < N; ++m)
        for (int64_t i = 0; i < g; ++i) acc[i] += x[m * g + i] * M[(by_row ? n * N + m : m * N + n) * g + i];
      for (int64_t i = 0; i < g; ++i) out[n * g + i] = acc[i];
    }
  }
};

// monarch_rows computes out for tokens [t0, t1):
// a[n, :] = y[n, :]·bd1[n] (BD₁), out[n, :] = Σ_m a[m, :] ⊙ b2[m, n, :].
template <class R, typename T>
__attribute__((always_inline)) inline void monarch_rows(const MonarchArgs<T> &p, T *out, int64_t t0, int64_t t1) {
  const int64_t N = p.N, g = p.g, D = N * g;
  std::vector<T> abuf(D);
  T *a = abuf.data();
  for (int64_t t = t0; t < t1; ++t) {
    const T *y = p.y + t * D;
    for (int64_t n = 0; n < N; ++n) R::vec_mat(a + n * g, y + n * g, p.bd1 + n * g * g, g);
    R::mix_positions(out + t * D, a, p.b2, N, g, false);
  }
}

// monarch_grad_rows is the backward for tokens [t0, t1): gy's rows (when gy
// is not null) and the weight gradients of these tokens added into gbd1
// [N, g, g] and gb2 [N, N, g] (when not null); bd1t[n, i, j] = bd1[n, j, i].
// Tiles of kTile tokens: per token ∂a (and a, recomputed, and ∂y), then
// the tile's weight gradients, summed in registers and added once.
template <class R, typename T>
__attribute__((always_inline)) inline void monarch_grad_rows(const MonarchArgs<T> &p, const T *bd1t, const T *gout,
                                                             T *gy, T *gbd1, T *gb2, int64_t t0, int64_t t1) {
  constexpr int64_t kTile = 32;
  const int64_t N = p.N, g = p.g, D = N * g;
  std::vector<T> buf(2 * kTile * D);
  T *a = buf.data(), *ga = buf.data() + kTile * D;  // [kTile, D] each
  for (int64_t s = t0; s < t1; s += kTile) {
    const int64_t nt = std::min(kTile, t1 - s);
    const T *go = gout + s * D, *y = p.y + s * D;
    for (int64_t t = 0; t < nt; ++t) {
      // ∂a[m, :] = Σ_n ∂out[n, :] ⊙ b2[m, n, :].
      R::mix_positions(ga + t * D, go + t * D, p.b2, N, g, true);
      for (int64_t n = 0; n < N; ++n) {
        if (gb2 != nullptr) R::vec_mat(a + t * D + n * g, y + t * D + n * g, p.bd1 + n * g * g, g);
        // ∂y[n, :] = ∂a[n, :]·bd1[n]ᵀ.
        if (gy != nullptr) R::vec_mat(gy + (s + t) * D + n * g, ga + t * D + n * g, bd1t + n * g * g, g);
      }
    }
    if (gb2 != nullptr) {
      // ∂b2[m, n, :] += Σ_t a[t, m, :] ⊙ ∂out[t, n, :].
      for (int64_t m = 0; m < N; ++m) R::acc_prods(gb2 + m * N * g, a + m * g, go, D, nt, N, g);
    }
    if (gbd1 != nullptr) {
      // ∂bd1[n, j, :] += Σ_t y[t, n, j]·∂a[t, n, :].
      for (int64_t n = 0; n < N; ++n) R::acc_outer(gbd1 + n * g * g, y + n * g, ga + n * g, D, nt, g);
    }
  }
}

// with_rows calls f with the rows policy for groups of g values of T
// (a value of its type).
template <typename T, typename F>
void with_rows(int64_t g, F &&f) {
  constexpr int64_t W = 32 / sizeof(T);
  switch (g / W * (g % W == 0)) {
    case 1: return f(VecRows<T, 1>());
    case 2: return f(VecRows<T, 2>());
    case 4: return f(VecRows<T, 4>());
    case 8: return f(VecRows<T, 8>());
    default: return f(ScalarRows<T>());
  }
}

// with_rows512 calls f with the rows policy of 64-byte vectors where g is a
// multiple of their width, and reports whether it did.
template <typename T, typename F>
bool with_rows512(int64_t g, F &&f) {
  constexpr int64_t W = 64 / sizeof(T);
  switch (g / W * (g % W == 0)) {
    case 1: f(VecRows<T, 1, 64>()); return true;
    case 2: f(VecRows<T, 2, 64>()); return true;
    case 4: f(VecRows<T, 4, 64>()); return true;
    case 8: f(VecRows<T, 8, 64>()); return true;
    default: return false;
  }
}

// The kernels are compiled three times: inlined where they are called, for
// any x86-64, and in these wrappers for AVX2 with FMA and for AVX-512 (with
// 64-byte rows where g allows: groups of 16, 32 or 64 floats), chosen at run
// time. At X2-512's g = 64 the AVX-512 loops took hl::monarch +
// hl::monarch_backward from 23.9 + 93.3 to 25.1 + 61.1 ms per step (`hlbench
// -child 'mohd:X2-512 gathered' -profile -threads 1`, one run of each build);
// every output is the same chain of multiply-adds as in the AVX2 loops.
#if defined(__x86_64__) && defined(__GNUC__)
#define HL_MONARCH_AVX2 1
template <class R, typename T>
__attribute__((target("avx2,fma"))) void monarch_rows_avx2(const MonarchArgs<T> &p, T *out, int64_t t0, int64_t t1) {
  monarch_rows<R>(p, out, t0, t1);
}
template <class R, typename T>
__attribute__((target("avx2,fma"))) void monarch_grad_rows_avx2(const MonarchArgs<T> &p, const T *bd1t, const T *gout,
                                                                T *gy, T *gbd1, T *gb2, int64_t t0, int64_t t1) {
  monarch_grad_rows<R>(p, bd1t, gout, gy, gbd1, gb2, t0, t1);
}
template <class R, typename T>
__attribute__((target("avx512f,avx2,fma"))) void monarch_rows_avx512(const MonarchArgs<T> &p, T *out, int64_t t0,
                                                                     int64_t t1) {
  monarch_rows<R>(p, out, t0, t1);
}
template <class R, typename T>
__attribute__((target("avx512f,avx2,fma"))) void monarch_grad_rows_avx512(const MonarchArgs<T> &p, const T *bd1t,
                                                                          const T *gout, T *gy, T *gbd1, T *gb2,
                                                                          int64_t t0, int64_t t1) {
  monarch_grad_rows<R>(p, bd1t, gout, gy, gbd1, gb2, t0, t1);
}
#endif


// The loops take CPU float or double tensors with groups of at most kMaxG.
bool use_loops(const at::Tensor &y, int64_t g) {
  return y.device().is_cpu() && (y.scalar_type() == at::kFloat || y.scalar_type() == at::kDouble) && g <= kMaxG;
}

// blocks is the fixed partition of BT tokens for the weight gradients:
// at most 16 blocks, whatever the thread count.
int64_t blocks(int64_t BT) { return std::max<int64_t>(1, std::min<int64_t>(16, BT)); }

at::Tensor forward_loops(const at::Tensor &y, const at::Tensor &bd1, const at::Tensor &bd2) {
  const int64_t BT = y.size(0), N = bd1.size(0), g = bd1.size(1);
  auto out = at::empty({BT, N * g}, y.options());
  const auto b2 = bd2.permute({1, 2, 0}).contiguous();  // [N, N, g]
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "monarch", [&] {
    const MonarchArgs<scalar_t> p{BT, N, g, y.data_ptr<scalar_t>(), bd1.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>()};
    scalar_t *o = out.data_ptr<scalar_t>();
    const bool avx2 = hl::simd_avx2();
#if HL_MONARCH_AVX2
    if (hl::simd_avx512() && with_rows512<scalar_t>(g, [&](auto rows) {
          using R = decltype(rows);
          at::parallel_for(0, BT, 64, [&](int64_t t0, int64_t t1) { monarch_rows_avx512<R>(p, o, t0, t1); });
        }))
      return;
#endif
    with_rows<scalar_t>(g, [&](auto rows) {
      using R = decltype(rows);
      at::parallel_for(0, BT, 64, [&](int64_t t0, int64_t t1) {
#if HL_MONARCH_AVX2
        if (avx2) return monarch_rows_avx2<R>(p, o, t0, t1);
#endif
        monarch_rows<R>(p, o, t0, t1);
      });
    });
  });
  return out;
}

variable_list backward_loops(const at::Tensor &y, const at::Tensor &bd1, const at::Tensor &bd2, const at::Tensor &gout,
                             bool need_y, bool need_w) {
  const int64_t BT = y.size(0), N = bd1.size(0), g = bd1.size(1), nb = blocks(BT);
  const auto b2 = bd2.permute({1, 2, 0}).contiguous();    // [N, N, g]
  const auto bd1t = bd1.transpose(1, 2).contiguous();     // [N, g, g] (n, i, j)
  at::Tensor gy, gbd1, gbd2;
  if (need_y) gy = at::empty_like(y);
  at::Tensor part1, part2;  // per block: ∂bd1 [nb, N, g, g], ∂b2 [nb, N, N, g]
  if (need_w) {
    part1 = at::zeros({nb, N, g, g}, y.options());
    part2 = at::zeros({nb, N, N, g}, y.options());
  }
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "monarch_backward", [&] {
    const MonarchArgs<scalar_t> p{BT, N, g, y.data_ptr<scalar_t>(), bd1.data_ptr<scalar_t>(), b2.data_ptr<scalar_t>()};
    const scalar_t *bt = bd1t.data_ptr<scalar_t>(), *go = gout.data_ptr<scalar_t>();
    scalar_t *gyp = need_y ? gy.data_ptr<scalar_t>() : nullptr;
    scalar_t *p1 = need_w ? part1.data_ptr<scalar_t>() : nullptr, *p2 = need_w ? part2.data_ptr<scalar_t>() : nullptr;
    const bool avx2 = hl::simd_avx2();
#if HL_MONARCH_AVX2
    if (hl::simd_avx512() && with_rows512<scalar_t>(g, [&](auto rows) {
          using R = decltype(rows);
          at::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
              const int64_t t0 = BT * b / nb, t1 = BT * (b + 1) / nb;
              scalar_t *w1 = p1 ? p1 + b * N * g * g : nullptr, *w2 = p2 ? p2 + b * N * N * g : nullptr;
              monarch_grad_rows_avx512<R>(p, bt, go, gyp, w1, w2, t0, t1);
            }
          });
        }))
      return;
#endif
    with_rows<scalar_t>(g, [&](auto rows) {
      using R = decltype(rows);
      at::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t t0 = BT * b / nb, t1 = BT * (b + 1) / nb;
          scalar_t *w1 = p1 ? p1 + b * N * g * g : nullptr, *w2 = p2 ? p2 + b * N * N * g : nullptr;
#if HL_MONARCH_AVX2
          if (avx2) {
            monarch_grad_rows_avx2<R>(p, bt, go, gyp, w1, w2, t0, t1);
            continue;
          }
#endif
          monarch_grad_rows<R>(p, bt, go, gyp, w1, w2, t0, t1);
        }
      });
    });
  });
  if (need_w) {
    // The blocks' sums in block order (sum over a dimension would also do,
    // but its order is libtorch's).
    gbd1 = part1[0].clone();
    auto g2 = part2[0].clone();
    for (int64_t b = 1; b < nb; ++b) {
      gbd1.add_(part1[b]);
      g2.add_(part2[b]);
    }
    gbd2 = g2.permute({2, 0, 1}).contiguous();  // b2[m, n, i] → bd2[i, m, n]
  }
  return {gy, gbd1, gbd2};
}

struct Monarch : public torch::autograd::Function<Monarch> {
  // y [BT, D] in N groups of g; bd1 [N, g, g], bd2 [g, N, N].
  static variable_list forward(AutogradContext *ctx, const at::Tensor &y_in, const at::Tensor &bd1_in,
                               const at::Tensor &bd2) {
    RECORD_USER_SCOPE("hl::monarch");
    const int64_t BT = y_in.size(0), D = y_in.size(1), N = bd1_in.size(0), g = bd1_in.size(1);
    if (use_loops(y_in, g)) {
      const auto y = y_in.contiguous(), bd1 = bd1_in.contiguous();
      ctx->save_for_backward({y, bd1, bd2});
      return {forward_loops(y, bd1, bd2)};
    }
    // Batched GEMMs, each operand made contiguous once in the layout its
    // product wants (bmm would copy every batch of a transposed view).
    auto yt = y_in.reshape({BT, N, g}).transpose(0, 1).contiguous();  // [N, BT, g]: group n's rows
    auto a = at::bmm(yt, bd1_in);                                      // BD₁ within each group
    auto at_ = a.permute({2, 1, 0}).contiguous();                      // P: [g, BT, N]
    auto b = at::bmm(at_, bd2);                                        // BD₂ across groups
    ctx->save_for_backward({yt, at_, bd1_in, bd2});
    return {b.permute({1, 2, 0}).reshape({BT, D})};  // Pᵀ
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::monarch_backward");
    const auto s = ctx->get_saved_variables();
    if (s.size() == 3) {
      return backward_loops(s[0], s[1], s[2], grads[0].contiguous(), ctx->needs_input_grad(0),
                            ctx->needs_input_grad(1) || ctx->needs_input_grad(2));
    }
    const at::Tensor &yt = s[0], &at_ = s[1], &bd1 = s[2], &bd2 = s[3];
    const int64_t N = bd1.size(0), g = bd1.size(1), BT = yt.size(1);
    auto gb = grads[0].reshape({BT, N, g}).permute({2, 0, 1}).contiguous();  // [g, BT, N]
    auto gbd2 = at::bmm(at_.transpose(1, 2), gb);
    auto ga = at::bmm(gb, bd2.transpose(1, 2)).permute({2, 1, 0}).contiguous();  // [N, BT, g]
    auto gbd1 = at::bmm(yt.transpose(1, 2), ga);
    auto gy = at::bmm(ga, bd1.transpose(1, 2)).transpose(0, 1).reshape({BT, N * g});
    return {gy, gbd1, gbd2};
  }
};

}  // namespace
extern "C" {

hl_status hl_monarch(hl_tensor y, hl_tensor bd1, hl_tensor bd2, hl_tensor *out) {
  HL_TRY({
    const auto &Y = hl::T(y);
    const auto &B1 = hl::T(bd1);
    const auto &B2 = hl::T(bd2);
    if (Y.dim() != 2 || B1.dim() != 3 || B2.dim() != 3)
      throw hl::Error(HL_ERR_SHAPE, "monarch: need y [BT, D], bd1 [N, g, g] and bd2 [g, N, N]");
    const int64_t N = B1.size(0), g = B1.size(1);
    if (B1.size(2) != g || B2.size(0) != g || B2.size(1) != N || B2.size(2) != N || Y.size(1) != N * g)
      throw hl::Error(HL_ERR_SHAPE, "monarch: y [" + std::to_string(Y.size(0)) + ", " + std::to_string(Y.size(1)) +
                                        "] does not fit bd1 [N, g, g] and bd2 [g, N, N] with N = " +
                                        std::to_string(N) + ", g = " + std::to_string(g));
    if (Y.scalar_type() != B1.scalar_type() || Y.scalar_type() != B2.scalar_type())
      throw hl::Error(HL_ERR_DTYPE, "monarch: y, bd1 and bd2 differ in dtype");
    hl::put(out, Monarch::apply(Y, B1, B2)[0]);
  })
}

}  // extern "C"
