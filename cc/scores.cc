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

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "internal.h"

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

template <int MR>
void tail(int64_t rows, const float *a, int64_t lda, const float *b, int64_t d, float *s, int64_t lds, __mmask16 m0,
          __mmask16 m1) {
  if constexpr (MR > 0) {
    if (rows == MR) return tile<MR>(a, lda, b, d, s, lds, m0, m1);
    tail<MR - 1>(rows, a, lda, b, d, s, lds, m0, m1);
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
  constexpr int64_t MR = 12;
  const int64_t P = (C + 31) / 32, block = std::max<int64_t>(1, (int64_t{1} << 16) / (32 * d));
  for (int64_t p0 = 0; p0 < P; p0 += block) {
    const int64_t p1 = std::min(P, p0 + block);
    for (int64_t t = 0; t < n; t += MR) {
      const int64_t rows = std::min(MR, n - t);
      for (int64_t p = p0; p < p1; ++p) {
        const float *b = panels + p * d * 32;
        const int64_t cols = std::min<int64_t>(32, C - 32 * p);
        const __mmask16 m0 = cols >= 16 ? 0xFFFF : (1u << cols) - 1;
        const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0;
        float *st = s + t * C + 32 * p;
        if (rows == MR)
          tile<MR>(a + t * lda, lda, b, d, st, C, m0, m1);
        else
          tail<MR - 1>(rows, a + t * lda, lda, b, d, st, C, m0, m1);
      }
    }
  }
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

#pragma GCC pop_options
#else
void scores_block(const float *, int64_t, int64_t, int64_t, const float *, int64_t, float *) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
void scores_group(const float *, int64_t, int64_t, int64_t, int64_t, const float *, int64_t, float *,
                  std::vector<float> &) {
  throw Error(HL_ERR_VALUE, "codebook scores: no AVX-512 kernel in this build");
}
#endif

}  // namespace hl
