// core.cc: errors, library information, handles, creation and conversion.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <c10/core/GradMode.h>

#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <mutex>
#include <sstream>

#include "internal.h"

#ifdef HL_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace hl {

std::atomic<int64_t> live_tensors{0};

// Returned when even the error object cannot be allocated; never deleted.
static hl_error_s oom_status{HL_ERR_OOM, "out of memory while reporting an error"};

hl_status make_status(int32_t kind, const char *message) noexcept {
  try {
    return new hl_error_s{kind, message ? message : ""};
  } catch (...) {
    return &oom_status;
  }
}

bool is_static_status(hl_status s) noexcept { return s == &oom_status; }

static bool contains(const std::string &s, const char *needle) { return s.find(needle) != std::string::npos; }

int32_t classify_message(const char *message) noexcept {
  try {
    const std::string m = message ? message : "";
    if (contains(m, "out of memory") || contains(m, "DefaultCPUAllocator: can't allocate")) return HL_ERR_OOM;
    if (contains(m, "CUDA") && (contains(m, "not available") || contains(m, "without CUDA") ||
                                contains(m, "compiled without")))
      return HL_ERR_NO_CUDA;
    if (contains(m, "same device") || contains(m, "device type") || contains(m, "Expected all tensors to be on"))
      return HL_ERR_DEVICE;
    if (contains(m, "scalar type") || contains(m, "dtype") || contains(m, "Dtype") ||
        contains(m, "expected both vectors to have same") || contains(m, "not implemented for '"))
      return HL_ERR_DTYPE;
    if (contains(m, "out of range") || contains(m, "out of bounds")) return HL_ERR_INDEX;
    if (contains(m, "does not require grad") || contains(m, "grad can be implicitly created") ||
        contains(m, "Trying to backward through the graph a second time") ||
        contains(m, "modified by an inplace operation"))
      return HL_ERR_AUTOGRAD;
    if (contains(m, "size") || contains(m, "shape") || contains(m, "dimension") || contains(m, "cannot be multiplied") ||
        contains(m, "Dimension") || contains(m, "rank") || contains(m, "view"))
      return HL_ERR_SHAPE;
  } catch (...) {
  }
  return HL_ERR_OTHER;
}

int32_t classify(const c10::Error &e) noexcept {
  if (dynamic_cast<const c10::OutOfMemoryError *>(&e)) return HL_ERR_OOM;
  if (dynamic_cast<const c10::IndexError *>(&e)) return HL_ERR_INDEX;
  if (dynamic_cast<const c10::NotImplementedError *>(&e)) return HL_ERR_NOT_IMPLEMENTED;
  if (dynamic_cast<const c10::TypeError *>(&e)) return HL_ERR_DTYPE;
  int32_t k = classify_message(e.what_without_backtrace());
  if (k == HL_ERR_OTHER && dynamic_cast<const c10::ValueError *>(&e)) return HL_ERR_VALUE;
  return k;
}

std::vector<at::Tensor> tensors(const hl_tensor *ts, int32_t n) {
  if (n < 0 || (n > 0 && ts == nullptr)) throw Error(HL_ERR_VALUE, "bad tensor list");
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int32_t i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

at::ScalarType scalar_type(int32_t dtype) {
  switch (dtype) {
    case HL_FLOAT32: return at::kFloat;
    case HL_FLOAT64: return at::kDouble;
    case HL_BFLOAT16: return at::kBFloat16;
    case HL_FLOAT16: return at::kHalf;
    case HL_INT64: return at::kLong;
    case HL_INT32: return at::kInt;
    case HL_UINT8: return at::kByte;
    case HL_BOOL: return at::kBool;
    case HL_INT8: return at::kChar;
    case HL_INT16: return at::kShort;
  }
  throw Error(HL_ERR_DTYPE, "unknown dtype code " + std::to_string(dtype));
}

int32_t dtype_code(at::ScalarType st) noexcept {
  switch (st) {
    case at::kFloat: return HL_FLOAT32;
    case at::kDouble: return HL_FLOAT64;
    case at::kBFloat16: return HL_BFLOAT16;
    case at::kHalf: return HL_FLOAT16;
    case at::kLong: return HL_INT64;
    case at::kInt: return HL_INT32;
    case at::kByte: return HL_UINT8;
    case at::kBool: return HL_BOOL;
    case at::kChar: return HL_INT8;
    case at::kShort: return HL_INT16;
    default: return -1;
  }
}

at::Device device(int32_t type, int32_t index) {
  switch (type) {
    case HL_CPU: return at::Device(at::kCPU);
    case HL_CUDA: {
#ifndef HL_WITH_CUDA
      throw Error(HL_ERR_NO_CUDA, "cuda:" + std::to_string(index) +
                                      " requested, but this hiddenlab shim was built without CUDA "
                                      "(rebuild it against a CUDA libtorch: make shim-cuda)");
#else
      const int32_t n = static_cast<int32_t>(c10::cuda::device_count());
      if (index < 0 || index >= n)
        throw Error(HL_ERR_DEVICE, "cuda:" + std::to_string(index) + " does not exist (" + std::to_string(n) +
                                       " CUDA devices)");
      return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
#endif
    }
  }
  throw Error(HL_ERR_DEVICE, "unknown device type " + std::to_string(type));
}

at::TensorOptions options(const hl_options &o) {
  return at::TensorOptions().dtype(scalar_type(o.dtype)).device(device(o.device_type, o.device_index));
}

static at::Tensor finish(at::Tensor t, const hl_options &o) {
  if (o.requires_grad) t.set_requires_grad(true);
  return t;
}

// simd_cap is HIDDENLAB_SIMD as a level: 0 generic, 1 AVX2, 2 AVX-512F
// ("avx512f"), 3 AVX-512 with its BF16 instructions ("avx512", the default;
// the Go package rejects other values before it loads the shim).
static int simd_cap() {
  static const int cap = [] {
    const char *v = getenv("HIDDENLAB_SIMD");
    if (v == nullptr || *v == '\0') return 3;
    const std::string s(v);
    return s == "generic" ? 0 : s == "avx2" ? 1 : s == "avx512f" ? 2 : 3;
  }();
  return cap;
}

bool simd_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = simd_cap() >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

bool simd_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = simd_cap() >= 2 && simd_avx2() && __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

bool simd_avx512bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = simd_cap() >= 3 && simd_avx512() && __builtin_cpu_supports("avx512bf16");
  return yes;
#else
  return false;
#endif
}

}  // namespace hl

using hl::T;

extern "C" {

int32_t hl_status_kind(hl_status s) { return s ? s->kind : 0; }
const char *hl_status_message(hl_status s) { return s ? s->message.c_str() : ""; }
void hl_status_free(hl_status s) {
  if (!hl::is_static_status(s)) delete s;
}

int32_t hl_abi_version(void) { return HL_ABI_VERSION; }

int32_t hl_torch_version(void) { return TORCH_VERSION_MAJOR * 10000 + TORCH_VERSION_MINOR * 100 + TORCH_VERSION_PATCH; }

int32_t hl_built_with_cuda(void) {
#ifdef HL_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

int64_t hl_build_info(char *buf, int64_t cap) {
  std::string s;
  try {
    std::ostringstream os;
    os << "libtorch " << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH
       << "; cuda " << (hl_built_with_cuda() ? "yes" : "no") << "; abi " << HL_ABI_VERSION
       << "; threads " << at::get_num_threads() << "\n"
       << at::show_config();
    s = os.str();
  } catch (...) {
    s = "unavailable";
  }
  return hl::copy_string(s, buf, cap);
}

int64_t hl_blas_core(char *buf, int64_t cap) {
  // OpenBLAS is a dependency of libtorch, not of the program: look the name
  // up among the shim's own dependencies (the handle of the shim, found from
  // this function's address, searches them all).
  std::string s;
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&hl_blas_core), &info) != 0 && info.dli_fname != nullptr) {
    if (void *self = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)) {
      using corename_fn = char *(*)();
      if (auto f = reinterpret_cast<corename_fn>(dlsym(self, "openblas_get_corename"))) {
        if (const char *name = f()) s = name;
      }
      dlclose(self);
    }
  }
  return hl::copy_string(s, buf, cap);
}

int64_t hl_live_tensors(void) { return hl::live_tensors.load(std::memory_order_relaxed); }

hl_status hl_manual_seed(uint64_t seed) { HL_TRY(at::manual_seed(seed)) }

hl_status hl_set_num_threads(int32_t n) {
  HL_TRY({
    if (n < 1) throw hl::Error(HL_ERR_VALUE, "thread count must be >= 1, got " + std::to_string(n));
    at::set_num_threads(n);
  })
}

hl_status hl_tune_malloc(int64_t mmap_threshold, int64_t trim_threshold) {
  HL_TRY({
    // One arena for every thread: a thread's own arena lives in heaps of at
    // most 64 MiB that glibc maps and unmaps as they fill and empty, so the
    // tensors of the OpenMP workers and of the thread that drives libtorch
    // came back as fresh pages (a third of the page faults of a codebook
    // layer's training step); the main arena follows the thresholds below.
    // Threads that already allocated keep their arena.
    if (mallopt(M_ARENA_MAX, 1) != 1) throw hl::Error(HL_ERR_VALUE, "mallopt(M_ARENA_MAX) refused 1");
    if (mmap_threshold > 0 && mallopt(M_MMAP_THRESHOLD, static_cast<int>(std::min<int64_t>(mmap_threshold, 1 << 30))) != 1)
      throw hl::Error(HL_ERR_VALUE, "mallopt(M_MMAP_THRESHOLD) refused " + std::to_string(mmap_threshold));
    if (trim_threshold > 0 && mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min<int64_t>(trim_threshold, 1 << 30))) != 1)
      throw hl::Error(HL_ERR_VALUE, "mallopt(M_TRIM_THRESHOLD) refused " + std::to_string(trim_threshold));
  })
}

int32_t hl_get_num_threads(void) { return at::get_num_threads(); }

int32_t hl_set_grad_enabled(int32_t enabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}

int32_t hl_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

hl_status hl_rng_get_state(hl_tensor *out) {
  HL_TRY({
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    hl::put(out, gen.get_state());
  })
}

hl_status hl_rng_set_state(hl_tensor state) {
  HL_TRY({
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(T(state));
  })
}

// ---- handles and metadata ----

void hl_tensor_free(hl_tensor t) { delete t; }

void hl_tensor_free_many(hl_tensor *ts, int64_t n) {
  if (ts == nullptr) return;
  for (int64_t i = 0; i < n; i++) delete ts[i];
}

hl_status hl_tensor_share(hl_tensor t, hl_tensor *out) { HL_TRY(hl::put(out, T(t))) }

int32_t hl_tensor_dim(hl_tensor t) { return static_cast<int32_t>(t->t.dim()); }

int32_t hl_tensor_sizes(hl_tensor t, int64_t *sizes, int32_t cap) {
  auto s = t->t.sizes();
  for (int32_t i = 0; i < cap && i < static_cast<int32_t>(s.size()); i++) sizes[i] = s[i];
  return static_cast<int32_t>(s.size());
}

int32_t hl_tensor_strides(hl_tensor t, int64_t *strides, int32_t cap) {
  auto s = t->t.strides();
  for (int32_t i = 0; i < cap && i < static_cast<int32_t>(s.size()); i++) strides[i] = s[i];
  return static_cast<int32_t>(s.size());
}

int64_t hl_tensor_numel(hl_tensor t) { return t->t.numel(); }
int32_t hl_tensor_dtype(hl_tensor t) { return hl::dtype_code(t->t.scalar_type()); }

void hl_tensor_device(hl_tensor t, int32_t *type, int32_t *index) {
  auto d = t->t.device();
  *type = d.is_cuda() ? HL_CUDA : HL_CPU;
  *index = d.has_index() ? d.index() : 0;
}

int32_t hl_tensor_requires_grad(hl_tensor t) { return t->t.requires_grad(); }
int32_t hl_tensor_is_leaf(hl_tensor t) { return t->t.is_leaf(); }
int32_t hl_tensor_is_contiguous(hl_tensor t) { return t->t.is_contiguous(); }

void *hl_tensor_data_ptr(hl_tensor t) {
  if (t == nullptr || !t->t.defined() || !t->t.is_cpu() || !t->t.is_contiguous()) return nullptr;
  return t->t.data_ptr();
}

// ---- creation ----

hl_status hl_new(int32_t fill, const int64_t *shape, int32_t ndim, hl_options o, hl_tensor *out) {
  HL_TRY({
    auto size = hl::dims(shape, ndim);
    auto opts = hl::options(o);
    at::Tensor t;
    switch (fill) {
      case HL_FILL_EMPTY: t = at::empty(size, opts); break;
      case HL_FILL_ZEROS: t = at::zeros(size, opts); break;
      case HL_FILL_ONES: t = at::ones(size, opts); break;
      case HL_FILL_RAND: t = at::rand(size, opts); break;
      case HL_FILL_RANDN: t = at::randn(size, opts); break;
      default: throw hl::Error(HL_ERR_VALUE, "unknown fill " + std::to_string(fill));
    }
    hl::put(out, hl::finish(std::move(t), o));
  })
}

hl_status hl_full(const int64_t *shape, int32_t ndim, double value, hl_options o, hl_tensor *out) {
  HL_TRY(hl::put(out, hl::finish(at::full(hl::dims(shape, ndim), value, hl::options(o)), o)))
}

hl_status hl_randint(int64_t low, int64_t high, const int64_t *shape, int32_t ndim, hl_options o, hl_tensor *out) {
  HL_TRY(hl::put(out, hl::finish(at::randint(low, high, hl::dims(shape, ndim), hl::options(o)), o)))
}

hl_status hl_arange(double start, double end, double step, hl_options o, hl_tensor *out) {
  HL_TRY(hl::put(out, hl::finish(at::arange(start, end, step, hl::options(o)), o)))
}

hl_status hl_eye(int64_t n, int64_t m, hl_options o, hl_tensor *out) {
  HL_TRY(hl::put(out, hl::finish(at::eye(n, m, hl::options(o)), o)))
}

hl_status hl_from_data(const void *data, int64_t nbytes, const int64_t *shape, int32_t ndim, hl_options o,
                       hl_tensor *out) {
  HL_TRY({
    auto size = hl::dims(shape, ndim);
    auto st = hl::scalar_type(o.dtype);
    int64_t numel = 1;
    for (auto s : size) {
      if (s < 0) throw hl::Error(HL_ERR_SHAPE, "negative size in shape");
      numel *= s;
    }
    const int64_t want = numel * static_cast<int64_t>(c10::elementSize(st));
    if (want != nbytes)
      throw hl::Error(HL_ERR_SHAPE, "data holds " + std::to_string(nbytes) + " bytes, shape needs " +
                                        std::to_string(want));
    auto dev = hl::device(o.device_type, o.device_index);
    // A CUDA upload goes through pinned (page-locked) memory, so the copy is
    // a DMA that overlaps with host work.
    at::Tensor t = at::empty(size, at::TensorOptions().dtype(st).pinned_memory(!dev.is_cpu()));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(nbytes));
    if (!dev.is_cpu()) t = t.to(dev, /*non_blocking=*/true);
    hl::put(out, hl::finish(std::move(t), o));
  })
}

// ---- conversion ----

hl_status hl_to(hl_tensor t, hl_options o, int32_t non_blocking, int32_t copy, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).to(hl::device(o.device_type, o.device_index), hl::scalar_type(o.dtype), non_blocking != 0,
                              copy != 0)))
}

hl_status hl_contiguous(hl_tensor t, hl_tensor *out) { HL_TRY(hl::put(out, T(t).contiguous())) }
hl_status hl_clone(hl_tensor t, hl_tensor *out) { HL_TRY(hl::put(out, T(t).clone())) }
hl_status hl_detach(hl_tensor t, hl_tensor *out) { HL_TRY(hl::put(out, T(t).detach())) }

hl_status hl_copy_out(hl_tensor t, void *buf, int64_t nbytes) {
  HL_TRY({
    at::Tensor x = T(t).detach();
    if (!x.is_cpu()) x = x.to(at::kCPU);
    x = x.contiguous();
    const int64_t have = x.numel() * static_cast<int64_t>(x.element_size());
    if (have != nbytes)
      throw hl::Error(HL_ERR_SHAPE, "tensor holds " + std::to_string(have) + " bytes, buffer has " +
                                        std::to_string(nbytes));
    if (nbytes > 0) std::memcpy(buf, x.data_ptr(), static_cast<size_t>(nbytes));
  })
}

hl_status hl_item_double(hl_tensor t, double *out) { HL_TRY(*out = T(t).item<double>()) }
hl_status hl_item_int64(hl_tensor t, int64_t *out) { HL_TRY(*out = T(t).item<int64_t>()) }

hl_status hl_copy_(hl_tensor dst, hl_tensor src) {
  HL_TRY({
    c10::NoGradGuard g;
    hl::T(dst).copy_(T(src));
  })
}

hl_status hl_fill_(hl_tensor t, double value) {
  HL_TRY({
    c10::NoGradGuard g;
    hl::T(t).fill_(value);
  })
}

hl_status hl_normal_(hl_tensor t, double mean, double std) {
  HL_TRY({
    c10::NoGradGuard g;
    hl::T(t).normal_(mean, std);
  })
}

hl_status hl_uniform_(hl_tensor t, double lo, double hi) {
  HL_TRY({
    c10::NoGradGuard g;
    hl::T(t).uniform_(lo, hi);
  })
}

}  // extern "C"
