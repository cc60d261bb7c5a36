/*
 * hlshim.h: the whole C ABI of hiddenlab's libtorch shim.
 *
 * Rules (see shared/design/ARCHITECTURE.md):
 *   - Every fallible function returns an hl_status: NULL on success, otherwise an
 *     owned error object (kind + message) that the caller frees with
 *     hl_status_free. There is no thread-local "last error".
 *   - Results come back through out-parameters. A tensor handle owns one
 *     reference to a libtorch tensor; views share storage as in PyTorch.
 *     hl_tensor_free(NULL) is a no-op.
 *   - Bulk data crosses by copy into caller-owned buffers.
 *   - Only C types cross: opaque handles, fixed-width integers, doubles, char*.
 *   - The CPU build (Debian libtorch 1.13) and a CUDA build (libtorch 2.x) export
 *     the same symbols with the same soname; CUDA entry points of a CPU build
 *     return HL_ERR_NO_CUDA.
 */
#ifndef HLSHIM_H
#define HLSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HLSHIM_BUILDING)
#define HL_API __attribute__((visibility("default")))
#else
#define HL_API
#endif

/* Bumped whenever a signature or an enum value below changes. */
#define HL_ABI_VERSION 1

typedef struct hl_tensor_s *hl_tensor;
typedef struct hl_error_s *hl_status;
typedef struct hl_group_s *hl_group;

/* ---- errors ------------------------------------------------------------ */

typedef enum {
  HL_ERR_OTHER = 1,
  HL_ERR_SHAPE = 2,       /* sizes or ranks do not fit */
  HL_ERR_DTYPE = 3,       /* wrong or mixed scalar types */
  HL_ERR_DEVICE = 4,      /* tensors on different or unavailable devices */
  HL_ERR_OOM = 5,         /* allocation failed */
  HL_ERR_NO_CUDA = 6,     /* CUDA requested from a shim built without CUDA */
  HL_ERR_INDEX = 7,       /* index out of range */
  HL_ERR_VALUE = 8,       /* bad argument value */
  HL_ERR_NOT_IMPLEMENTED = 9,
  HL_ERR_AUTOGRAD = 10    /* backward on a graph that cannot provide it */
} hl_error_kind;

HL_API int32_t hl_status_kind(hl_status s);
HL_API const char *hl_status_message(hl_status s);
HL_API void hl_status_free(hl_status s);

/* ---- library ----------------------------------------------------------- */

HL_API int32_t hl_abi_version(void);
/* Writes a NUL-terminated description (libtorch version, CUDA, BLAS, threads)
 * into buf, truncated to cap bytes; returns the full length. */
HL_API int64_t hl_build_info(char *buf, int64_t cap);
/* Writes the name of the kernels OpenBLAS chose when it was loaded
 * ("SkylakeX", "Haswell", ...; "" when the BLAS is not OpenBLAS) as
 * hl_build_info does. */
HL_API int64_t hl_blas_core(char *buf, int64_t cap);
HL_API int32_t hl_torch_version(void); /* major*10000 + minor*100 + patch */
HL_API int32_t hl_built_with_cuda(void);
HL_API int64_t hl_live_tensors(void);   /* handles created and not yet freed */
HL_API hl_status hl_manual_seed(uint64_t seed);
HL_API hl_status hl_set_num_threads(int32_t n);
/* Tunes glibc malloc for tensor workloads: allocations below mmap_threshold
 * bytes come from the heap instead of fresh mmap()s (whose page faults cost up
 * to a third of a small model's step), free memory is returned to the system
 * only beyond trim_threshold bytes, and threads that have not allocated yet
 * share the main arena (M_ARENA_MAX = 1: per-thread arenas map and unmap
 * their 64 MiB heaps as they fill and empty). Thresholds <= 0 leave a setting
 * alone. */
HL_API hl_status hl_tune_malloc(int64_t mmap_threshold, int64_t trim_threshold);
HL_API int32_t hl_get_num_threads(void);
/* Grad mode is per OS thread in libtorch; callers keep to one locked thread. */
HL_API int32_t hl_set_grad_enabled(int32_t enabled); /* returns the previous mode */
HL_API int32_t hl_is_grad_enabled(void);
HL_API hl_status hl_cuda_device_count(int32_t *out);
/* Name and total memory of a CUDA device (HL_ERR_NO_CUDA in a CPU build). */
HL_API hl_status hl_cuda_device_info(int32_t index, char *name, int64_t cap, int64_t *total_bytes);
HL_API hl_status hl_cuda_synchronize(int32_t index);
/* Caching-allocator statistics of a CUDA device, in bytes. */
HL_API hl_status hl_cuda_memory(int32_t index, int64_t *allocated, int64_t *reserved, int64_t *peak_allocated);
HL_API hl_status hl_cuda_reset_peak(int32_t index);
HL_API hl_status hl_cuda_empty_cache(void);
/* Copies the CPU generator state into a new uint8 tensor / restores it. */
HL_API hl_status hl_rng_get_state(hl_tensor *out);
HL_API hl_status hl_rng_set_state(hl_tensor state);

/* ---- profiler ---------------------------------------------------------- */

/* While on, every libtorch operator, autograd node and shim scope on every
 * thread is timed. hl_profile_table writes one line per name,
 * "name\tcalls\tself_ns\ttotal_ns\n" (self: total less the operators it
 * called), NUL-terminated and truncated to cap bytes; it returns the full
 * length. hl_profile_start clears the table. */
HL_API hl_status hl_profile_start(int32_t shapes); /* shapes != 0: key by name and input sizes */
HL_API hl_status hl_profile_stop(void);
HL_API int64_t hl_profile_table(char *buf, int64_t cap);

/* ---- handles and metadata ---------------------------------------------- */

typedef enum {
  HL_FLOAT32 = 0,
  HL_FLOAT64 = 1,
  HL_BFLOAT16 = 2,
  HL_FLOAT16 = 3,
  HL_INT64 = 4,
  HL_INT32 = 5,
  HL_UINT8 = 6,
  HL_BOOL = 7,
  HL_INT8 = 8,
  HL_INT16 = 9
} hl_dtype;

typedef enum { HL_CPU = 0, HL_CUDA = 1 } hl_device_type;

/* Creation options. index is the CUDA ordinal (ignored on CPU). */
typedef struct {
  int32_t dtype;
  int32_t device_type;
  int32_t device_index;
  int32_t requires_grad;
} hl_options;

HL_API void hl_tensor_free(hl_tensor t);
HL_API void hl_tensor_free_many(hl_tensor *ts, int64_t n);
/* Returns a new handle to the same tensor (shares storage and autograd). */
HL_API hl_status hl_tensor_share(hl_tensor t, hl_tensor *out);
HL_API int32_t hl_tensor_dim(hl_tensor t);
/* Writes min(dim, cap) sizes; returns dim. */
HL_API int32_t hl_tensor_sizes(hl_tensor t, int64_t *sizes, int32_t cap);
HL_API int32_t hl_tensor_strides(hl_tensor t, int64_t *strides, int32_t cap);
HL_API int64_t hl_tensor_numel(hl_tensor t);
HL_API int32_t hl_tensor_dtype(hl_tensor t); /* hl_dtype, or -1 if unsupported */
HL_API void hl_tensor_device(hl_tensor t, int32_t *type, int32_t *index);
HL_API int32_t hl_tensor_requires_grad(hl_tensor t);
HL_API int32_t hl_tensor_is_leaf(hl_tensor t);
HL_API int32_t hl_tensor_is_contiguous(hl_tensor t);
/* Raw pointer of a CPU contiguous tensor; NULL otherwise. Valid while t lives. */
HL_API void *hl_tensor_data_ptr(hl_tensor t);

/* ---- creation ---------------------------------------------------------- */

typedef enum {
  HL_FILL_EMPTY = 0,
  HL_FILL_ZEROS = 1,
  HL_FILL_ONES = 2,
  HL_FILL_RAND = 3,   /* uniform [0, 1) */
  HL_FILL_RANDN = 4   /* standard normal */
} hl_fill;

HL_API hl_status hl_new(int32_t fill, const int64_t *shape, int32_t ndim, hl_options o, hl_tensor *out);
HL_API hl_status hl_full(const int64_t *shape, int32_t ndim, double value, hl_options o, hl_tensor *out);
HL_API hl_status hl_randint(int64_t low, int64_t high, const int64_t *shape, int32_t ndim, hl_options o, hl_tensor *out);
HL_API hl_status hl_arange(double start, double end, double step, hl_options o, hl_tensor *out);
HL_API hl_status hl_eye(int64_t n, int64_t m, hl_options o, hl_tensor *out);
/* Copies nbytes of host data laid out contiguously in o.dtype into a new
 * tensor. For a CUDA destination the bytes go through a pinned host buffer
 * and an asynchronous copy. */
HL_API hl_status hl_from_data(const void *data, int64_t nbytes, const int64_t *shape, int32_t ndim, hl_options o, hl_tensor *out);

/* ---- conversion -------------------------------------------------------- */

/* Converts to o.dtype on o's device (o.requires_grad ignored). */
HL_API hl_status hl_to(hl_tensor t, hl_options o, int32_t non_blocking, int32_t copy, hl_tensor *out);
HL_API hl_status hl_contiguous(hl_tensor t, hl_tensor *out);
HL_API hl_status hl_clone(hl_tensor t, hl_tensor *out);
HL_API hl_status hl_detach(hl_tensor t, hl_tensor *out);
/* Copies the elements into buf (host memory, nbytes = numel * element size of
 * t's dtype), going through a CPU contiguous copy if needed. */
HL_API hl_status hl_copy_out(hl_tensor t, void *buf, int64_t nbytes);
HL_API hl_status hl_item_double(hl_tensor t, double *out);
HL_API hl_status hl_item_int64(hl_tensor t, int64_t *out);
HL_API hl_status hl_copy_(hl_tensor dst, hl_tensor src); /* dst.copy_(src), no grad recorded */
HL_API hl_status hl_fill_(hl_tensor t, double value);    /* t.fill_(value), no grad recorded */
/* In-place random initialisation, no grad recorded: normal_(mean, std) or uniform_(lo, hi). */
HL_API hl_status hl_normal_(hl_tensor t, double mean, double std);
HL_API hl_status hl_uniform_(hl_tensor t, double lo, double hi);

/* ---- shape ------------------------------------------------------------- */

HL_API hl_status hl_view(hl_tensor t, const int64_t *shape, int32_t ndim, hl_tensor *out);
HL_API hl_status hl_reshape(hl_tensor t, const int64_t *shape, int32_t ndim, hl_tensor *out);
HL_API hl_status hl_expand(hl_tensor t, const int64_t *shape, int32_t ndim, hl_tensor *out);
HL_API hl_status hl_permute(hl_tensor t, const int64_t *dims, int32_t ndim, hl_tensor *out);
HL_API hl_status hl_transpose(hl_tensor t, int64_t d0, int64_t d1, hl_tensor *out);
/* all != 0 squeezes every size-1 dimension, else only dim. */
HL_API hl_status hl_squeeze(hl_tensor t, int64_t dim, int32_t all, hl_tensor *out);
HL_API hl_status hl_unsqueeze(hl_tensor t, int64_t dim, hl_tensor *out);
HL_API hl_status hl_flatten(hl_tensor t, int64_t start, int64_t end, hl_tensor *out);
HL_API hl_status hl_cat(const hl_tensor *ts, int32_t n, int64_t dim, hl_tensor *out);
HL_API hl_status hl_stack(const hl_tensor *ts, int32_t n, int64_t dim, hl_tensor *out);
/* Splits into pieces of the given sizes along dim; outs has n slots. */
HL_API hl_status hl_split_sizes(hl_tensor t, const int64_t *sizes, int32_t n, int64_t dim, hl_tensor *outs);
HL_API hl_status hl_narrow(hl_tensor t, int64_t dim, int64_t start, int64_t length, hl_tensor *out);
HL_API hl_status hl_slice(hl_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, hl_tensor *out);
HL_API hl_status hl_select(hl_tensor t, int64_t dim, int64_t index, hl_tensor *out);
HL_API hl_status hl_repeat(hl_tensor t, const int64_t *repeats, int32_t ndim, hl_tensor *out);
HL_API hl_status hl_index_select(hl_tensor t, int64_t dim, hl_tensor index, hl_tensor *out);
HL_API hl_status hl_gather(hl_tensor t, int64_t dim, hl_tensor index, hl_tensor *out);
/* add != 0: scatter_add; otherwise scatter (src overwrites). Out of place. */
HL_API hl_status hl_scatter(hl_tensor t, int64_t dim, hl_tensor index, hl_tensor src, int32_t add, hl_tensor *out);
/* Out-of-place index_put with n index tensors (NULL entries select whole dims). */
HL_API hl_status hl_index_put(hl_tensor t, const hl_tensor *indices, int32_t n, hl_tensor values, int32_t accumulate, hl_tensor *out);
/* Advanced indexing t[indices...] with n index tensors (NULL entries select whole dims). */
HL_API hl_status hl_index(hl_tensor t, const hl_tensor *indices, int32_t n, hl_tensor *out);
HL_API hl_status hl_masked_fill(hl_tensor t, hl_tensor mask, double value, hl_tensor *out);
HL_API hl_status hl_where(hl_tensor cond, hl_tensor a, hl_tensor b, hl_tensor *out);
HL_API hl_status hl_triu(hl_tensor t, int64_t diagonal, hl_tensor *out);
HL_API hl_status hl_tril(hl_tensor t, int64_t diagonal, hl_tensor *out);
HL_API hl_status hl_one_hot(hl_tensor t, int64_t num_classes, hl_tensor *out);

/* ---- elementwise math -------------------------------------------------- */

typedef enum {
  HL_NEG = 0, HL_EXP, HL_LOG, HL_SQRT, HL_RSQRT, HL_ABS, HL_RELU, HL_GELU,
  HL_GELU_TANH, HL_SILU, HL_TANH, HL_SIGMOID, HL_SOFTPLUS, HL_SIN, HL_COS,
  HL_RECIPROCAL, HL_SQUARE, HL_SIGN, HL_FLOOR, HL_CEIL, HL_ROUND,
  HL_LOGICAL_NOT, HL_LOG1P, HL_EXPM1, HL_ERF, HL_ISNAN, HL_ISFINITE,
  HL_LOG_SIGMOID,
  HL_UNARY_COUNT
} hl_unary_op;

typedef enum {
  HL_ADD = 0, HL_SUB, HL_MUL, HL_DIV, HL_POW, HL_MAXIMUM, HL_MINIMUM,
  HL_EQ, HL_NE, HL_LT, HL_LE, HL_GT, HL_GE, HL_LOGICAL_AND, HL_LOGICAL_OR,
  HL_REMAINDER, HL_FLOOR_DIVIDE, HL_ATAN2,
  HL_BINARY_COUNT
} hl_binary_op;

HL_API hl_status hl_unary(int32_t op, hl_tensor t, hl_tensor *out);
HL_API hl_status hl_unary_(int32_t op, hl_tensor t); /* in place */
HL_API hl_status hl_binary(int32_t op, hl_tensor a, hl_tensor b, hl_tensor *out);
HL_API hl_status hl_binary_(int32_t op, hl_tensor a, hl_tensor b); /* a op= b */
/* a op s; reversed != 0 computes s op a. */
HL_API hl_status hl_binary_scalar(int32_t op, hl_tensor a, double s, int32_t reversed, hl_tensor *out);
HL_API hl_status hl_binary_scalar_(int32_t op, hl_tensor a, double s);
/* a + alpha * b. */
HL_API hl_status hl_add_scaled(hl_tensor a, hl_tensor b, double alpha, hl_tensor *out);
/* In place a += alpha * b (used by optimizers and accumulation). */
HL_API hl_status hl_add_scaled_(hl_tensor a, hl_tensor b, double alpha);
/* Clamp to [lo, hi]; a bound is ignored when its has_ flag is 0. */
HL_API hl_status hl_clamp(hl_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi, hl_tensor *out);
/* torch.matmul; [..., K] times a matrix [K, N] is hl_linear's product. */
HL_API hl_status hl_matmul(hl_tensor a, hl_tensor b, hl_tensor *out);
HL_API hl_status hl_bmm(hl_tensor a, hl_tensor b, hl_tensor *out);
/* x @ w^T + bias (bias may be NULL). On AVX-512 CPUs in float32 by the
 * shim's own GEMM, forward and backward: each output one FMA chain over K
 * in order, the same bits on any number of threads (HIDDENLAB_SIMD=avx2 or
 * generic: libtorch's, i.e. the BLAS). */
HL_API hl_status hl_linear(hl_tensor x, hl_tensor w, hl_tensor bias, hl_tensor *out);
HL_API hl_status hl_einsum(const char *equation, const hl_tensor *ts, int32_t n, hl_tensor *out);

/* ---- reductions -------------------------------------------------------- */

typedef enum {
  HL_SUM = 0, HL_MEAN, HL_AMAX, HL_AMIN, HL_LOGSUMEXP, HL_PROD, HL_VAR,
  HL_STD, HL_ALL, HL_ANY,
  HL_REDUCE_COUNT
} hl_reduce_op;

/* Reduces over dims (ndim == 0: all dims). VAR/STD are unbiased (n-1). */
HL_API hl_status hl_reduce(int32_t op, hl_tensor t, const int64_t *dims, int32_t ndim, int32_t keepdim, hl_tensor *out);
/* max/min along one dim with indices; is_min selects min. */
HL_API hl_status hl_max_dim(hl_tensor t, int64_t dim, int32_t keepdim, int32_t is_min, hl_tensor *values, hl_tensor *indices);
/* argmax/argmin along dim; all != 0 reduces the flattened tensor. */
HL_API hl_status hl_argmax(hl_tensor t, int64_t dim, int32_t all, int32_t keepdim, int32_t is_min, hl_tensor *out);
HL_API hl_status hl_norm(hl_tensor t, double p, const int64_t *dims, int32_t ndim, int32_t keepdim, hl_tensor *out);
HL_API hl_status hl_cumsum(hl_tensor t, int64_t dim, hl_tensor *out);
HL_API hl_status hl_topk(hl_tensor t, int64_t k, int64_t dim, int32_t largest, int32_t sorted, hl_tensor *values, hl_tensor *indices);
HL_API hl_status hl_sort(hl_tensor t, int64_t dim, int32_t descending, hl_tensor *values, hl_tensor *indices);
HL_API hl_status hl_multinomial(hl_tensor probs, int64_t n, int32_t replacement, hl_tensor *out);

/* ---- neural-network functions ----------------------------------------- */

typedef enum { HL_REDUCTION_NONE = 0, HL_REDUCTION_MEAN = 1, HL_REDUCTION_SUM = 2 } hl_reduction;

HL_API hl_status hl_softmax(hl_tensor t, int64_t dim, hl_tensor *out);
HL_API hl_status hl_log_softmax(hl_tensor t, int64_t dim, hl_tensor *out);
HL_API hl_status hl_dropout(hl_tensor t, double p, int32_t train, hl_tensor *out);
HL_API hl_status hl_embedding(hl_tensor weight, hl_tensor indices, hl_tensor *out);
/* Normalises over the last nnorm dims; weight and bias may be NULL. With
 * nnorm = 1 they may be [G, d] for x [..., G, d]: a gain and bias per group. */
HL_API hl_status hl_layer_norm(hl_tensor x, int32_t nnorm, hl_tensor weight, hl_tensor bias, double eps, hl_tensor *out);
/* logits [N, C] (or [N, C, d...]), integer targets; weight may be NULL. */
HL_API hl_status hl_cross_entropy(hl_tensor logits, hl_tensor target, hl_tensor weight, int32_t reduction, int64_t ignore_index, double label_smoothing, hl_tensor *out);
HL_API hl_status hl_mse_loss(hl_tensor a, hl_tensor b, int32_t reduction, hl_tensor *out);
/* KL(target || exp(input)) with input as log-probabilities, as torch.nn.functional.kl_div. */
HL_API hl_status hl_kl_div(hl_tensor input, hl_tensor target, int32_t reduction, int32_t log_target, hl_tensor *out);
/* Fused attention over [..., L, E] q and [..., S, E] k, v; mask may be NULL
 * (bool: true = attend; float: added to scores). Without a mask or dropout,
 * on 4-d float32 inputs on AVX-512 CPUs, by the shim's own GEMM (a causal
 * attention skips the masked half of its products); else libtorch's. */
HL_API hl_status hl_attention(hl_tensor q, hl_tensor k, hl_tensor v, hl_tensor mask, double dropout_p, int32_t is_causal, hl_tensor *out);
/* Codebook quantisation (models/codebook), fused: for a [N, G, d] (the
 * LayerNorm'd inputs of G codebooks) and codes [G, C, d], *ids [N, G, k]
 * (int64) are the k codes of each group with the highest cosine a·c/‖c‖
 * (scored without an autograd graph in blocks of tokens sized from the L2
 * cache, at most chunk when chunk > 0, all groups in one batched GEMM, or
 * in float32 on AVX-512 CPUs by the shim's own kernel), *out [N, G, d] is
 * the mean of the selected raw codes, whose gradient passes straight through
 * to a, and *mse the reconstruction loss Σ_g mean_N ‖out − sg(a)‖². The
 * backward is hand-written: a gets ∂L/∂out; the selected codes get
 * (∂L/∂out + ∂L/∂mse·2(out − a)/N)/k, accumulated in a fixed order (bitwise
 * reproducible for a given thread count). */
HL_API hl_status hl_codebook_quantize(hl_tensor a, hl_tensor codes, int64_t k, int64_t chunk, hl_tensor *out,
                                      hl_tensor *ids, hl_tensor *mse);
/* The scores hl_codebook_quantize ranks, without a graph: *out [N, G, C] =
 * a·c/‖c‖ for a [N, G, d] and codes [G, C, d], computed as the op computes
 * them (on AVX-512 CPUs in float32 by its own kernel, else one batched GEMM
 * with the normalised codes). */
HL_API hl_status hl_codebook_scores(hl_tensor a, hl_tensor codes, hl_tensor *out);
/* Adds 1, in place, to counts[g, c] (int64 [G, C]) for every code c of
 * group g that ids (int64 [N, G, k]) select at least once; ids < 0 (blocked
 * slots) or ≥ C count nothing. */
HL_API hl_status hl_codebook_count(hl_tensor ids, hl_tensor counts);

/* Grouped matrix product with autograd (models/mohd's routed projections):
 * the rows of x [R, p] (x's rows src[i] when src is not NULL) are sorted by
 * group, loads[j] of them in group j of the groups of w; row i of group j
 * is multiplied by w[j] ([groups, p, q]; with trans_w, w is [groups, q, p]
 * and the product is by w[j]ᵀ) and added to row dest[i] of a zero
 * [out_rows, q] result (without dest, the result [Σ loads, q] has row i
 * in place i). One GEMM per group, the gather and scatter-add in the op;
 * the backward is one node, with the sums over rows in a fixed order. */
HL_API hl_status hl_grouped_mm(hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups, hl_tensor src,
                               hl_tensor dest, int64_t out_rows, int32_t trans_w, hl_tensor *out);

/* *out = Σ x² over x's last dimension (models/mohd's group energies), with
 * autograd; on the CPU over a short last dimension (≤ 64) one loop a row. */
HL_API hl_status hl_square_sum(hl_tensor x, hl_tensor *out);

/* A mixture router's choice (models/mohd): for p [rows, groups] (any
 * floating dtype and device), *top [rows, k] int64 holds each row's k
 * largest entries' groups, largest first (NaN largest, lower group first
 * between equals, as topk); *order [rows·k] int64 the assignments
 * a = t·k + i (row t's i-th choice) sorted by group, within a group by a;
 * loads [groups] receives each group's count. No gradient: the chosen
 * values are p's gathered at *top. */
HL_API hl_status hl_route_topk(hl_tensor p, int64_t k, hl_tensor *top, hl_tensor *order, int64_t *loads);

/* The projections of a routed sublayer with autograd (models/mohd's
 * gathered path), w [S + groups·g, ·] holding S shared rows and then the
 * groups' g rows each; one node each, which writes w's whole gradient.
 * hl_routed_in: *out [rows, n] = xs·w[:S] + Σ_k x[t·K + k]·w_j added to
 * row t for its K assignments, x [rows·K, g] in order of rows; order
 * [rows·K] lists the assignments (rows of x) sorted by group, loads[j] of
 * them in group j, no row twice in one group; xs [rows, S] may be NULL when
 * S = 0.
 * hl_routed_out: *out [R, S + groups·g] for x [R, p]: its first S columns
 * x·w[:S]ᵀ, group j's g columns x[t]·w_jᵀ at the rows t = src[i] of group
 * j (sorted by group, loads[j] of them, no row twice in a group), zero at
 * the other rows. */
HL_API hl_status hl_routed_in(hl_tensor xs, hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups,
                              hl_tensor order, int64_t rows, hl_tensor *out);
HL_API hl_status hl_routed_out(hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups, int64_t g,
                               hl_tensor src, hl_tensor *out);

/* Group fusion of models/mohd with autograd: F(y) = Pᵀ·BD₂·P·BD₁·y for
 * y [BT, N·g], bd1 [N, g, g] (within groups), bd2 [g, N, N] (across groups,
 * position by position): out[t, n, i] = Σ_m (Σ_j y[t, m, j]·bd1[m, j, i])·
 * bd2[i, m, n], as [BT, N·g]. Two batched GEMMs on contiguous operands,
 * forward and backward. */
HL_API hl_status hl_monarch(hl_tensor y, hl_tensor bd1, hl_tensor bd2, hl_tensor *out);

/* The SwiGLU gate with autograd: silu(a) ⊙ b for x = [a | b] split in two
 * halves of its last dimension ([..., 2n] → [..., n]). One pass over x
 * forward, one over x and the gradient backward. */
HL_API hl_status hl_swiglu(hl_tensor x, hl_tensor *out);

/* ---- autograd ---------------------------------------------------------- */

HL_API hl_status hl_set_requires_grad(hl_tensor t, int32_t requires_grad);
/* grad may be NULL for a scalar t. */
HL_API hl_status hl_backward(hl_tensor t, hl_tensor grad, int32_t retain_graph, int32_t create_graph);
/* *out is NULL when t has no gradient. */
HL_API hl_status hl_grad(hl_tensor t, hl_tensor *out);
/* Sets t.grad (NULL clears it). */
HL_API hl_status hl_set_grad(hl_tensor t, hl_tensor grad);
/* t.set_data(src): t keeps its identity (handle, requires_grad, autograd
 * leaf) and takes src's storage, dtype and device (param.data = src). */
HL_API hl_status hl_set_data(hl_tensor t, hl_tensor src);
/* Zeroes (or, with set_to_none, drops) the gradients of n tensors. */
HL_API hl_status hl_zero_grads(const hl_tensor *ts, int64_t n, int32_t set_to_none);

/* ---- precision ---------------------------------------------------------
 * Autocast regions are per OS thread and nest. */

/* Enters an autocast region for a device type (HL_CPU, HL_CUDA) computing in
 * dtype (HL_BFLOAT16 or HL_FLOAT16). */
HL_API hl_status hl_autocast_enter(int32_t device_type, int32_t dtype);
/* Leaves the innermost region, restoring the previous state; the cast cache
 * is cleared when the outermost region ends. */
HL_API hl_status hl_autocast_exit(void);
/* Turns autocast for a device type on or off without changing the dtype
 * (e.g. for an fp32 island inside a region); returns the previous state. */
HL_API int32_t hl_autocast_set_enabled(int32_t device_type, int32_t on);
HL_API int32_t hl_autocast_enabled(int32_t device_type);
/* Allows TF32 for fp32 matmuls on the GPU (matmul precision "high"). */
HL_API hl_status hl_set_tf32(int32_t on);

/* ---- optimizers ---------------------------------------------------------
 * Each call updates the parameters that have a gradient (others are skipped)
 * under no-grad, with the state tensor at the same index as its parameter. */

/* torch.optim.AdamW for one parameter group; step counts from 1. Float32
 * CPU parameters (all four tensors contiguous) take one pass each, the
 * operations in PyTorch's order rounded to float32; others the _foreach ops. */
HL_API hl_status hl_adamw_step(const hl_tensor *params, const hl_tensor *exp_avg, const hl_tensor *exp_avg_sq, int64_t n,
                               int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay);
/* torch.optim.SGD for one group; momentum_buf may be NULL without momentum. */
HL_API hl_status hl_sgd_step(const hl_tensor *params, const hl_tensor *momentum_buf, int64_t n, int64_t step, double lr,
                             double momentum, double dampening, double weight_decay, int32_t nesterov);
/* torch.nn.utils.clip_grad_norm_: scales the gradients so their global 2-norm
 * is at most max_norm (max_norm <= 0: only measures); reports the norm before. */
HL_API hl_status hl_clip_grad_norm(const hl_tensor *params, int64_t n, double max_norm, double *total_norm);

/* ---- distributed (c10d) --------------------------------------------------
 * A process group of world processes: Gloo for CPU tensors, NCCL for CUDA
 * (CUDA builds configured with -DHL_NCCL=ON). Rendezvous goes through a
 * TCPStore that rank 0 serves at host:port. Every collective waits, and fails
 * (instead of hanging) when a peer dies or timeout_ms passes. */

HL_API hl_status hl_group_new(const char *host, int32_t port, int32_t rank, int32_t world, int32_t device_type,
                              int64_t timeout_ms, hl_group *out);
HL_API void hl_group_free(hl_group g);
/* Sums (or, with average, averages) n tensors in place across the group, in
 * buckets of up to bucket_bytes (<= 0: 25 MiB) of one dtype and device. */
HL_API hl_status hl_group_allreduce(hl_group g, const hl_tensor *ts, int32_t n, int32_t average, int64_t bucket_bytes);
/* Copies root's n tensors into every rank's, in place. */
HL_API hl_status hl_group_broadcast(hl_group g, const hl_tensor *ts, int32_t n, int32_t root);
HL_API hl_status hl_group_barrier(hl_group g);

#ifdef __cplusplus
}
#endif

#endif /* HLSHIM_H */
