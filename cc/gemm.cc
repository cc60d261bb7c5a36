// gemm.cc: float32 matrix products on CPUs with AVX-512, in a kernel of our
// own, for the products the shim's own ops and hl_linear make.
//
// Why: libtorch hands its products to its BLAS, and on this project's
// machines the BLAS runs AVX2 kernels on an AVX-512 CPU (OpenBLAS 0.3.21 is
// pinned to its "Haswell" kernels by OPENBLAS_CORETYPE, as older builds
// compute wrong results on these CPUs): half of each FMA unit idles. The
// product below is the textbook blocked GEMM (Goto; BLIS's loop nest):
//
//   for each block of NC columns of op(B)
//     for each block of KC steps of the reduction
//       pack op(B)'s block into panels of NR = 32 columns (kc steps each;
//       16 for products of at most 16 columns)
//       for each chunk of 2,304 rows of op(A)
//         pack them into micro-panels of MR = 12 rows (kc steps each)
//         for each (block of MC rows, group of panels), in parallel
//           for each micro-panel, for each panel: the 12 × 32 micro-kernel
//
// The micro-kernel keeps a 12 × 32 tile of C in 24 zmm registers and adds
// kc rank-1 updates to it (two loads of B, twelve broadcasts of A, 24 FMAs a
// step). Packing takes any strides, so Aᵀ and Bᵀ cost no copy of their own.
//
// Rounding: every output is one chain of fused multiply-adds from zero over
// k = 0 … K−1 (the next K block loads the tile it left in C and goes on), then
// the bias, if any, added once; with accumulate the chain starts from the
// output's value instead (a product added into rows in place, grouped.cc).
// So a result does not depend on the blocking or on the number of threads
// (each output belongs to one thread), and it is what OpenBLAS's AVX-512
// kernels compute for a product that fits one K block; its AVX2 kernels
// round about 7% of outputs differently in the last bit. TestLinearKernel
// checks the chain bit for bit.
//
// Narrow products: one of at most 16 columns runs panels and tiles of 16
// (12 × 16: a tile of 32 would be half empty or worse), and one of at most
// two panels reads A's rows where they lie instead of packing them (packing
// moves every element of A once for at most 64 multiply-adds with it).
// Short ones: one of at most 8 rows runs tiles of 8 (MoHD's weight
// gradients at g = 8: a tile of 12 was a third empty), and one of at most
// 48 rows reads B's rows where they lie (packed, each element of B would be
// moved once for at most 48 multiply-adds; the four tiles reread a panel
// from L2): 46 -> 83 GFLOP/s for [8, 410]·[410, 704], 91 -> 100 for
// [48, 2048]·[2048, 704] (MoHD's shared weight gradients at width 128),
// 83 -> 100 for 24 rows, no gain at 96 (one thread, a throwaway harness,
// Aᵀ's layout).
//
// Indexes: an operand may name its rows or columns by an index (GemmOperand's
// ri, ci) and the output its rows (crow), so that a product of gathered rows
// (models/mohd's routed rows) packs them from where they lie and adds its
// results into scattered rows from the micro-kernel, with no gathered copy
// and no product to scatter afterwards.
//
// hl_linear (x·wᵀ + b, every nn.Linear, the GPT's tied output layer, the
// HRPO gate) runs on it where own_gemm(x) (float32 on an AVX-512 CPU, outside
// CPU autocast, which libtorch's linear would lower to bf16): a custom
// autograd node whose backward makes its two products, gy·w and gyᵀ·x, by
// gemm as well.

#include <torch/csrc/autograd/custom_function.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <vector>

#include "internal.h"
#include "simd512.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HL_GEMM_AVX512 1
#else
#define HL_GEMM_AVX512 0
#endif

namespace hl {

#if HL_GEMM_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace {

constexpr int64_t MR = 12, NR = 32;
constexpr int64_t KC = 256;    // a panel of B, kc × 32 floats, is 32 KiB: L1
constexpr int64_t MC = 144;    // a block of A, 144 × kc floats, is 144 KiB: L2
constexpr int64_t NC = 4096;   // a block of B, kc × 4096 floats, is 4 MiB: L3
constexpr int64_t MCHUNK = 16 * MC;  // rows of A packed at a time: 2.25 MiB
constexpr int64_t kDirectB = 48;     // products of at most this many rows read B unpacked

// micro computes c[0:rows, cols of m0|m1] (row stride ldc) = (load ? c : 0) +
// Σ_k a[k·MR + i]·b[k·NR + j] over kc steps, as one FMA chain per output,
// and adds bias[j] when bias is not null.
// With crow, row i of the tile is c + crow[i]·ldc. W is the panel's width:
// 32 (two vectors a row), or 16 for products of at most 16 columns, which a
// tile of 32 would leave at most half used.
// With Direct, A is not packed: row i of the tile is read at arow[i][k].
// With DirectB, neither is B: step k of the panel is read (masked) at
// brow->at(k), where the product has at most kDirectB rows (packing B would
// move each element of it for at most that many multiply-adds).
struct BRows {
  const float *p;  // the panel's first column, at step 0
  int64_t rs;      // B's row stride
  const int64_t *ri;
  int64_t k0;
  const float *at(int64_t k) const { return p + (ri != nullptr ? ri[k0 + k] : k0 + k) * rs; }
};
template <int64_t W = NR, bool Indexed = false, bool Direct = false, int64_t TR = MR, bool DirectB = false>
inline void micro(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t rows, __mmask16 m0,
                  __mmask16 m1, bool load, const float *bias, const int64_t *crow = nullptr,
                  const float *const *arow = nullptr, const BRows *brow = nullptr) {
  static_assert(W == 16 || W == 32);
  float *row[TR];
  for (int i = 0; i < TR; ++i) row[i] = c + (Indexed && i < rows ? crow[i] : i) * ldc;
  __m512 c0[TR], c1[TR];
  for (int i = 0; i < TR; ++i) {
    if (load && i < rows) {
      c0[i] = _mm512_maskz_loadu_ps(m0, row[i]);
      if constexpr (W == 32) c1[i] = _mm512_maskz_loadu_ps(m1, row[i] + 16);
    } else {
      c0[i] = c1[i] = _mm512_setzero_ps();
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float *ak = a + TR * k;
    const auto at = [&](int i) { return Direct ? arow[i][k] : ak[i]; };
    // Step k of the panel: packed (W floats a step), or B's row where it
    // lies (masked: past column n is not B's).
    __m512 b0, b1;
    if constexpr (DirectB) {
      const float *bk = brow->at(k);
      b0 = _mm512_maskz_loadu_ps(m0, bk);
      b1 = W == 32 ? _mm512_maskz_loadu_ps(m1, bk + 16) : b0;
    } else {
      b0 = _mm512_loadu_ps(b + W * k);
      b1 = W == 32 ? _mm512_loadu_ps(b + W * k + 16) : b0;
    }
    for (int i = 0; i < TR; ++i) {
      const __m512 ai = _mm512_set1_ps(at(i));
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      if constexpr (W == 32) c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
  if (bias != nullptr) {
    const __m512 d0 = _mm512_maskz_loadu_ps(m0, bias), d1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    for (int i = 0; i < TR; ++i) {
      c0[i] = _mm512_add_ps(c0[i], d0);
      if constexpr (W == 32) c1[i] = _mm512_add_ps(c1[i], d1);
    }
  }
  for (int i = 0; i < TR; ++i)
    if (i < rows) {
      _mm512_mask_storeu_ps(row[i], m0, c0[i]);
      if constexpr (W == 32) _mm512_mask_storeu_ps(row[i] + 16, m1, c1[i]);
    }
}

// panel_masks are the masks of a panel's two vectors when cols of its 32
// columns are the product's.
inline std::pair<__mmask16, __mmask16> panel_masks(int64_t cols) {
  return {static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1),
          static_cast<__mmask16>(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0)};
}

// aligned64 is the first float of buf on a 64-byte boundary (buf holds 16
// floats more than it is used for): the kernels' vector loads of packed B
// would otherwise each straddle two cache lines (a vector's malloc gives
// 16-byte alignment), which costs most where the loads are a large share,
// as in routed_gemm's routed rows.
inline float *aligned64(std::vector<float> &buf) {
  const auto skip = (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  return buf.data() + skip / sizeof(float);
}

// transpose16 writes 16 steps of up to 16 lanes: dst[c·W + l] = src[l·lane
// + c] for c < 16 and the lanes l whose bit is set in mask (rows[l] the
// lane's source, for those not set any readable row), by a 16 × 16
// transpose in registers.
template <int64_t W>
inline void transpose16(const float *const *rows, __mmask16 mask, float *dst) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i]);
  transpose16x16(r);
  for (int c = 0; c < 16; ++c) _mm512_mask_storeu_ps(dst + c * W, mask, r[c]);
}

// transpose_blocks writes steps [0, kc / 16 · 16) of lanes [0, lanes) whose
// steps are contiguous, lane l's from row(l) on, by 16 × 16 transposes
// (transpose16), and returns how many steps it wrote.
template <int64_t W, typename Row>
int64_t transpose_blocks(const Row &row, int64_t lanes, int64_t kc, float *dst) {
  const int64_t k16 = kc / 16 * 16;
  for (int64_t l0 = 0; l0 < lanes; l0 += 16) {
    const int64_t n = std::min<int64_t>(16, lanes - l0);
    const __mmask16 mask = n == 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    const float *rows[16];
    for (int64_t k0 = 0; k0 < k16; k0 += 16) {
      for (int64_t i = 0; i < 16; ++i) rows[i] = row(l0 + std::min(i, n - 1)) + k0;
      transpose16<W>(rows, mask, dst + k0 * W + l0);
    }
  }
  return k16;
}

// pack writes a strip of W lanes over kc steps, step-major: dst[k·W + l] =
// src[l·lane + k·step] for l < lanes, zero for lanes ≤ l < W. A panel of B
// is a strip of its columns, a micro-panel of A one of its rows; where the
// lanes are contiguous (lane = 1) each step is one copy; where the steps
// are (step = 1: a row-major A, the transpose of a row-major B) blocks of
// 16 steps and up to 16 lanes are transposed in registers (a scalar copy
// took about as long as the products of a short reduction).
template <int64_t W>
void pack(const float *src, int64_t lane, int64_t step, int64_t lanes, int64_t kc, float *dst) {
  if (lane == 1) {
    for (int64_t k = 0; k < kc; ++k) {
      const float *s = src + k * step;
      std::copy(s, s + lanes, dst + k * W);
      std::fill(dst + k * W + lanes, dst + (k + 1) * W, 0.0f);
    }
    return;
  }
  if (lanes < W) std::fill(dst, dst + kc * W, 0.0f);
  int64_t k16 = 0;  // steps [0, k16) done by blocks
  if (step == 1) k16 = transpose_blocks<W>([&](int64_t l) { return src + l * lane; }, lanes, kc, dst);
  for (int64_t l = 0; l < lanes; ++l) {
    const float *s = src + l * lane;
    for (int64_t k = k16; k < kc; ++k) dst[k * W + l] = s[k * step];
  }
}

// pack_indexed is pack for an operand with an index: lane l at li[l0 + l]
// (or l0 + l), step k at si[s0 + k] (or s0 + k). Gathered lanes whose steps
// are contiguous (rows of A through an index, as MoHD's routed rows) go by
// blocks of 16 transposed in registers, as in pack.
template <int64_t W>
void pack_indexed(const float *src, int64_t lane, int64_t step, const int64_t *li, int64_t l0, const int64_t *si,
                  int64_t s0, int64_t lanes, int64_t kc, float *dst) {
  int64_t k16 = 0;  // steps [0, k16) done by blocks
  if (si == nullptr && step == 1 && lane != 1) {
    if (lanes < W) std::fill(dst, dst + kc / 16 * 16 * W, 0.0f);
    k16 = transpose_blocks<W>(
        [&](int64_t l) { return src + (li != nullptr ? li[l0 + l] : l0 + l) * lane + s0; }, lanes, kc, dst);
  }
  for (int64_t k = k16; k < kc; ++k) {
    const float *s = src + (si != nullptr ? si[s0 + k] : s0 + k) * step;
    float *d = dst + k * W;
    if (li == nullptr && lane == 1) {
      std::copy(s + l0, s + l0 + lanes, d);
    } else if (li == nullptr) {
      for (int64_t l = 0; l < lanes; ++l) d[l] = s[(l0 + l) * lane];
    } else {
      for (int64_t l = 0; l < lanes; ++l) d[l] = s[li[l0 + l] * lane];
    }
    std::fill(d + lanes, d + W, 0.0f);
  }
}

// pack_b writes op(B)[k0 : k0+kc, j0 : j0+nc] into panels [⌈nc/32⌉][kc][32],
// zero past column n.
template <int64_t W>
void pack_b(const GemmOperand &b, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int64_t panel, float *dst) {
  const int64_t jb = j0 + panel * W, cols = std::min<int64_t>(W, j0 + nc - jb);
  if (b.ri != nullptr || b.ci != nullptr)
    pack_indexed<W>(b.p, b.cs, b.rs, b.ci, jb, b.ri, k0, cols, kc, dst + panel * kc * W);
  else
    pack<W>(b.p + k0 * b.rs + jb * b.cs, b.cs, b.rs, cols, kc, dst + panel * kc * W);
}

// pack_a writes op(A)[i0 : i0+12, k0 : k0+kc] into dst [kc][12], zero past
// row m.
template <int64_t TR>
void pack_a(const GemmOperand &a, int64_t m, int64_t i0, int64_t k0, int64_t kc, float *dst) {
  const int64_t rows = std::min<int64_t>(TR, m - i0);
  if (a.ri != nullptr || a.ci != nullptr)
    pack_indexed<TR>(a.p, a.rs, a.cs, a.ri, i0, a.ci, k0, rows, kc, dst);
  else
    pack<TR>(a.p + i0 * a.rs + k0 * a.cs, a.rs, a.cs, rows, kc, dst);
}

// parallel runs f over [0, n) on the intra-op threads when the product is
// large enough to pay for them.
template <typename F>
void parallel(int64_t n, bool large, const F &f) {
  if (large && n > 1)
    at::parallel_for(0, n, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) f(i);
    });
  else
    for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace

namespace {

// gemm_w is gemm with panels of W columns and tiles of TR rows.
template <int64_t W, int64_t TR = MR>
void gemm_w(int64_t m, int64_t n, int64_t k, const GemmOperand &a, const GemmOperand &b, float *c, int64_t ldc,
            const float *bias, const int64_t *crow, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) {
      float *ci = c + (crow != nullptr ? crow[i] : i) * ldc;
      for (int64_t j = 0; j < n; ++j) ci[j] = (accumulate ? ci[j] : 0.0f) + (bias != nullptr ? bias[j] : 0.0f);
    }
    return;
  }
  const bool large = m * n * k >= (int64_t{1} << 18);
  // The packed blocks, kept per calling thread between calls (attention
  // makes thousands of small products a step): op(B)'s block, and op(A)'s
  // rows in chunks of MCHUNK (each packed once for all its panels; the
  // chunks bound the buffer, whatever m is). The parallel loops use the
  // pointers: a thread_local named inside them would be the worker's own.
  thread_local std::vector<float> a_buf, b_buf;
  const int64_t mchunk = std::min(MCHUNK, (m + TR - 1) / TR * TR);
  // Products of one or two panels (n ≤ 2W) read A's rows where they lie
  // (when each is contiguous): packed, every element of A would be moved
  // once for at most 2W multiply-adds, about as long as they take.
  // A product of at most four tiles of rows reads B's rows where they lie
  // (when each is contiguous), A packed.
  const bool direct_b = m <= std::max(TR, kDirectB) && b.cs == 1 && b.ci == nullptr;
  const bool direct = !direct_b && a.cs == 1 && a.ci == nullptr && n <= 2 * W;
  if (!direct) a_buf.resize(std::max(a_buf.size(), static_cast<size_t>(mchunk * std::min(k, KC) + 16)));
  b_buf.resize(std::max(b_buf.size(), static_cast<size_t>(((std::min(n, NC) + W - 1) / W) * W * std::min(k, KC) + 16)));
  float *pa = aligned64(a_buf), *pb = aligned64(b_buf);
  for (int64_t j0 = 0; j0 < n; j0 += NC) {
    const int64_t nc = std::min(NC, n - j0), panels = (nc + W - 1) / W;
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
      const int64_t kc = std::min(KC, k - k0);
      const bool first = k0 == 0, last = k0 + kc == k;
      if (!direct_b) parallel(panels, large, [&](int64_t p) { pack_b<W>(b, k0, kc, j0, nc, p, pb); });
      for (int64_t c0 = 0; c0 < m; c0 += MCHUNK) {
        const int64_t c1 = std::min(m, c0 + MCHUNK);
        if (!direct)
          parallel((c1 - c0 + TR - 1) / TR, large,
                   [&](int64_t r) { pack_a<TR>(a, m, c0 + r * TR, k0, kc, pa + r * TR * kc); });
        // Units of work: a block of MC rows against a group of up to 8
        // panels, fewer where that leaves under four units a thread; in
        // order of group, so that a thread's consecutive units share their
        // panels (a group is at most 256 KiB: it stays in L2 while the
        // blocks of A go by). In order of block instead, each thread
        // streamed all of B's block from L3 once per block of A: 1024³ on
        // two threads 185 -> 205 GFLOP/s, [2048, 512]·[512, 2048] on one
        // 88 -> 105 (throwaway harness, two runs each; the same outputs).
        const int64_t blocks = (c1 - c0 + MC - 1) / MC;
        const int64_t group = std::clamp<int64_t>(blocks * panels / (4 * at::get_num_threads()), 1, 8);
        const int64_t groups = (panels + group - 1) / group;
        parallel(blocks * groups, large, [&](int64_t u) {
          const int64_t i0 = c0 + (u % blocks) * MC, i1 = std::min(c1, i0 + MC);
          const int64_t p0 = (u / blocks) * group, p1 = std::min(panels, p0 + group);
          for (int64_t i = i0; i < i1; i += TR) {
            const int64_t rows = std::min(TR, i1 - i);
            const float *arow[TR];
            if (direct)
              for (int64_t r = 0; r < TR; ++r)
                arow[r] = a.p + (a.ri != nullptr ? a.ri[i + std::min(r, rows - 1)] : i + std::min(r, rows - 1)) * a.rs + k0;
            for (int64_t p = p0; p < p1; ++p) {
              const int64_t jb = j0 + p * W, cols = std::min<int64_t>(W, n - jb);
              const auto [m0, m1] = panel_masks(cols);
              const float *bias_p = last && bias != nullptr ? bias + jb : nullptr;
              const float *ap = pa + (i - c0) * kc, *bp = pb + p * kc * W;
              const bool load = !first || accumulate;
              const BRows br{b.p + jb, b.rs, b.ri, k0};
              if (direct_b && crow != nullptr)
                micro<W, true, false, TR, true>(kc, ap, nullptr, c + jb, ldc, rows, m0, m1, load, bias_p, crow + i,
                                                nullptr, &br);
              else if (direct_b)
                micro<W, false, false, TR, true>(kc, ap, nullptr, c + i * ldc + jb, ldc, rows, m0, m1, load, bias_p,
                                                 nullptr, nullptr, &br);
              else if (direct && crow != nullptr)
                micro<W, true, true, TR>(kc, ap, bp, c + jb, ldc, rows, m0, m1, load, bias_p, crow + i, arow);
              else if (direct)
                micro<W, false, true, TR>(kc, ap, bp, c + i * ldc + jb, ldc, rows, m0, m1, load, bias_p, nullptr, arow);
              else if (crow != nullptr)
                micro<W, true, false, TR>(kc, ap, bp, c + jb, ldc, rows, m0, m1, load, bias_p, crow + i);
              else
                micro<W, false, false, TR>(kc, ap, bp, c + i * ldc + jb, ldc, rows, m0, m1, load, bias_p);
            }
          }
        });
      }
    }
  }
}

// routed_tail adds rows I0 … I0 + 3 of a tile's routed groups to their
// chains, the four rows' eight chains advancing together (one row's two
// alone would wait on the FMA latency; twelve rows' pointers would not fit
// the registers). A template, so that the accumulators stay registers.
template <int I0>
__attribute__((always_inline)) inline void routed_tail(__m512 (&c0)[MR], __m512 (&c1)[MR], int64_t g, int64_t K,
                                                       const float *panel, const float *x, const int64_t *xr,
                                                       const int64_t *wr, int64_t rows) {
  if (I0 >= rows) return;
  for (int64_t q = 0; q < K; ++q) {
    const float *ap[4], *bp[4];
    for (int r = 0; r < 4; ++r) {
      const int64_t i = std::min<int64_t>(I0 + r, rows - 1) * K + q;
      ap[r] = x + xr[i] * g;
      bp[r] = panel + wr[i] * NR;
    }
    for (int64_t k = 0; k < g; ++k)
      for (int r = 0; r < 4; ++r) {
        const __m512 ai = _mm512_set1_ps(ap[r][k]);
        c0[I0 + r] = _mm512_fmadd_ps(ai, _mm512_loadu_ps(bp[r] + NR * k), c0[I0 + r]);
        c1[I0 + r] = _mm512_fmadd_ps(ai, _mm512_loadu_ps(bp[r] + NR * k + 16), c1[I0 + r]);
      }
  }
}

// routed_micro computes a 12 × 32 tile of routed_gemm's output: the
// shared rows' chain over s steps (A's rows read where they lie, B the
// panel's first s steps), then, for each of the rows' K routed groups in
// turn, g more steps: row i reads its own g values (xr[i·K + q]) against
// its own group's g steps of the panel (wr[i·K + q]), four rows at a time
// (routed_tail).
inline void routed_micro(int64_t s, int64_t g, int64_t K, const float *const *arow, const float *panel,
                         const float *x, const int64_t *xr, const int64_t *wr, float *c, int64_t ldc, int64_t rows,
                         __mmask16 m0, __mmask16 m1) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < s; ++k) {
    const __m512 b0 = _mm512_loadu_ps(panel + NR * k), b1 = _mm512_loadu_ps(panel + NR * k + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(arow[i][k]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
  static_assert(MR == 12);
  routed_tail<0>(c0, c1, g, K, panel, x, xr, wr, rows);
  routed_tail<4>(c0, c1, g, K, panel, x, xr, wr, rows);
  routed_tail<8>(c0, c1, g, K, panel, x, xr, wr, rows);
  for (int i = 0; i < MR; ++i)
    if (i < rows) {
      _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
      _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
}

}  // namespace

void routed_gemm(int64_t R, int64_t n, int64_t S, int64_t g, int64_t K, const float *xs, int64_t ldxs,
                 const float *x, const int64_t *xrow, const int64_t *wrow, const float *w, int64_t ldw, int64_t D,
                 float *y, int64_t ldy) {
  if (R == 0 || n == 0) return;
  const bool large = R * n * (S + K * g) >= (int64_t{1} << 18);
  // Blocks of panels of all D rows of w, about 512 KiB a block (the
  // shared rows stream through a panel; the routed rows are read where
  // each row's group lies).
  const int64_t per_block = std::max<int64_t>(1, (int64_t{1} << 17) / (D * NR));
  thread_local std::vector<float> b_buf;
  const int64_t panels_all = (n + NR - 1) / NR;
  b_buf.resize(std::max(b_buf.size(), static_cast<size_t>(std::min(per_block, panels_all) * NR * D + 16)));
  float *pb = aligned64(b_buf);
  // An empty shared part reads no row of xs: point at y (never read).
  const float *xs_p = S > 0 ? xs : y;
  for (int64_t p0 = 0; p0 < panels_all; p0 += per_block) {
    const int64_t p1 = std::min(panels_all, p0 + per_block);
    parallel(p1 - p0, large, [&](int64_t p) {
      const int64_t jb = (p0 + p) * NR;
      pack<NR>(w + jb, 1, ldw, std::min<int64_t>(NR, n - jb), D, pb + p * D * NR);
    });
    const int64_t blocks = (R + MC - 1) / MC;
    parallel(blocks, large, [&](int64_t u) {
      const int64_t i0 = u * MC, i1 = std::min(R, i0 + MC);
      for (int64_t i = i0; i < i1; i += MR) {
        const int64_t rows = std::min(MR, i1 - i);
        const float *arow[MR];
        for (int64_t r = 0; r < MR; ++r) arow[r] = xs_p + (i + std::min(r, rows - 1)) * ldxs;
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t jb = p * NR, cols = std::min<int64_t>(NR, n - jb);
          const auto [m0, m1] = panel_masks(cols);
          routed_micro(S, g, K, arow, pb + (p - p0) * D * NR, x, xrow + i * K, wrow + i * K, y + i * ldy + jb, ldy,
                       rows, m0, m1);
        }
      }
    });
  }
}

void gemm(int64_t m, int64_t n, int64_t k, const GemmOperand &a, const GemmOperand &b, float *c, int64_t ldc,
          const float *bias, const int64_t *crow, bool accumulate) {
  if (n <= 16)
    gemm_w<16>(m, n, k, a, b, c, ldc, bias, crow, accumulate);
  else if (m <= 8)
    gemm_w<NR, 8>(m, n, k, a, b, c, ldc, bias, crow, accumulate);
  else
    gemm_w<NR>(m, n, k, a, b, c, ldc, bias, crow, accumulate);
}
#pragma GCC pop_options
#else
void gemm(int64_t, int64_t, int64_t, const GemmOperand &, const GemmOperand &, float *, int64_t, const float *,
          const int64_t *, bool) {
  throw Error(HL_ERR_VALUE, "gemm: no AVX-512 kernel in this build");
}
void routed_gemm(int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t, const float *, const int64_t *,
                 const int64_t *, const float *, int64_t, int64_t, float *, int64_t) {
  throw Error(HL_ERR_VALUE, "routed_gemm: no AVX-512 kernel in this build");
}
#endif

namespace {
GemmOperand operand(const at::Tensor &t) { return {t.data_ptr<float>(), t.stride(0), t.stride(1)}; }
}  // namespace

bool own_gemm(const at::Tensor &x) { return own_product(x) && !at::autocast::is_cpu_enabled(); }

void mm_out(at::Tensor &out, const at::Tensor &a, const at::Tensor &b) {
  if (!own_product(a) || b.scalar_type() != at::kFloat || !b.device().is_cpu() || out.stride(1) != 1 ||
      a.dim() != 2 || b.dim() != 2) {
    at::mm_out(out, a, b);
    return;
  }
  TORCH_CHECK(a.size(1) == b.size(0) && out.size(0) == a.size(0) && out.size(1) == b.size(1),
              "mm: shapes ", a.sizes(), " and ", b.sizes(), " into ", out.sizes());
  gemm(a.size(0), b.size(1), a.size(1), operand(a), operand(b), out.data_ptr<float>(), out.stride(0), nullptr);
}

at::Tensor mm(const at::Tensor &a, const at::Tensor &b) {
  if (!own_product(a)) return at::mm(a, b);
  auto out = at::empty({a.size(0), b.size(1)}, a.options());
  hl::mm_out(out, a, b);
  return out;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Linear is y = x·wᵀ + b over x's last dimension, x [..., K], w [N, K], b
// [N] or undefined.
struct Linear : public torch::autograd::Function<Linear> {
  // The bias is optional: a custom node's tensor inputs must be defined.
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                               const c10::optional<at::Tensor> &b_opt) {
    const at::Tensor b = b_opt.value_or(at::Tensor());
    RECORD_USER_SCOPE("hl::linear");
    const int64_t K = w.size(1), N = w.size(0);
    TORCH_CHECK(x.dim() >= 1 && x.size(-1) == K, "linear: input ", x.sizes(), " and weight ", w.sizes());
    TORCH_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == N), "linear: weight ", w.sizes(), " and bias ",
                b.sizes());
    const auto x2 = x.reshape({-1, K});
    const auto bc = b.defined() ? b.contiguous() : b;
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    auto y = at::empty({x2.size(0), N}, x.options());
    gemm(x2.size(0), N, K, operand(x2), operand(w.t()), y.data_ptr<float>(), N,
         bc.defined() ? bc.data_ptr<float>() : nullptr);
    ctx->save_for_backward({x, w});
    ctx->saved_data["bias"] = b.defined();
    return {y.view(sizes)};
  }

  // gx = gy·w, gw = gyᵀ·x, gb = Σ_rows gy. With create_graph the gradients
  // are made by differentiable ATen ops instead, so that a second backward
  // sees them.
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::linear_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const int64_t K = w.size(1), N = w.size(0);
    const auto gy = grads[0].reshape({-1, N});
    const auto x2 = x.reshape({-1, K});
    const bool differentiable = at::GradMode::is_enabled();
    at::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) gx = (differentiable ? at::mm(gy, w) : hl::mm(gy, w)).view(x.sizes());
    if (ctx->needs_input_grad(1)) gw = differentiable ? at::mm(gy.t(), x2) : hl::mm(gy.t(), x2);
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) gb = gy.sum(0);
    return {gx, gw, gb};
  }
};

}  // namespace

at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b) {
  const auto same = [&](const at::Tensor &t) {
    return t.device().is_cpu() && t.scalar_type() == at::kFloat && !t.is_mkldnn() && !t.is_sparse();
  };
  const bool bias = b.has_value() && b->defined();
  if (!own_gemm(x) || !same(x) || !same(w) || w.dim() != 2 || (bias && !same(*b)))
    return at::linear(x, w, b);
  return Linear::apply(x, w, bias ? b : c10::nullopt)[0];
}

}  // namespace hl
