// scores.cc: the codebook op's cosine scores (codebook.cc's select_ids), and
// the other short products of the hidden-feature layers, on CPUs with
// AVX-512, in a kernel of our own.
//
// Why: the scores a·ĉ are the codebook layer's one large GEMM (2·N·D·C
// FLOPs per layer, a fifth of the benchmark GPT's step), and libtorch hands
// them to its BLAS. Where the BLAS runs AVX2 kernels on an AVX-512 CPU (this
// project's machines: OpenBLAS 0.3.21 is pinned to its "Haswell" kernels by
// OPENBLAS_CORETYPE, as older builds compute wrong results on these CPUs),
// half of each FMA unit stays idle, and the group codebook's short products
// (d = 64 per head) reach 56–74% even of that. The kernel below is one
// product shape — rows of a against the columns of a packed operand — so it
// needs none of a BLAS's generality: the packed operand (the codes) in
// panels of 32 columns (two vectors of 16), a tile of 12 rows × 32 columns
// summed in 24 registers over the whole reduction, and its results stored
// straight into the block's buffer that top-k reads next. (gemm.cc is the
// general product, with the same micro-kernel and rounding.)
//
// Rounding: every result is one chain of fused multiply-adds from zero over
// k = 0 … d−1. OpenBLAS's AVX-512 kernels sum a product that fits one of
// their K blocks the same way; its AVX2 kernels do not (7% of the scores
// differ in the last bit at d = 64 and 256), so ids can differ from the
// reference layer's where two scores lie within one rounding.
// TestCodebookScores checks the chain bit for bit (remainder tiles, partial
// panels).
//
// The codebook op's screen (codebook.cc) adds three pieces here: the same
// tile over bfloat16 pairs (approx_scores, on CPUs with AVX512_BF16: each
// instruction two multiply-adds a lane, approximate scores with a proven
// error bound), the roundings to bfloat16 it needs (bf16_row,
// pack_codes_bf16), and the exact chain for a list of candidate codes read
// where they lie (exact_scores: the same bits as the tile's).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "internal.h"
#include "simd512.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HL_SCORES_AVX512 1
#else
#define HL_SCORES_AVX512 0
#endif

namespace hl {

bool own_product(const at::Tensor &x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && simd_avx512();
}

at::Tensor pack_codes32(const at::Tensor &norm) {
  const auto n = norm.contiguous();
  const int64_t G = n.size(0), C = n.size(1), d = n.size(2), P = (C + 31) / 32;
  auto packed = at::empty({G, P, d, 32}, n.options());
  const float *src = n.data_ptr<float>();
  float *dst = packed.data_ptr<float>();
  // Panels in parallel; a last partial panel's columns past C are zeros.
  at::parallel_for(0, G * P, 1, [&](int64_t b, int64_t e) {
    for (int64_t gp = b; gp < e; ++gp) {
      const int64_t g = gp / P, c0 = gp % P * 32, cols = std::min<int64_t>(32, C - c0);
      float *panel = dst + gp * d * 32;
      if (cols < 32)
        for (int64_t k = 0; k < d; ++k) std::fill(panel + k * 32 + cols, panel + k * 32 + 32, 0.0f);
      for (int64_t c = 0; c < cols; ++c) {
        const float *row = src + (g * C + c0 + c) * d;
        for (int64_t k = 0; k < d; ++k) panel[k * 32 + c] = row[k];
      }
    }
  });
  return packed;
}

#if HL_SCORES_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace {

// tile sums the scores of MR tokens (rows of a, lda apart) against one panel
// of 32 codes (b: d steps of 32 values) and stores the columns m0, m1 select.
template <int MR>
inline void tile(const float *a, int64_t lda, const float *b, int64_t d, float *s, int64_t lds, __mmask16 m0,
                 __mmask16 m1) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < d; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + 32 * k), b1 = _mm512_loadu_ps(b + 32 * k + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda + k]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(s + i * lds, m0, c0[i]);
    _mm512_mask_storeu_ps(s + i * lds + 16, m1, c1[i]);
  }
}

// with_rows calls f(std::integral_constant<int, rows>{}) for 1 ≤ rows ≤
// MR: the tile kernels take their number of rows as a template argument.
template <int MR, typename F>
inline void with_rows(int64_t rows, const F &f) {
  if constexpr (MR > 0) {
    if (rows == MR) return f(std::integral_constant<int, MR>{});
    with_rows<MR - 1>(rows, f);
  }
}

// sweep calls tile(R, t, p, m0, m1) for every tile of R rows from row t
// (R ≤ 12, a std::integral_constant) and every panel p of 32 of the C
// codes, m0 and m1 masking the panel's columns past C; the panels go in
// blocks of block, each block meeting every tile of rows in turn.
template <typename Tile>
inline void sweep(int64_t n, int64_t C, int64_t block, const Tile &tile) {
  constexpr int64_t MR = 12;
  const int64_t P = (C + 31) / 32;
  for (int64_t p0 = 0; p0 < P; p0 += block) {
    const int64_t p1 = std::min(P, p0 + block);
    for (int64_t t = 0; t < n; t += MR)
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t cols = std::min<int64_t>(32, C - 32 * p);
        const __mmask16 m0 = cols >= 16 ? 0xFFFF : (1u << cols) - 1;
        const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0;
        with_rows<MR>(std::min(MR, n - t), [&](auto R) { tile(R, t, p, m0, m1); });
      }
  }
}

// scores_rows writes s[t, c] = Σ_k a[t·lda + k]·b[c][k] for t < n and c < C
// (row stride C), b packed in panels of 32 columns, d steps each. The
// panels go in blocks of about 256 KiB (8 panels at d = 256, all 32 of
// C = 1,024 at d = 64) and each block meets every tile of rows in turn, so
// that the block stays in L2 while the rows pass: one tile against every
// panel would read all the codes (1 MiB at C = 1,024, d = 256) from L3
// once per 12 rows. (Measured, with the selection taking one group's block
// at a time: the group codebook's forward 8.6–11.5 ms against 8.7–11.4
// before, one thread, eight alternating runs of a throwaway harness — within
// this host's noise, not a measured gain.)
void scores_rows(const float *a, int64_t lda, int64_t n, int64_t d, const float *panels, int64_t C, float *s) {
  sweep(n, C, std::max<int64_t>(1, (int64_t{1} << 16) / (32 * d)),
        [&](auto R, int64_t t, int64_t p, __mmask16 m0, __mmask16 m1) {
          tile<decltype(R)::value>(a + t * lda, lda, panels + p * d * 32, d, s + t * C + 32 * p, C, m0, m1);
        });
}

}  // namespace

void scores_group(const float *a, int64_t n, int64_t G, int64_t g, int64_t d, const float *packed, int64_t C,
                  float *s, std::vector<float> &slab) {
  const float *ag = a + g * d;
  int64_t lda = G * d;
  // With several groups a group's rows lie G·d apart, a power of two in
  // practice (256 floats for 4 heads of 64): the block's rows then fall into
  // a quarter of L1's sets and evict each other between panels. They are
  // copied together first (n·d floats against n·d·C multiply-adds).
  if (G > 1) {
    slab.resize(std::max(slab.size(), static_cast<size_t>(n * d)));
    for (int64_t t = 0; t < n; ++t) std::copy(ag + t * lda, ag + t * lda + d, slab.data() + t * d);
    ag = slab.data();
    lda = d;
  }
  scores_rows(ag, lda, n, d, packed + g * ((C + 31) / 32) * d * 32, C, s);
}

void scores_block(const float *a, int64_t n, int64_t G, int64_t d, const float *packed, int64_t C, float *s) {
  std::vector<float> slab;
  for (int64_t g = 0; g < G; ++g) scores_group(a, n, G, g, d, packed, C, s + g * n * C, slab);
}

// exact_scores reads the candidates' code rows where they lie, 16 at a
// time, and turns each block of 16 steps into 16 vectors of one step each
// (a transpose in registers), so that lane j's chain runs over candidate
// j's row: one chain of 16 lanes, d multiply-adds long, two such chains
// interleaved where there are more than 16 candidates (one alone waits on
// each multiply-add's latency).
void exact_scores(const float *a, int64_t d, const float *codes, const int32_t *cand, int64_t n, float *out) {
  for (int64_t j0 = 0; j0 < n; j0 += 32) {
    const int64_t m = std::min<int64_t>(32, n - j0), chains = m > 16 ? 2 : 1;
    const float *rows[32];
    for (int64_t i = 0; i < 32; ++i) rows[i] = codes + static_cast<int64_t>(cand[j0 + std::min(i, m - 1)]) * d;
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t k0 = 0; k0 < d; k0 += 16) {
      const int64_t steps = std::min<int64_t>(16, d - k0);
      const __mmask16 km = steps == 16 ? 0xFFFF : static_cast<__mmask16>((1u << steps) - 1);
      __m512 r[2][16];
      for (int64_t c = 0; c < chains; ++c) {
        for (int i = 0; i < 16; ++i) r[c][i] = _mm512_maskz_loadu_ps(km, rows[16 * c + i] + k0);
        transpose16x16(r[c]);
      }
      for (int64_t k = 0; k < steps; ++k) {
        const __m512 ak = _mm512_set1_ps(a[k0 + k]);
        for (int64_t c = 0; c < chains; ++c) acc[c] = _mm512_fmadd_ps(ak, r[c][k], acc[c]);
      }
    }
    alignas(64) float v[32];
    _mm512_store_ps(v, acc[0]);
    _mm512_store_ps(v + 16, acc[1]);
    std::copy(v, v + m, out + j0);
  }
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bf16")
namespace {

// tile_bf16 is tile for the screen: MR rows of bfloat16 pairs (dp values a
// row) against one panel of 32 codes (dp/2 steps of 32 pairs), each
// instruction two products a lane.
template <int MR>
inline void tile_bf16(const uint16_t *a, int64_t dp, const uint16_t *b, float *s, int64_t lds, __mmask16 m0,
                      __mmask16 m1) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < dp; k += 2) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + 32 * k), b1 = (__m512bh)_mm512_loadu_si512(b + 32 * k + 32);
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, a + i * dp + k, sizeof pair);
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
      c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(s + i * lds, m0, c0[i]);
    _mm512_mask_storeu_ps(s + i * lds + 16, m1, c1[i]);
  }
}

}  // namespace

float bf16_row(const float *a, int64_t d, uint16_t *dst) {
  __m512 sq = _mm512_setzero_ps();
  for (int64_t k0 = 0; k0 < d; k0 += 16) {
    const int64_t steps = std::min<int64_t>(16, d - k0);
    const __mmask16 km = steps == 16 ? 0xFFFF : static_cast<__mmask16>((1u << steps) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(km, a + k0);
    sq = _mm512_fmadd_ps(x, x, sq);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + k0), (__m256i)_mm512_cvtneps_pbh(x));
  }
  alignas(64) float lanes[16];  // (_mm512_reduce_add_ps draws GCC 12's false -Wuninitialized)
  _mm512_store_ps(lanes, sq);
  float sum = 0;
  for (const float v : lanes) sum += v;
  return sum;
}

void approx_scores(const uint16_t *a, int64_t n, int64_t dp, const uint16_t *panels, int64_t C, float *s) {
  sweep(n, C, std::max<int64_t>(1, (int64_t{1} << 18) / (64 * dp)),
        [&](auto R, int64_t t, int64_t p, __mmask16 m0, __mmask16 m1) {
          tile_bf16<decltype(R)::value>(a + t * dp, dp, panels + p * dp * 32, s + t * C + 32 * p, C, m0, m1);
        });
}

// pack_codes_bf16 rounds each code's row (bf16_row) into pairs of bfloat16,
// one 32-bit word a pair, [G, C, dp/2], and lays the words out in panels
// as pack_codes32 lays out floats (word k/2 of code j at step k/2, lane j):
// pack_codes32 moves them, their bits seen as floats.
at::Tensor pack_codes_bf16(const at::Tensor &norm, bool &finite) {
  const auto nc = norm.contiguous();
  const int64_t G = nc.size(0), C = nc.size(1), d = nc.size(2), dp = (d + 1) / 2 * 2;
  auto pairs = at::empty({G, C, dp / 2}, nc.options().dtype(at::kInt));
  const float *src = nc.data_ptr<float>();
  uint16_t *dst = reinterpret_cast<uint16_t *>(pairs.data_ptr<int32_t>());
  std::atomic<bool> all{true};
  at::parallel_for(0, G * C, 64, [&](int64_t b, int64_t e) {
    std::vector<uint16_t> row(static_cast<size_t>(dp + 16));
    bool ok = true;
    for (int64_t r = b; r < e; ++r) {
      ok = ok && std::isfinite(bf16_row(src + r * d, d, row.data()));
      std::copy(row.data(), row.data() + dp, dst + r * dp);
    }
    if (!ok) all = false;
  });
  finite = all;
  return pack_codes32(pairs.view(at::kFloat)).view(at::kShort).view({G, (C + 31) / 32, dp * 32});
}

#pragma GCC pop_options
#pragma GCC pop_options
#else
void scores_block(const float *, int64_t, int64_t, int64_t, const float *, int64_t, float *) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
void scores_group(const float *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t, float *,
                  std::vector<float> &) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
void exact_scores(const float *, int64_t, const float *, const int32_t *, int64_t, float *) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
float bf16_row(const float *, int64_t, uint16_t *) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
void approx_scores(const uint16_t *, int64_t, int64_t, const uint16_t *, int64_t, float *) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
at::Tensor pack_codes_bf16(const at::Tensor &, bool &) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
#endif

}  // namespace hl
