// codebook.cc: the fused codebook quantisation of models/codebook, a custom
// autograd function (forward without a graph, hand-written backward).
//
// Where it differs from the reference layer (models/codebook/layer.go,
// Select + Lookup + the MSE and straight-through expressions) and why:
//   - the reference builds an autograd graph for the lookup (embedding, sum
//     over k, divide), the MSE (sub, square, sum, mean) and the
//     straight-through (a − sg(a) + q); here the forward records nothing
//     (one pass over the rows forms q, q − a and ‖q − a‖²) and the backward
//     is one pass over the selected ids: the same gradients, without the
//     graph's temporaries (the [N, G, k, d] gathered codes and their
//     gradient, the loss's elementwise tensors) and its per-node overhead;
//   - the code gradient is one accumulation over the selected ids in a fixed
//     order (each thread owns a range of code rows and reads the ids in
//     order), so runs are bitwise reproducible for a given thread count; the
//     reference's embedding backward sums in the same order, so the two
//     agree to rounding (the test asks 1e-5);
//   - the score blocks are sized from the L2 cache (at most chunk tokens)
//     instead of a fixed element count: a block's scores are written by the
//     GEMM and read once by top-k while still in cache (measured: blocks of
//     64 to 2048 tokens within 10% of each other). Threads take whole
//     blocks (one single-threaded GEMM and its top-k each) rather than
//     splitting every block's GEMM. The ids do not depend on the block size
//     or the thread count;
//   - on CPUs with AVX-512 the float32 scores come from scores.cc's kernel
//     instead of the BLAS: each score one chain of fused multiply-adds over
//     d, which is what OpenBLAS's AVX-512 kernels compute too, but not its
//     AVX2 ("Haswell") kernels, which round 7% of the scores differently in
//     the last bit (measured at d = 64 and 256). Where two codes' scores lie
//     within that rounding of each other at the k-th place, the op and the
//     reference layer on AVX2 BLAS kernels can pick different ids; the op's
//     ids no longer depend on which kernels the BLAS runs;
//   - on CPUs with AVX512_BF16 those exact scores are computed only for
//     the codes that can be among a row's k best, found from scores of
//     bfloat16-rounded operands with a proven error bound (the screen, at
//     select_ids): the same ids as scoring every code exactly, at about
//     1.3 to 1.6x the speed of the float32 kernel alone;
//   - top-k is a selection by block maxima (topk_row) instead of at::topk:
//     the same ids in the same order, except among exactly equal scores
//     (here the lower index first; at::topk leaves the order unspecified)
//     and for NaN scores (never selected here, −1 where fewer than k scores
//     are numbers; at::topk ranks NaN first). For k ≤ 16 on AVX-512 CPUs
//     topk_row16, and for k ≤ 8 on AVX2 CPUs topk_row8 (checked at run
//     time, HIDDENLAB_SIMD caps them), rank candidates from looser bounds
//     without insertions or without branches (same ids). torch's
//     TestCodebookQuantizeTopK pins ties, NaN and every path of topk_row,
//     TestSIMDLevels again with AVX-512 and with AVX2 held back.

#include <torch/csrc/autograd/custom_function.h>

#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <ATen/record_function.h>

#include "internal.h"

// lookup_rows' and scatter_rows' vectors of 16 (V16) pass between always-inlined
// functions only: no call of this file passes one in registers.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// l2_bytes is the L2 cache of one core (1 MiB when the system does not say).
int64_t l2_bytes() {
  static const int64_t bytes = [] {
    long s = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return s > 0 ? static_cast<int64_t>(s) : int64_t{1} << 20;
  }();
  return bytes;
}

// auto_chunk is the tokens per score block: G × chunk × C floats about the
// size of L2, but at least 64 tokens (fewer rows make the GEMM inefficient).
int64_t auto_chunk(int64_t G, int64_t C) { return std::max<int64_t>(64, l2_bytes() / (4 * G * C)); }

// own_chunk is the tokens per block for scores.cc's kernel, which takes one
// group at a time and needs no tall blocks: a quarter of L2 for a block's
// scores, so that they and a block of the packed codes stay in L2 together
// (64 tokens at C = 1,024; when all groups' scores of a block were kept,
// blocks of auto_chunk/1, /2, /4, /8 tokens took 8.0, 7.8, 7.4, 7.6 ms per
// forward of the MLP codebook, 12.4, 11.9, 11.4, 11.6 ms of the group
// codebook, one thread), at least one tile of 12.
int64_t own_chunk(int64_t C) { return std::max<int64_t>(12, l2_bytes() / (16 * C)); }

// better orders candidates: the higher score first, the lower index first
// among equal scores.
inline bool better(float v, int64_t c, float bv, int64_t bc) { return v > bv || (v == bv && c < bc); }

// topk_scan writes the indices of the k largest of the scores s[c] for the
// candidates c in cand[0..n) (or for c in [0, C) when cand is null) to out,
// best first, an earlier index first among equal scores: one pass keeping the
// k best in order (k ≤ 32); NaN scores are never selected, and slots left
// when fewer than k scores are not NaN get −1.
inline void topk_scan(const float *s, const int64_t *cand, int64_t n, int64_t k, int64_t *out) {
  float best[32];
  int64_t idx[32];
  int64_t held = 0;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t c = cand ? cand[j] : j;
    const float v = s[c];
    if (v != v) continue;  // NaN
    hl::keep_best(v, c, best, idx, held, k, better);
  }
  for (int64_t j = 0; j < k; ++j) out[j] = j < held ? idx[j] : -1;
}

// block_maxima writes the maximum of every full block of 16 scores of s to
// bmax[0, nb) (SSE: four blocks at a time, a 4×4 transpose instead of
// horizontal maxima); a NaN score never wins a max.
inline void block_maxima(const float *s, int64_t nb, float *bmax) {
  constexpr int64_t B = 16;
  constexpr float inf = std::numeric_limits<float>::infinity();
  int64_t b = 0;
#if defined(__SSE2__)
  for (; b + 4 <= nb; b += 4) {
    __m128 r[4];
    for (int j = 0; j < 4; ++j) {
      const float *p = s + (b + j) * B;
      __m128 acc = _mm_set1_ps(-inf);
      for (int v = 0; v < 4; ++v) acc = _mm_max_ps(_mm_loadu_ps(p + 4 * v), acc);  // a NaN score keeps acc
      r[j] = acc;
    }
    _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
    _mm_storeu_ps(bmax + b, _mm_max_ps(_mm_max_ps(r[0], r[1]), _mm_max_ps(r[2], r[3])));
  }
#endif
  for (; b < nb; ++b) {
    float m = -inf;
    for (int64_t c = b * B; c < (b + 1) * B; ++c) m = s[c] > m ? s[c] : m;
    bmax[b] = m;
  }
}

// gather_candidates writes, in increasing order, the indices c of the scores
// s[c] ≥ T in the blocks of 16 whose maximum reaches T and in the tail past
// the last full block; it returns their number, or −1 when there are more
// than maxCand.
inline int64_t gather_candidates(const float *s, int64_t C, const float *bmax, int64_t nb, float T, int64_t *cand,
                                 int64_t maxCand) {
  constexpr int64_t B = 16;
  int64_t n = 0;
  for (int64_t b = 0; b < nb; ++b) {
    if (!(bmax[b] >= T)) continue;
    if (n + B > maxCand) return -1;
    const float *p = s + b * B;
#if defined(__SSE2__)
    const __m128 t = _mm_set1_ps(T);
    unsigned m = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p), t))) |
                 static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 4), t))) << 4 |
                 static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 8), t))) << 8 |
                 static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 12), t))) << 12;
    for (; m != 0; m &= m - 1) cand[n++] = b * B + __builtin_ctz(m);
#else
    for (int64_t c = 0; c < B; ++c)
      if (p[c] >= T) cand[n++] = b * B + c;
#endif
  }
  for (int64_t c = nb * B; c < C; ++c) {
    if (!(s[c] >= T)) continue;
    if (n == maxCand) return -1;
    cand[n++] = c;
  }
  return n;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HL_TOPK_AVX2 1

// insert8 inserts the score v of index c (both broadcast) into the 8 best
// held in top (descending) and idx: the lanes where v is greater move down
// one and v takes the first of them, without a branch. A score equal to a
// held one goes after it, so that visiting scores in index order keeps the
// lower index first among ties.
__attribute__((target("avx2"))) inline void insert8(__m256 &top, __m256i &idx, __m256 v, __m256i c) {
  const __m256i down = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6);
  const __m256 notFirst = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, -1, -1, -1, -1, -1, -1));
  const __m256 gt = _mm256_cmp_ps(v, top, _CMP_GT_OQ);  // lanes p…7 (top is descending)
  const __m256 after = _mm256_and_ps(_mm256_permutevar8x32_ps(gt, down), notFirst);  // lanes p+1…7
  top = _mm256_blendv_ps(top, _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(top, down), after), gt);
  const __m256 moved = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(idx, down));
  idx = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(idx), _mm256_blendv_ps(_mm256_castsi256_ps(c), moved, after), gt));
}

// topk_row8 is topk_row for k ≤ 8 with AVX2, ranking without branches; it
// returns false, having written nothing, where topk_row must take the row.
// (1) The block maxima, as topk_row. (2) A bound T for the k-th best score
// that needs no ranking of the block maxima: the blocks fall into 8 groups
// (block b in group b mod 8) and T is the k-th largest of the 8 group
// maxima; k groups hold a score ≥ T, so every selected score is ≥ T. T is
// lower than topk_row's k-th largest block maximum: about 21 candidates
// instead of 8.4 for k = 8 at C = 1,024 (Gaussian scores), but finding it
// is 8 insertions instead of about 24 data-dependent ones. (3) The
// candidates, as topk_row. (4) They are ranked by insert8 in index order:
// the ids of topk_scan over the whole row, ties included.
__attribute__((target("avx2"))) bool topk_row8(const float *s, int64_t C, int64_t k, int64_t *out) {
  constexpr int64_t B = 16, maxBlocks = 1024, maxCand = 512;
  constexpr float inf = std::numeric_limits<float>::infinity();
  const int64_t nb = C / B;
  if (k > 8 || nb < 8 || nb > maxBlocks) return false;
  alignas(32) float bmax[maxBlocks + 8];
  block_maxima(s, nb, bmax);
  for (int64_t b = nb; b % 8 != 0; ++b) bmax[b] = -inf;
  __m256 groups = _mm256_load_ps(bmax);
  for (int64_t b = 8; b < nb; b += 8) groups = _mm256_max_ps(groups, _mm256_load_ps(bmax + b));
  alignas(32) float g[8];
  _mm256_store_ps(g, groups);
  __m256 top = _mm256_set1_ps(-inf);
  __m256i idx = _mm256_set1_epi32(-1);
  for (int j = 0; j < 8; ++j) insert8(top, idx, _mm256_set1_ps(g[j]), idx);
  alignas(32) float held[8];
  _mm256_store_ps(held, top);
  const float T = held[k - 1];
  if (!(T > -inf && T < inf)) return false;
  int64_t cand[maxCand];
  const int64_t n = gather_candidates(s, C, bmax, nb, T, cand, maxCand);
  if (n < k) return false;  // overflow (−1); fewer than k cannot happen with T finite
  top = _mm256_set1_ps(-inf);
  idx = _mm256_set1_epi32(-1);
  for (int64_t j = 0; j < n; ++j)
    insert8(top, idx, _mm256_set1_ps(s[cand[j]]), _mm256_set1_epi32(static_cast<int32_t>(cand[j])));
  alignas(32) int32_t ids[8];
  _mm256_store_si256(reinterpret_cast<__m256i *>(ids), idx);
  for (int64_t j = 0; j < k; ++j) out[j] = ids[j];
  return true;
}

// load16 is vector v of a row of C scores (full of them whole), the
// scores past C read as −∞.
__attribute__((target("avx512f"))) inline __m512 load16(const float *s, int64_t v, int64_t full, __mmask16 tail) {
  return v < full ? _mm512_loadu_ps(s + 16 * v)
                  : _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), tail, s + 16 * v);
}

// kth_largest is the k-th largest of the n ≥ k numbers val: the largest
// val[i] that k of them reach. Up to 32 are counted in two vectors against
// each other (lanes broadcast by permutes, as rank_top), more each against
// all.
__attribute__((target("avx512f"))) float kth_largest(const float *val, int64_t n, int64_t k) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (n <= 32) {
    const __mmask16 in0 = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    const __mmask16 in1 = n >= 32 ? 0xFFFF : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
    const __m512 ninf = _mm512_set1_ps(-inf), V[2] = {_mm512_mask_loadu_ps(ninf, in0, val),
                                                      _mm512_mask_loadu_ps(ninf, in1, val + 16)};
    const __m512i one = _mm512_set1_epi32(1);
    __m512i reach[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // lane i: #{j : val_j ≥ val_i}
    const int vecs = n > 16 ? 2 : 1;
    for (int h = 0; h < vecs; ++h)
      for (int j = 0; j < 16; ++j) {
        const __m512 vj = _mm512_maskz_permutexvar_ps(0xFFFF, _mm512_set1_epi32(j), V[h]);
        for (int c = 0; c < vecs; ++c)
          reach[c] = _mm512_mask_add_epi32(reach[c], _mm512_cmp_ps_mask(vj, V[c], _CMP_GE_OQ), reach[c], one);
      }
    const __m512i kk = _mm512_set1_epi32(static_cast<int32_t>(k));
    const __m512 m = _mm512_maskz_max_ps(0xFFFF, _mm512_mask_mov_ps(ninf, in0 & _mm512_cmpge_epi32_mask(reach[0], kk), V[0]),
                                         _mm512_mask_mov_ps(ninf, in1 & _mm512_cmpge_epi32_mask(reach[1], kk), V[1]));
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, m);
    float T = -inf;
    for (const float v : lanes) T = std::max(T, v);
    return T;
  }
  float T = -inf;
  for (int64_t i = 0; i < n; ++i) {
    const __m512 vi = _mm512_set1_ps(val[i]);
    int64_t reach = 0;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 in = n - j >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - j)) - 1);
      reach += __builtin_popcount(_mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, val + j), vi, _CMP_GE_OQ));
    }
    if (reach >= k) T = std::max(T, val[i]);
  }
  return T;
}

// lane_threshold is topk_row16's step (1) for a row of C ≥ 16 scores and
// k ≤ 16: the k-th largest lane maximum (kth_largest of the 16).
__attribute__((target("avx512f"))) float lane_threshold(const float *s, int64_t C, int64_t k) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  const int64_t full = C / 16, nv = full + (C % 16 != 0 ? 1 : 0);
  const __mmask16 tail = static_cast<__mmask16>((1u << (C % 16)) - 1);
  const __m512 ninf = _mm512_set1_ps(-inf);
  // Four independent chains. (The maskz form of max: the plain one's
  // undefined pass-through draws a false -Wmaybe-uninitialized from GCC
  // 12; a NaN score keeps the maximum.)
  __m512 mx[4] = {ninf, ninf, ninf, ninf};
  for (int64_t v = 0; v < nv; ++v) mx[v % 4] = _mm512_maskz_max_ps(0xFFFF, load16(s, v, full, tail), mx[v % 4]);
  const __m512 m = _mm512_maskz_max_ps(0xFFFF, _mm512_maskz_max_ps(0xFFFF, mx[0], mx[1]),
                                       _mm512_maskz_max_ps(0xFFFF, mx[2], mx[3]));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  return kth_largest(lanes, 16, k);
}

// gather_above is topk_row16's step (2): the scores ≥ T of a row of C
// scores and their indices, in index order, into val and idx (room for
// maxCand + 16); it returns their number, or −1 where there are more than
// maxCand.
__attribute__((target("avx512f"))) int64_t gather_above(const float *s, int64_t C, float T, float *val, int32_t *idx,
                                                        int64_t maxCand) {
  const int64_t full = C / 16, nv = full + (C % 16 != 0 ? 1 : 0);
  const __mmask16 tail = static_cast<__mmask16>((1u << (C % 16)) - 1);
  const __m512 t = _mm512_set1_ps(T);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t n = 0;
  for (int64_t v0 = 0; v0 < nv; v0 += 64) {
    const int64_t v1 = std::min<int64_t>(nv, v0 + 64);
    __mmask16 hits[64];
    uint64_t any = 0;  // bit v − v0: vector v holds a candidate
    for (int64_t v = v0; v < v1; ++v) {
      hits[v - v0] = _mm512_cmp_ps_mask(load16(s, v, full, tail), t, _CMP_GE_OQ);
      any |= static_cast<uint64_t>(hits[v - v0] != 0) << (v - v0);
    }
    for (; any != 0; any &= any - 1) {
      const int64_t v = v0 + __builtin_ctzll(any);
      const __mmask16 hit = hits[v - v0];
      if (n + __builtin_popcount(hit) > maxCand) return -1;
      _mm512_storeu_ps(val + n, _mm512_maskz_compress_ps(hit, load16(s, v, full, tail)));
      _mm512_storeu_si512(idx + n, _mm512_maskz_compress_epi32(
                                       hit, _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(16 * v)))));
      n += __builtin_popcount(hit);
    }
  }
  return n;
}

// rank_top is topk_row16's step (3): out[r] = the index of the candidate
// of rank r < k among the n ≥ k candidates (val, idx: numbers, in index
// order, room for n rounded up to 16; any alignment), a candidate's rank being the number
// ordered before it — a higher score, or an equal one at a lower index —
// so that the ids are topk_scan's, ties included. Up to 16 candidates are
// ranked in one vector against each other (lanes broadcast by permutes, not
// reloaded from memory) and the id of rank r is the one lane whose rank is
// r; up to 128 each against all; more by topk_scan's insertions.
__attribute__((target("avx512f"))) void rank_top(float *val, int32_t *idx, int64_t n, int64_t k, int64_t *out) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (n > 128) {
    float best[32];
    int64_t at[32], held = 0;
    for (int64_t j = 0; j < n; ++j) hl::keep_best(val[j], idx[j], best, at, held, k, better);
    for (int64_t j = 0; j < k; ++j) out[j] = at[j];
    return;
  }
  for (int64_t i = n; i < (n + 15) / 16 * 16; ++i) {  // padding that ranks after every candidate
    val[i] = -inf;
    idx[i] = INT32_MAX;
  }
  const __m512i one = _mm512_set1_epi32(1);
  if (n <= 16) {
    const __m512 V = _mm512_loadu_ps(val);
    const __m512i I = _mm512_loadu_si512(idx);
    __m512i rank = _mm512_setzero_si512();
    for (int i = 0; i < 16; ++i) {
      const __m512i sel = _mm512_set1_epi32(i);
      const __m512 vi = _mm512_maskz_permutexvar_ps(0xFFFF, sel, V);
      const __m512i ii = _mm512_maskz_permutexvar_epi32(0xFFFF, sel, I);
      const __mmask16 before = _mm512_cmp_ps_mask(vi, V, _CMP_GT_OQ) |
                               (_mm512_cmp_ps_mask(vi, V, _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(ii, I));
      rank = _mm512_mask_add_epi32(rank, before, rank, one);
    }
    for (int64_t r = 0; r < k; ++r)
      out[r] = _mm512_cvtsi512_si32(
          _mm512_maskz_compress_epi32(_mm512_cmpeq_epi32_mask(rank, _mm512_set1_epi32(static_cast<int32_t>(r))), I));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const __m512 vi = _mm512_set1_ps(val[i]);
    const __m512i ii = _mm512_set1_epi32(idx[i]);
    int64_t rank = 0;
    for (int64_t j = 0; j < n; j += 16) {
      const __m512 vj = _mm512_loadu_ps(val + j);
      const __mmask16 before = _mm512_cmp_ps_mask(vj, vi, _CMP_GT_OQ) |
                               (_mm512_cmp_ps_mask(vj, vi, _CMP_EQ_OQ) &
                                _mm512_cmplt_epi32_mask(_mm512_loadu_si512(idx + j), ii));
      rank += __builtin_popcount(before);
    }
    if (rank < k) out[rank] = idx[i];
  }
}

// topk_row16 is topk_row for k ≤ 16 with AVX-512, in two passes over the
// row and a ranking without insertions, with no branch that depends on the
// scores but the rare ones of step (2); it returns false, having written
// nothing, where topk_row must take the row. (1) The maxima of the 16
// lanes (scores c ≡ lane mod 16; NaN never wins; four running maxima), and
// T their k-th largest — the largest lane maximum that k lanes reach,
// counted for all lanes at once: k lanes hold a score ≥ T, so every
// selected score is ≥ T (at C = 1,024 about 11 candidates for k = 8,
// Gaussian scores; at C = 10,000 about as many). (2) One bit per vector of
// 16 scores that holds a score ≥ T, then for those vectors only, the
// scores ≥ T and their indices compressed into the candidates. (3) Each
// candidate's rank is the number of candidates ordered before it — a
// higher score, or an equal one at a lower index — so the ids are
// topk_scan's, ties included; up to 16 candidates are ranked in one vector
// against each other (lanes broadcast by permutes, not reloaded from
// memory) and the id of rank r is the one lane whose rank is r. More than
// 64 candidates (many ties) or an infinite T leave the row to topk_row.
// Branches on the scores were what this took its time in: a row of
// C = 1,024 Gaussian scores, k = 8, in L1 (a throwaway harness, 8,192 rows
// in tiles of 12 as the score kernel leaves them, four runs): 420–475 ns a
// row with a branch per lane in (1), per vector in (2) and per candidate in
// (3), 200–220 ns without.
__attribute__((target("avx512f"))) bool topk_row16(const float *s, int64_t C, int64_t k, int64_t *out) {
  constexpr int64_t maxCand = 64;
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (k > 16 || C < 16 || C > (int64_t{1} << 30)) return false;
  const float T = lane_threshold(s, C, k);
  if (!(T > -inf && T < inf)) return false;
  alignas(64) float val[maxCand + 16];
  alignas(64) int32_t idx[maxCand + 16];
  const int64_t n = gather_above(s, C, T, val, idx, maxCand);
  if (n < 0) return false;
  rank_top(val, idx, n, k, out);  // at least k scores are ≥ T: n ≥ k
  return true;
}
#endif

// topk_row is topk_scan over a whole row of C scores, in passes that read
// the row once with vector instructions and touch only a few scores one by
// one. (1) block_maxima. (2) T = the k-th largest block maximum: k blocks
// hold a score ≥ T, so the k-th best score is ≥ T and every selected score
// is ≥ T. (3) Only the blocks whose maximum reaches T (usually exactly k of
// them) and the tail past the last full block can hold such scores: their
// scores ≥ T are the candidates, about k·(1 + small) in a row, and
// topk_scan ranks them. The ids are those of topk_scan over the whole row
// (the same order, ties included); rows of fewer than 16·k scores or more
// than 1,024 blocks (C ≥ 16,400), an infinite T or a pathological number
// of candidates (many ties) take the plain scan. For k ≤ 16 on a CPU with
// AVX-512 topk_row16 takes the row first, then for k ≤ 8 with AVX2
// topk_row8 (at the paper's C = 10,000 about 22 candidates of 10,000
// scores, Gaussian scores). In cache, k = 8 of C = 1,024 (Gaussian; the
// best of three passes over 64 rows, three runs): the plain scan 0.82–0.95
// µs a row, topk_row8 199–236 ns, topk_row16 98–108 ns (the same rows
// again and again: the branch predictor learnt them; see topk_row16 for
// fresh rows).
inline void topk_row(const float *s, int64_t C, int64_t k, int64_t *out) {
  constexpr int64_t B = 16, maxBlocks = 1024, maxCand = 512;
  constexpr float inf = std::numeric_limits<float>::infinity();
#if HL_TOPK_AVX2
  static const bool avx512 = hl::simd_avx512(), avx2 = hl::simd_avx2();
  if (k <= 16 && avx512 && topk_row16(s, C, k, out)) return;
  if (k <= 8 && avx2 && topk_row8(s, C, k, out)) return;
#endif
  const int64_t nb = C / B;
  if (k <= 32 && nb >= k && nb <= maxBlocks) {
    alignas(16) float bmax[maxBlocks];
    block_maxima(s, nb, bmax);
    // T: the k-th largest block maximum, by insertion into the k best held
    // in descending order.
    float top[32];
    std::fill(top, top + 32, -inf);
    for (int64_t b = 0; b < nb; ++b) {
      const float v = bmax[b];
      if (!(v > top[k - 1])) continue;
      int64_t p = k - 1;
      for (; p > 0 && v > top[p - 1]; --p) top[p] = top[p - 1];
      top[p] = v;
    }
    const float T = top[k - 1];
    if (T > -inf && T < inf) {
      int64_t cand[maxCand];
      const int64_t n = gather_candidates(s, C, bmax, nb, T, cand, maxCand);
      if (n >= 0) {
        topk_scan(s, cand, n, k, out);
        return;
      }
    }
  }
  topk_scan(s, nullptr, C, k, out);
}

// The screen. On CPUs with AVX512_BF16 the own path below does not compute
// every score exactly: it scores a block's rows against all codes with both
// rounded to bfloat16 (approx_scores: twice the multiply-adds an instruction
// of the float32 kernel, 1.9x its speed at d = 256 and 1.6x at d = 64,
// measured), and computes exactly — the float32 kernel's FMA chain, the same
// bits — only the scores of the codes that can be among the k best. The
// ids are those of topk_row over the exact scores, proved as follows.
//
// Bound. For a row a, a code ĉ and the exact score s (the FMA chain), the
// approximate score s̃ satisfies |s̃ − s| ≤ E with
//   E = (2u + u² + 8d·2⁻²⁴)·‖a‖·ĉmax + 4d·(1 + ‖a‖ + ĉmax)·2⁻¹²⁶,
// u = 2⁻⁸ (bfloat16's unit roundoff), ĉmax ≥ ‖ĉ‖ for every code:
// rounding a and ĉ to bfloat16 moves each product a_i·ĉ_i by at most
// (2u + u²)·|a_i·ĉ_i| (plus 2⁻¹²⁶ terms for the values flushed to zero),
// and Σ|a_i·ĉ_i| ≤ ‖a‖·‖ĉ‖ (Cauchy–Schwarz); the products of two bfloat16
// are exact in float32, and summing d terms in float32 in any order, one
// rounding an addition, errs by at most γ_d = d·2⁻²⁴/(1 − d·2⁻²⁴) times
// the sum of their magnitudes — for s̃'s sum and again for s's chain; the
// 8d·2⁻²⁴ allows each twice that. ‖a‖ comes from Σa² summed in float32,
// raised by (d + 16)·2⁻²³ of itself; ĉmax = 1 + 4(d + 8)·2⁻²⁴ bounds the
// norm of a code divided by its float32 norm (normalised). Rows whose Σa²
// exceeds 10³⁶ or is not finite (bfloat16 would overflow), and calls whose
// codes are not all finite, are scored exactly.
//
// Selection. Let T̃ be the k-th largest s̃ of the row. The k codes that
// reach it have s ≥ T̃ − E, so the k-th best exact score is ≥ T̃ − E; a code
// with s̃ < T̃ − 2E has s < T̃ − E: below it. The candidates — the codes with
// s̃ ≥ T̃ − 2E (the threshold computed in double, rounded down to a float),
// in order of index — therefore hold every code of the exact top k and
// every code that ties with its k-th, and ranking their exact scores
// (rank_top: topk_scan's order) gives topk_row's ids over the whole row,
// order and ties included. (Any T ≤ T̃ that k codes reach would do as
// well, with more candidates.) The tests: torch's TestCodebookTopKOfScores
// and TestCodebookScreen (codes closer together than bfloat16 resolves,
// exact copies, rows of norm 10⁻³⁰ to 10¹⁹) against the exact scores; with
// E = 0 both fail.
//
// Cost: in the benchmark GPT (C = 1,024, k = 8, LayerNorm'd rows, codes at
// initialisation) 2E is about an eighth of the scores' spread at d = 64 and
// a quarter at d = 256; the exact chains are d multiply-adds each, 16
// candidates at a time.
//
// screen_margin is E for a row whose Σa² float32 gave as nsq, or +∞ where
// the row must be scored exactly.
inline double screen_margin(float nsq, int64_t d) {
  const double dd = static_cast<double>(d), u = 0x1p-8, ulp = 0x1p-24, flush = 0x1p-126;
  if (!(nsq <= 1e36f)) return std::numeric_limits<double>::infinity();
  const double na = std::sqrt(nsq * (1 + (dd + 16) * 2 * ulp) + dd * 0x1p-120);
  const double cmax = 1 + 4 * (dd + 8) * ulp;
  return ((2 * u + u * u + 8 * dd * ulp) * na * cmax + 4 * dd * (1 + na + cmax) * flush) * (1 + 0x1p-20);
}

// float_below is the largest float ≤ x.
inline float float_below(double x) {
  const float f = static_cast<float>(x);
  return static_cast<double>(f) > x ? std::nextafter(f, -std::numeric_limits<float>::infinity()) : f;
}

// screened_topk writes the ids topk_row would pick from the exact scores
// of the row a [d] against a group's normalised codes [C, d] to out, given
// the row's approximate scores sa [C] and Σa² (nsq), as the screen above
// says; val and idx are the caller's scratch (room for C + 16). For k ≤
// 16 the candidates are gathered first from topk_row16's lower bound for
// the k-th largest approximate score, the k-th largest lane maximum (k
// codes reach it, which is all the argument needs: one pass over the row
// instead of a selection), then kept from the k-th largest itself.
void screened_topk(const float *sa, int64_t C, int64_t k, float nsq, const float *a, int64_t d,
                   const float *codes, float *val, int32_t *idx, int64_t *out) {
  const double E = screen_margin(nsq, d);
  if (!(E < std::numeric_limits<double>::infinity())) {  // every code exactly
    for (int64_t c = 0; c < C; ++c) idx[c] = static_cast<int32_t>(c);
    hl::exact_scores(a, d, codes, idx, C, val);
    topk_scan(val, nullptr, C, k, out);
    return;
  }
  float T;
  if (k <= 16 && C >= 16) {
    T = lane_threshold(sa, C, k);
  } else {
    int64_t top[32];
    topk_row(sa, C, k, top);
    T = sa[top[k - 1]];
  }
  int64_t n = gather_above(sa, C, float_below(T - 2 * E), val, idx, C);
  if (k <= 16 && C >= 16) {
    // Every code whose approximate score reaches the lane bound is a
    // candidate, so the k-th largest approximate score itself is the k-th
    // largest candidate's: the tighter threshold keeps fewer to score
    // exactly (at d = 256 in the benchmark GPT 15.8 a row instead of 20.3,
    // a second chain of 16 in 38% of the rows instead of most).
    const float L = float_below(kth_largest(val, n, k) - 2 * E);
    int64_t kept = 0;
    for (int64_t j = 0; j < n; ++j)
      if (val[j] >= L) idx[kept++] = idx[j];
    n = kept;
  }
  hl::exact_scores(a, d, codes, idx, n, val);
  rank_top(val, idx, n, k, out);
}

// select_ids is the reference Select: cosine scores of a [N, G, d] against the
// normalised codes, top-k per group, in blocks of chunk tokens: [N, G, k].
// On the CPU in float32 with k ≤ 32 each thread's blocks' scores go into one
// buffer of its own and topk_row picks the ids straight into the output;
// elsewhere at::topk per block (the reference's ops).
// normalised is the codes divided by their norms, [G, C, d]: what the scores
// are taken against, by select_ids and hl_codebook_scores alike.
at::Tensor normalised(const at::Tensor &codes) { return codes.div(codes.norm(2, {-1}, true).clamp_min(1e-12)); }

at::Tensor select_ids(const at::Tensor &a, const at::Tensor &codes, int64_t k, int64_t chunk) {
  const int64_t N = a.size(0), G = codes.size(0), C = codes.size(1), d = codes.size(2);
  const bool loops = a.device().is_cpu() && a.scalar_type() == at::kFloat && k <= 32, own = loops && hl::own_product(a);
  const int64_t fit = own ? own_chunk(C) : auto_chunk(G, C);
  chunk = chunk > 0 ? std::min(chunk, fit) : fit;
  auto norm = normalised(codes);        // [G, C, d]
  auto normT = norm.transpose(1, 2);    // [G, d, C]
  auto at = a.transpose(0, 1);          // [G, N, d]
  if (loops) {
    // Threads take whole blocks, score each into a buffer of their own and
    // pick its ids while the scores are in their cache. On AVX-512 CPUs the
    // scores come from scores.cc's kernel (each one FMA chain; see the
    // differences above); elsewhere a block is one batched GEMM of all
    // groups on one core (BLAS does not split a GEMM inside a parallel
    // region).
    auto ids = at::empty({N, G, k}, a.options().dtype(at::kLong));
    int64_t *ip = ids.data_ptr<int64_t>();
    const int64_t blocks = (N + chunk - 1) / chunk;
    const at::Tensor ac = own ? a.contiguous() : a;
    bool finite = false;
    const at::Tensor packed16 = own && hl::simd_avx512bf16() ? hl::pack_codes_bf16(norm, finite) : at::Tensor();
    if (finite) {
      // The screen: blocks of tokens as below, each row's ids from its
      // approximate scores and its candidates' exact ones.
      const at::Tensor nc = norm.contiguous();
      const int64_t dp = (d + 1) / 2 * 2, P = (C + 31) / 32;
      const float *ap = ac.data_ptr<float>(), *np = nc.data_ptr<float>();
      const uint16_t *pp = reinterpret_cast<const uint16_t *>(packed16.data_ptr<int16_t>());
      at::parallel_for(0, G * blocks, 1, [&](int64_t i0, int64_t i1) {
        std::vector<float> buf(static_cast<size_t>(chunk * C)), val(static_cast<size_t>(C + 16)),
            nsq(static_cast<size_t>(chunk));
        std::vector<uint16_t> abf(static_cast<size_t>(chunk * dp + 16));
        std::vector<int32_t> idx(static_cast<size_t>(C + 16));
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t g = i / blocks, start = i % blocks * chunk, n = std::min(chunk, N - start);
          for (int64_t t = 0; t < n; ++t) nsq[t] = hl::bf16_row(ap + ((start + t) * G + g) * d, d, abf.data() + t * dp);
          hl::approx_scores(abf.data(), n, dp, pp + g * P * dp * 32, C, buf.data());
          for (int64_t t = 0; t < n; ++t)
            screened_topk(buf.data() + t * C, C, k, nsq[t], ap + ((start + t) * G + g) * d, d, np + g * C * d,
                          val.data(), idx.data(), ip + ((start + t) * G + g) * k);
        }
      });
      return ids;
    }
    if (own) {
      // One group's block of tokens at a time, group by group (a thread's
      // range of blocks mostly in one group: that group's codes stay in its
      // L2 from one block to the next).
      const at::Tensor packed = hl::pack_codes32(norm);
      const float *ap = ac.data_ptr<float>(), *pp = packed.data_ptr<float>();
      at::parallel_for(0, G * blocks, 1, [&](int64_t i0, int64_t i1) {
        std::vector<float> slab, buf(static_cast<size_t>(chunk * C));
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t g = i / blocks, start = i % blocks * chunk, n = std::min(chunk, N - start);
          hl::scores_group(ap + start * G * d, n, G, g, d, pp, C, buf.data(), slab);
          for (int64_t t = 0; t < n; ++t) topk_row(buf.data() + t * C, C, k, ip + ((start + t) * G + g) * k);
        }
      });
      return ids;
    }
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      auto buf = at::empty({G, std::min(chunk, N), C}, a.options());
      for (int64_t blk = b0; blk < b1; ++blk) {
        const int64_t start = blk * chunk, n = std::min(chunk, N - start);
        auto scores = n == buf.size(1) ? buf : at::empty({G, n, C}, a.options());  // [G, n, C]
        at::bmm_out(scores, at.narrow(1, start, n), normT);  // all groups in one batched GEMM
        const float *sp = scores.data_ptr<float>();
        for (int64_t g = 0; g < G; ++g)
          for (int64_t t = 0; t < n; ++t) topk_row(sp + (g * n + t) * C, C, k, ip + ((start + t) * G + g) * k);
      }
    });
    return ids;
  }
  std::vector<at::Tensor> parts;
  parts.reserve(static_cast<size_t>((N + chunk - 1) / chunk));
  for (int64_t start = 0; start < N; start += chunk) {
    const int64_t n = std::min(chunk, N - start);
    auto scores = at::bmm(at.narrow(1, start, n), normT);  // [G, n, C]: all groups in one batched GEMM
    parts.push_back(std::get<1>(scores.topk(k, -1)));
  }
  return at::cat(parts, 1).transpose(0, 1).contiguous();
}

// Over is division by k as the loops do it: by a multiplication with 1/k
// where k is a power of two (exact: 1/k is then exact, and x·(1/k) and x/k
// are the same correctly rounded number, bit for bit), by a division
// otherwise. The division (a vector divide takes several times a
// multiply's time) was a third of the backward's scatter at k = 8.
struct Over {
  float k, inv;
  bool exact;
  explicit Over(int64_t k_)
      : k(static_cast<float>(k_)), inv(1.0f / static_cast<float>(k_)), exact((k_ & (k_ - 1)) == 0) {}
};

// Lookup is the forward after selection: q [N, G, d], the mean of the
// selected raw codes (ids < 0, blocked slots, add nothing but count in the
// divisor, as in the reference), diff = q − a and sq [N, G] = ‖q − a‖² per
// row, the reconstruction loss before its means. On the CPU in float32 one
// pass over the rows computes all three.
struct Lookup {
  at::Tensor q, diff, sq;
};

// LookupArgs is one call of lookup's loops: codes [G·C, d], a, q and diff
// [N·G, d], ids [N·G, k], sq [N·G].
struct LookupArgs {
  int64_t G, C, d, k;
  Over over;
  const float *codes, *a;
  const int64_t *ids;
  float *q, *diff, *sq;
};

// lookup_rows computes rows [b, e) of q, diff and sq: the selected codes
// added in order of selection, then divided by k; ‖q − a‖² in 16 partial
// sums (lane l takes the elements i ≡ l mod 16 in order of i) added in
// order of lane at the end. The row goes by blocks of 16 elements, each
// block's sum of codes held in registers while the k codes are added (a
// whole row's sum in memory waited on its own stores: a third of the
// lookup's time at d = 64, and the one chain ‖q − a‖² was summed in
// before, another third).
typedef float V16 __attribute__((vector_size(64)));  // (GCC's vector extension: any target)

__attribute__((always_inline)) inline void lookup_rows(const LookupArgs &p, int64_t b, int64_t e) {
  const int64_t d = p.d;
  for (int64_t r = b; r < e; ++r) {
    const int64_t *ids = p.ids + r * p.k;
    const float *__restrict codes = p.codes + r % p.G * p.C * d;
    float *__restrict o = p.q + r * d;
    float *__restrict df = p.diff + r * d;
    const float *__restrict x = p.a + r * d;
    float part[16] = {};
    for (int64_t i0 = 0; i0 < d; i0 += 16) {
      const int64_t w = std::min<int64_t>(16, d - i0);
      if (w == 16) {  // the loops below, elementwise the same, on one vector of 16
        V16 acc = {}, v;
        for (int64_t j = 0; j < p.k; ++j) {
          if (ids[j] < 0 || ids[j] >= p.C) continue;
          std::memcpy(&v, codes + ids[j] * d + i0, sizeof v);
          acc += v;
        }
        acc = p.over.exact ? acc * p.over.inv : acc / p.over.k;
        std::memcpy(o + i0, &acc, sizeof acc);
        std::memcpy(&v, x + i0, sizeof v);
        v = acc - v;
        std::memcpy(df + i0, &v, sizeof v);
        V16 sum;
        std::memcpy(&sum, part, sizeof sum);
        sum += v * v;
        std::memcpy(part, &sum, sizeof sum);
        continue;
      }
      float acc[16] = {};
      for (int64_t j = 0; j < p.k; ++j) {
        if (ids[j] < 0 || ids[j] >= p.C) continue;
        const float *__restrict c = codes + ids[j] * d + i0;
        for (int64_t l = 0; l < w; ++l) acc[l] += c[l];
      }
      for (int64_t l = 0; l < w; ++l) acc[l] = p.over.exact ? acc[l] * p.over.inv : acc[l] / p.over.k;
      for (int64_t l = 0; l < w; ++l) {
        o[i0 + l] = acc[l];
        df[i0 + l] = acc[l] - x[i0 + l];
        part[l] += df[i0 + l] * df[i0 + l];
      }
    }
    float s2 = 0;
    for (const float v : part) s2 += v;
    p.sq[r] = s2;
  }
}

// lookup_rows_avx512 is lookup_rows compiled for AVX-512, without fused
// multiply-adds (the same bits at every level).
#if defined(__x86_64__) && defined(__GNUC__)
#define HL_LOOKUP_AVX512 1
__attribute__((target("avx512f"), optimize("fp-contract=off"))) void lookup_rows_avx512(const LookupArgs &p, int64_t b,
                                                                                        int64_t e) {
  lookup_rows(p, b, e);
}
#endif

Lookup lookup(const at::Tensor &codes, const at::Tensor &ids, const at::Tensor &a, int64_t k) {
  const int64_t G = codes.size(0), C = codes.size(1), d = codes.size(2), N = ids.size(0);
  if (codes.device().is_cpu() && codes.scalar_type() == at::kFloat) {
    auto cc = codes.contiguous(), ac = a.contiguous();
    auto q = at::empty({N, G, d}, cc.options()), diff = at::empty({N, G, d}, cc.options());
    auto sq = at::empty({N, G}, cc.options());
    const float *cp = cc.data_ptr<float>(), *ap = ac.data_ptr<float>();
    const int64_t *ip = ids.data_ptr<int64_t>();
    float *qp = q.data_ptr<float>(), *dp = diff.data_ptr<float>(), *sp = sq.data_ptr<float>();
    const LookupArgs args{G, C, d, k, Over(k), cp, ap, ip, qp, dp, sp};
    at::parallel_for(0, N * G, 64, [&](int64_t b, int64_t e) {
#if HL_LOOKUP_AVX512
      if (hl::simd_avx512()) return lookup_rows_avx512(args, b, e);
#endif
      lookup_rows(args, b, e);
    });
    return {q, diff, sq};
  }
  // Other devices and dtypes: the reference's lookup, a zero row for blocked ids.
  auto table = at::cat({codes.reshape({G * C, d}), at::zeros({1, d}, codes.options())}, 0);
  auto offset = at::arange(0, G * C, C, ids.options()).view({1, G, 1});
  auto flat = (ids + offset).masked_fill(ids.lt(0), G * C).reshape(-1);
  auto q = at::embedding(table, flat).view({N, G, k, d}).sum(2).div(static_cast<double>(k));
  auto diff = q - a;
  return {q, diff, diff.square().sum(-1)};
}

// ScatterArgs is one call of scatter_codes' loops: gout and diff [N, G, d]
// (either may be null), the selections of each code row (code row r's are
// sel[start[r] .. start[r+1]), by the selecting token-group row n·G + g, in
// order of selection), grad [G·C, d].
struct ScatterArgs {
  const float *gout, *diff;
  float c;
  Over over;
  const int64_t *start;
  const int32_t *sel;
  int64_t d;
  float *grad;
};

// term is elements [i, i + W) of the row (gout + c·diff) / k of token-group
// row ng (a missing gout or diff adds nothing), with the reference's
// float operations in its order: c·diff, + gout, / k (Over).
template <typename T, int W>
__attribute__((always_inline)) inline T term(const ScatterArgs &a, int64_t ng, int64_t i) {
  T g{}, x{}, r;
  if (a.gout) std::memcpy(&g, a.gout + ng * a.d + i, sizeof(float) * W);
  if (a.diff) std::memcpy(&x, a.diff + ng * a.d + i, sizeof(float) * W);
  if (a.gout && a.diff)
    r = g + a.c * x;
  else if (a.gout)
    r = g;
  else
    r = a.c * x;
  return a.over.exact ? r * a.over.inv : r / a.over.k;
}

// scatter_chunk writes elements [i0, i0 + 16·NV) of one code row o: the
// sum of its selections' rows (first … last), added in order of selection
// from zero, held in NV vectors while the rows go by (each selection's
// piece of row read whole: row after row, not vector after vector).
template <int NV>
__attribute__((always_inline)) inline void scatter_chunk(const ScatterArgs &a, const int32_t *first,
                                                         const int32_t *last, int64_t i0, float *o) {
  V16 acc[NV] = {};
  for (const int32_t *p = first; p != last; ++p)
    for (int v = 0; v < NV; ++v) acc[v] += term<V16, 16>(a, *p, i0 + 16 * v);
  std::memcpy(o + i0, acc, sizeof acc);
}

// scatter_rows writes code rows [b, e) of the gradient, by chunks of up to
// 128 elements (scatter_chunk) and the elements past the last 16 one at a
// time; the reference's embedding backward adds the same rows in the same
// order into a zeroed gradient: the same bits.
__attribute__((always_inline)) inline void scatter_rows(const ScatterArgs &a, int64_t b, int64_t e) {
  const int64_t d = a.d, full = d / 16 * 16;
  for (int64_t row = b; row < e; ++row) {
    const int32_t *first = a.sel + a.start[row], *last = a.sel + a.start[row + 1];
    if (first == last) continue;  // the zeros grad starts with
    float *o = a.grad + row * d;
    int64_t i0 = 0;
    for (; i0 + 128 <= full; i0 += 128) scatter_chunk<8>(a, first, last, i0, o);
    switch ((full - i0) / 16) {
      case 7: scatter_chunk<7>(a, first, last, i0, o); break;
      case 6: scatter_chunk<6>(a, first, last, i0, o); break;
      case 5: scatter_chunk<5>(a, first, last, i0, o); break;
      case 4: scatter_chunk<4>(a, first, last, i0, o); break;
      case 3: scatter_chunk<3>(a, first, last, i0, o); break;
      case 2: scatter_chunk<2>(a, first, last, i0, o); break;
      case 1: scatter_chunk<1>(a, first, last, i0, o); break;
      default: break;
    }
    for (int64_t i = full; i < d; ++i) {
      float acc = 0;
      for (const int32_t *p = first; p != last; ++p) acc += term<float, 1>(a, *p, i);
      o[i] = acc;
    }
  }
}

// scatter_rows_avx512 is scatter_rows compiled for AVX-512, without fusing
// a multiply and an add into one rounding (the reference rounds c·diff,
// then the sum: the same bits at every level).
#if defined(__x86_64__) && defined(__GNUC__)
#define HL_SCATTER_AVX512 1
__attribute__((target("avx512f"), optimize("fp-contract=off"))) void scatter_rows_avx512(const ScatterArgs &a,
                                                                                         int64_t b, int64_t e) {
  scatter_rows(a, b, e);
}
#endif

// scatter_codes is the codes' gradient [G, C, d]: every token's row
// r[n, g] = (gout[n, g] + c·diff[n, g]) / k (a missing gout or diff adds
// nothing) is added to the rows of the codes it selected,
// grad[g, ids[n, g, j]] += r[n, g] for every j. The reference forms r with
// the same float operations in the same order (c·diff, + gout, / k) as whole
// tensors; here each is formed where it is added. The selections are first
// listed by code row (a counting sort, in order of selection within a row),
// then threads take ranges of code rows and sum each row's list: a fixed
// order, and a thread reads only its own rows' selections (each thread
// read every id before, and most tokens' rows: the backward took as long
// on two threads as on one).
at::Tensor scatter_codes(const at::Tensor &gout, const at::Tensor &diff, float c, const at::Tensor &ids, int64_t G,
                         int64_t C) {
  const at::Tensor &like = gout.defined() ? gout : diff;
  const int64_t N = like.size(0), d = like.size(2), k = ids.size(2);
  if (like.device().is_cpu() && like.scalar_type() == at::kFloat && N * G <= INT32_MAX) {
    at::Tensor go = gout.defined() ? gout.contiguous() : at::Tensor(), df = diff.defined() ? diff.contiguous() : at::Tensor();
    auto grad = at::zeros({G, C, d}, like.options());
    const int64_t *ip = ids.data_ptr<int64_t>();
    const int64_t rows = G * C;
    std::vector<int64_t> start(static_cast<size_t>(rows + 1));
    for (int64_t ng = 0; ng < N * G; ++ng)
      for (int64_t j = 0, base = ng % G * C; j < k; ++j) {
        const int64_t id = ip[ng * k + j];
        if (id >= 0 && id < C) ++start[base + id + 1];
      }
    for (int64_t r = 0; r < rows; ++r) start[r + 1] += start[r];
    std::vector<int32_t> sel(static_cast<size_t>(start[rows]));
    {
      std::vector<int64_t> next(start.begin(), start.end() - 1);
      for (int64_t ng = 0; ng < N * G; ++ng)
        for (int64_t j = 0, base = ng % G * C; j < k; ++j) {
          const int64_t id = ip[ng * k + j];
          if (id >= 0 && id < C) sel[next[base + id]++] = static_cast<int32_t>(ng);
        }
    }
    const ScatterArgs args{go.defined() ? go.data_ptr<float>() : nullptr,
                           df.defined() ? df.data_ptr<float>() : nullptr,
                           c,
                           Over(k),
                           start.data(),
                           sel.data(),
                           d,
                           grad.data_ptr<float>()};
    at::parallel_for(0, rows, 64, [&](int64_t b, int64_t e) {
#if HL_SCATTER_AVX512
      if (hl::simd_avx512()) return scatter_rows_avx512(args, b, e);
#endif
      scatter_rows(args, b, e);
    });
    return grad;
  }
  at::Tensor r;
  if (diff.defined()) r = diff.mul(c);
  if (gout.defined()) r = r.defined() ? gout + r : gout;
  r = r.div(static_cast<double>(k));
  auto offset = at::arange(0, G * C, C, ids.options()).view({1, G, 1});
  auto keep = ids.ge(0).reshape(-1);
  auto flat = (ids + offset).reshape(-1).index({keep});
  auto src = r.unsqueeze(2).expand({N, G, k, d}).reshape({-1, d}).index({keep});
  return at::zeros({G * C, d}, r.options()).index_add_(0, flat, src).view({G, C, d});
}

struct Quantize : public torch::autograd::Function<Quantize> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &a, const at::Tensor &codes, int64_t k,
                               int64_t chunk) {
    RECORD_USER_SCOPE("hl::codebook_quantize");
    const int64_t G = codes.size(0), C = codes.size(1);
    auto ad = a.detach();
    auto ids = select_ids(ad, codes.detach(), k, chunk);
    auto lk = lookup(codes.detach(), ids, ad, k);
    auto q = lk.q, diff = lk.diff;
    auto mse = lk.sq.mean(0).sum();
    ctx->save_for_backward({ids});
    ctx->saved_data["diff"] = diff;
    ctx->saved_data["G"] = G;
    ctx->saved_data["C"] = C;
    ctx->mark_non_differentiable({ids});
    return {q, ids, mse};
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::codebook_quantize_backward");
    auto ids = ctx->get_saved_variables()[0];
    auto diff = ctx->saved_data["diff"].toTensor();
    const int64_t G = ctx->saved_data["G"].toInt(), C = ctx->saved_data["C"].toInt();
    const at::Tensor &gout = grads[0], &gmse = grads[2];
    const int64_t N = diff.size(0);
    // ∂L/∂q = ∂L/∂out + ∂L/∂mse·2(q − a)/N, as the reference's graph sums it
    // (c = ∂L/∂mse/N·2, formed as its graph forms it).
    at::Tensor gcodes;
    if (gout.defined() || gmse.defined()) {
      const float c = gmse.defined() ? gmse.div(static_cast<double>(N)).mul(2).item<float>() : 0.0f;
      gcodes = scatter_codes(gout, gmse.defined() ? diff : at::Tensor(), c, ids, G, C);
    }
    return {gout, gcodes, at::Tensor(), at::Tensor()};  // straight through to a
  }
};

}  // namespace

// check_codebook_args rejects what neither codebook entry point can take.
static void check_codebook_args(const char *op, const at::Tensor &x, const at::Tensor &c) {
  if (x.dim() != 3 || c.dim() != 3 || x.size(1) != c.size(0) || x.size(2) != c.size(2))
    throw hl::Error(HL_ERR_SHAPE, std::string(op) + ": need a [N, G, d] and codes [G, C, d]");
  if (x.scalar_type() != c.scalar_type())
    throw hl::Error(HL_ERR_DTYPE, std::string(op) + ": a and codes differ in dtype");
}

hl_status hl_codebook_scores(hl_tensor a, hl_tensor codes, hl_tensor *out) {
  HL_TRY({
    const auto x = hl::T(a).detach();
    const auto c = hl::T(codes).detach();
    check_codebook_args("codebook_scores", x, c);
    at::NoGradGuard no_grad;
    auto norm = normalised(c);
    const int64_t N = x.size(0), G = c.size(0), C = c.size(1), d = c.size(2);
    if (hl::own_product(x)) {
      auto xc = x.contiguous();
      auto s = at::empty({G, N, C}, x.options());
      auto packed = hl::pack_codes32(norm);
      hl::scores_block(xc.data_ptr<float>(), N, G, d, packed.data_ptr<float>(), C, s.data_ptr<float>());
      hl::put(out, s.transpose(0, 1).contiguous());
    } else {
      hl::put(out, at::bmm(x.transpose(0, 1), norm.transpose(1, 2)).transpose(0, 1).contiguous());
    }
  })
}

hl_status hl_codebook_quantize(hl_tensor a, hl_tensor codes, int64_t k, int64_t chunk, hl_tensor *out,
                               hl_tensor *ids, hl_tensor *mse) {
  HL_TRY({
    const auto &x = hl::T(a);
    const auto &c = hl::T(codes);
    check_codebook_args("codebook_quantize", x, c);
    if (k < 1 || k > c.size(1)) throw hl::Error(HL_ERR_VALUE, "codebook_quantize: need 1 <= k <= C");
    auto r = Quantize::apply(x, c, k, chunk);
    hl::put(out, r[0]);
    hl::put(ids, r[1]);
    hl::put(mse, r[2]);
  })
}

hl_status hl_codebook_count(hl_tensor ids, hl_tensor counts) {
  HL_TRY({
    const at::Tensor I = hl::T(ids);
    at::Tensor Cn = hl::T(counts);
    if (I.dim() != 3 || Cn.dim() != 2 || I.size(1) != Cn.size(0))
      throw hl::Error(HL_ERR_SHAPE, "codebook_count: need ids [N, G, k] and counts [G, C]");
    if (I.scalar_type() != at::kLong || Cn.scalar_type() != at::kLong)
      throw hl::Error(HL_ERR_DTYPE, "codebook_count: ids and counts must be int64");
    at::NoGradGuard no_grad;
    const int64_t G = Cn.size(0), C = Cn.size(1), GC = G * C;
    if (I.device().is_cpu() && Cn.device().is_cpu() && Cn.is_contiguous()) {
      // One pass marking the codes seen, one adding the marks.
      const auto ic = I.contiguous();
      const int64_t *ip = ic.data_ptr<int64_t>(), rows = I.size(0) * G, k = I.size(2);
      std::vector<uint8_t> seen(static_cast<size_t>(GC));
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t g = r % G;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t id = ip[r * k + j];
          if (id >= 0 && id < C) seen[g * C + id] = 1;
        }
      }
      int64_t *cp = Cn.data_ptr<int64_t>();
      for (int64_t i = 0; i < GC; ++i) cp[i] += seen[i];
    } else {
      // Elsewhere the same from tensor ops: blocked slots (and ids past C)
      // go to an extra slot GC, dropped; writing 1 without accumulation
      // marks an id listed many times once.
      auto offset = at::arange(0, GC, C, I.options()).view({1, G, 1});
      auto flat = (I + offset).masked_fill(I.lt(0).logical_or(I.ge(C)), GC).reshape(-1);
      auto seen = at::zeros({GC + 1}, Cn.options()).index_put_({flat}, at::ones({1}, Cn.options()));
      Cn.add_(seen.narrow(0, 0, GC).view({G, C}));
    }
  })
}
