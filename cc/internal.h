// internal.h: what every translation unit of the shim shares: the handle and
// error types, the HL_TRY macro, and conversions between the C ABI and ATen.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "hlshim.h"

#define HL_TORCH_GE(M, m) \
  (TORCH_VERSION_MAJOR > (M) || (TORCH_VERSION_MAJOR == (M) && TORCH_VERSION_MINOR >= (m)))

namespace hl {

extern std::atomic<int64_t> live_tensors;

}  // namespace hl

// A handle owns one reference to an ATen tensor.
struct hl_tensor_s {
  at::Tensor t;
  explicit hl_tensor_s(at::Tensor x) : t(std::move(x)) { hl::live_tensors.fetch_add(1, std::memory_order_relaxed); }
  ~hl_tensor_s() { hl::live_tensors.fetch_sub(1, std::memory_order_relaxed); }
  hl_tensor_s(const hl_tensor_s &) = delete;
  hl_tensor_s &operator=(const hl_tensor_s &) = delete;
};

struct hl_error_s {
  int32_t kind;
  std::string message;
};

namespace hl {

// Error is thrown by the shim's own argument checks with an explicit kind.
struct Error : std::exception {
  int32_t kind;
  std::string message;
  Error(int32_t k, std::string m) : kind(k), message(std::move(m)) {}
  const char *what() const noexcept override { return message.c_str(); }
};

hl_status make_status(int32_t kind, const char *message) noexcept;
bool is_static_status(hl_status s) noexcept;
// Classifies a libtorch error: by subclass where libtorch says, else by message
// (some libtorch checks throw plain std::runtime_error).
int32_t classify(const c10::Error &e) noexcept;
int32_t classify_message(const char *message) noexcept;

inline const at::Tensor &T(hl_tensor h) {
  if (h == nullptr) throw Error(HL_ERR_VALUE, "null tensor handle");
  return h->t;
}
// Optional tensor argument: NULL means absent.
inline c10::optional<at::Tensor> opt(hl_tensor h) {
  if (h == nullptr) return c10::nullopt;
  return h->t;
}
inline hl_tensor wrap(at::Tensor t) { return new hl_tensor_s(std::move(t)); }
inline void put(hl_tensor *out, at::Tensor t) {
  if (out == nullptr) throw Error(HL_ERR_VALUE, "null output pointer");
  *out = wrap(std::move(t));
}

inline at::IntArrayRef dims(const int64_t *p, int32_t n) {
  if (n < 0) throw Error(HL_ERR_VALUE, "negative rank");
  return at::IntArrayRef(p, static_cast<size_t>(n));
}
std::vector<at::Tensor> tensors(const hl_tensor *ts, int32_t n);

// copy_string writes s into buf as a NUL-terminated string truncated to cap
// bytes (nothing when buf is NULL or cap <= 0) and returns s's full length:
// the contract of the ABI's string results (hl_build_info, …).
inline int64_t copy_string(const std::string &s, char *buf, int64_t cap) {
  if (buf != nullptr && cap > 0) {
    const size_t n = std::min(static_cast<size_t>(cap - 1), s.size());
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return static_cast<int64_t>(s.size());
}

at::ScalarType scalar_type(int32_t dtype);
int32_t dtype_code(at::ScalarType st) noexcept;
at::Device device(int32_t type, int32_t index);
at::TensorOptions options(const hl_options &o);

// The instruction sets the shim's own kernels may use: what the CPU has
// (__builtin_cpu_supports, which also asks whether the OS saves the
// registers), capped by HIDDENLAB_SIMD, read once: "generic" (portable code
// only), "avx2" (AVX2 with FMA, no AVX-512), "avx512f" (AVX-512 without its
// BF16 instructions) or "avx512" (the default). libtorch's and the BLAS's
// own kernels are not affected.
bool simd_avx2();
bool simd_avx512();
bool simd_avx512bf16();

// The codebook op's scores on AVX-512 CPUs (scores.cc). own_product reports
// whether the shim's own kernels (these and gemm below) take x's products:
// float32 on a CPU, simd_avx512().
// pack_codes32 rearranges the
// normalised codes [G, C, d] (float) into its panels [G, ⌈C/32⌉, d, 32];
// scores_block writes s[g, t, c] = Σ_k a[t, g, k]·ĉ[g, c, k] for the n tokens
// of a (contiguous [n, G, d]) into s ([G, n, C]).
bool own_product(const at::Tensor &x);
at::Tensor pack_codes32(const at::Tensor &norm);
void scores_block(const float *a, int64_t n, int64_t G, int64_t d, const float *packed, int64_t C, float *s);
// scores_group is scores_block's for group g alone, into s [n, C]; slab is
// the caller's buffer for the group's rows (kept between calls).
void scores_group(const float *a, int64_t n, int64_t G, int64_t g, int64_t d, const float *packed, int64_t C,
                  float *s, std::vector<float> &slab);
// exact_scores writes out[j] for j < n: the score of code cand[j] (codes:
// a group's rows [C, d]) for the row a [d] as scores_rows sums it, one FMA
// chain over k from zero (the same bits), reading the code rows where they
// lie.
void exact_scores(const float *a, int64_t d, const float *codes, const int32_t *cand, int64_t n, float *out);
// The codebook op's screen (codebook.cc), on CPUs with AVX512_BF16:
// bf16_row rounds a row of d floats to bfloat16 (to nearest, even; values
// below 2⁻¹²⁶ to zero) into dst (room for ⌈d/16⌉·16 values: the ones past d
// are zeros) and returns Σ a² as float32 sums it (not finite when a holds
// a NaN or an infinity, or overflows); pack_codes_bf16 rounds the
// normalised codes [G, C, d] likewise into panels [G, ⌈C/32⌉, dp·32] of
// 32 codes (dp = d rounded up to even; step k/2 of a panel holds the 32
// codes' pairs k, k+1), and says whether all were finite; approx_scores
// writes s [n, C] = the products of the rounded rows a [n, dp] and one
// group's panels, summed in float32 by the BF16 dot-product instruction.
float bf16_row(const float *a, int64_t d, uint16_t *dst);
at::Tensor pack_codes_bf16(const at::Tensor &norm, bool &finite);
void approx_scores(const uint16_t *a, int64_t n, int64_t dp, const uint16_t *panels, int64_t C, float *s);
// The shim's own float32 GEMM on AVX-512 CPUs (gemm.cc). A GemmOperand is a
// matrix by its strides: element (i, j) at p[i·rs + j·cs], so a transposed
// view is an operand with rs and cs swapped. gemm writes c [m, n] (row
// stride ldc) = a [m, k] · b [k, n] (+ bias [n] where not null), each output
// one FMA chain over k in order, whatever the blocking and the threads.
// An operand may also name its rows or its columns by an index (ri, ci:
// element (i, j) at p[ri[i]·rs + j·cs], and so on), so that a product of
// gathered rows reads them where they are. With crow, row i of c is row
// crow[i] (the rows distinct: each output belongs to one thread); with
// accumulate, the chains start from c's values instead of zero.
struct GemmOperand {
  const float *p;
  int64_t rs, cs;
  const int64_t *ri = nullptr, *ci = nullptr;
};
void gemm(int64_t m, int64_t n, int64_t k, const GemmOperand &a, const GemmOperand &b, float *c, int64_t ldc,
          const float *bias, const int64_t *crow = nullptr, bool accumulate = false);
// keep_best offers candidate j (value v) to the n ≤ k best so far, kept
// best first in bv (values) and bi (indices) under the order
// before(v, j, bv[i], bi[i]): it goes in after those it does not come
// before, and the k-th falls out (a top-k of a handful, by insertion).
template <typename T, typename Before>
inline void keep_best(T v, int64_t j, T *bv, int64_t *bi, int64_t &n, int64_t k, Before before) {
  if (n == k && !before(v, j, bv[k - 1], bi[k - 1])) return;
  int64_t at = n < k ? n++ : k - 1;
  for (; at > 0 && before(v, j, bv[at - 1], bi[at - 1]); --at) {
    bv[at] = bv[at - 1];
    bi[at] = bi[at - 1];
  }
  bv[at] = v;
  bi[at] = j;
}
// add_rows adds row i of src [M, q] to row idx[i] of dst [R, q], in order
// of i (shape.cc): one loop on a contiguous CPU dst, index_add_ elsewhere.
void add_rows(at::Tensor &dst, const at::Tensor &idx, const at::Tensor &src);
// softmax is x.softmax(dim), and square_sum Σ x² over x's last dimension:
// over a short last dimension of a float or double CPU tensor by the nodes
// of shortrows.cc (rows of a handful of entries, where libtorch's kernels
// run a partial vector a row), else by libtorch's ops.
at::Tensor softmax(const at::Tensor &x, int64_t dim);
at::Tensor square_sum(const at::Tensor &x);
// routed_gemm is models/mohd's routed input projection on AVX-512 CPUs:
// y [R, n] (row stride ldy) = xs [R, S]·w[0:S] + Σ_q x[xrow[t·K+q]]·
// w[wrow[t·K+q] : +g] for row t, with w [D, n] (row stride ldw), xs's
// rows of stride ldxs and x [·, g] contiguous. Each output is one FMA
// chain: the shared steps in order, then the K groups in the order given
// (models/mohd gives them by group), g steps each — what gemm computes
// for xs·w[0:S] followed by each group's product added into y's rows.
void routed_gemm(int64_t R, int64_t n, int64_t S, int64_t g, int64_t K, const float *xs, int64_t ldxs,
                 const float *x, const int64_t *xrow, const int64_t *wrow, const float *w, int64_t ldw, int64_t D,
                 float *y, int64_t ldy);
// mm and mm_out are at::mm and at::mm_out for 2-D operands, by gemm where
// own_product(a) and b is a float32 CPU tensor (any strides; out's rows
// contiguous), else by at::mm.
at::Tensor mm(const at::Tensor &a, const at::Tensor &b);
void mm_out(at::Tensor &out, const at::Tensor &a, const at::Tensor &b);
// own_gemm is own_product(x) outside CPU autocast: where libtorch would
// lower the product to bf16, linear and attention leave it to libtorch.
bool own_gemm(const at::Tensor &x);
// linear is at::linear (x·wᵀ + b), by gemm forward and backward where
// own_gemm(x) and w and b are float32 CPU tensors too.
at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b);
// group_layer_norm is LayerNorm over x's last dimension with a gain and bias
// per group, x [..., G, d], w and b [G, d] (groupnorm.cc): one node of our
// own for contiguous float32 CPU tensors, else libtorch's ops.
at::Tensor group_layer_norm(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b, double eps);
// attention is scaled dot-product attention (q [..., L, E], k [..., S, E],
// v [..., S, Ev]), by gemm (attention.cc) where own_gemm(q), the inputs
// are 4-d float32 CPU tensors, there is no mask or dropout and a causal
// attention is square; else libtorch's.
at::Tensor attention(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                     const c10::optional<at::Tensor> &mask, double dropout_p, bool causal);

}  // namespace hl

// HL_TRY wraps the body of every fallible entry point: it returns NULL when the
// body completes and turns any exception into an owned hl_status.
#define HL_TRY(...)                                                            \
  try {                                                                        \
    __VA_ARGS__;                                                               \
    return nullptr;                                                            \
  } catch (const hl::Error &e) {                                               \
    return hl::make_status(e.kind, e.message.c_str());                         \
  } catch (const c10::Error &e) {                                              \
    return hl::make_status(hl::classify(e), e.what_without_backtrace());       \
  } catch (const std::bad_alloc &e) {                                          \
    return hl::make_status(HL_ERR_OOM, "out of memory (std::bad_alloc)");      \
  } catch (const std::exception &e) {                                          \
    return hl::make_status(hl::classify_message(e.what()), e.what());          \
  } catch (...) {                                                              \
    return hl::make_status(HL_ERR_OTHER, "unknown C++ exception");             \
  }
