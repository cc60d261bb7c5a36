// precision.cc: autocast (mixed precision) and matmul precision. libtorch
// keeps autocast state per OS thread; callers keep to one locked thread.
#include <ATen/autocast_mode.h>

#include <vector>

#include "internal.h"

namespace {

// One autocast region: what to restore when it ends.
struct Saved {
  int32_t device_type;
  bool enabled;
  at::ScalarType dtype;
};

thread_local std::vector<Saved> regions;

bool enabled(int32_t device_type) {
#if HL_TORCH_GE(2, 4)
  return at::autocast::is_autocast_enabled(device_type == HL_CUDA ? at::kCUDA : at::kCPU);
#else
  return device_type == HL_CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

at::ScalarType dtype(int32_t device_type) {
#if HL_TORCH_GE(2, 4)
  return at::autocast::get_autocast_dtype(device_type == HL_CUDA ? at::kCUDA : at::kCPU);
#else
  return device_type == HL_CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set(int32_t device_type, bool on, at::ScalarType dt) {
#if HL_TORCH_GE(2, 4)
  auto dev = device_type == HL_CUDA ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_dtype(dev, dt);
  at::autocast::set_autocast_enabled(dev, on);
#else
  if (device_type == HL_CUDA) {
    at::autocast::set_autocast_gpu_dtype(dt);
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_autocast_cpu_dtype(dt);
    at::autocast::set_cpu_enabled(on);
  }
#endif
}

void check_device(int32_t device_type) {
  if (device_type != HL_CPU && device_type != HL_CUDA)
    throw hl::Error(HL_ERR_DEVICE, "unknown device type " + std::to_string(device_type));
#ifndef HL_WITH_CUDA
  if (device_type == HL_CUDA)
    throw hl::Error(HL_ERR_NO_CUDA, "CUDA autocast: this hiddenlab shim was built without CUDA (make shim-cuda)");
#endif
}

}  // namespace

extern "C" {

hl_status hl_autocast_enter(int32_t device_type, int32_t dt) {
  HL_TRY({
    check_device(device_type);
    auto st = hl::scalar_type(dt);
    if (st != at::kBFloat16 && st != at::kHalf)
      throw hl::Error(HL_ERR_DTYPE, "autocast runs in bfloat16 or float16");
    regions.push_back({device_type, enabled(device_type), dtype(device_type)});
    set(device_type, true, st);
    at::autocast::increment_nesting();
  })
}

hl_status hl_autocast_exit(void) {
  HL_TRY({
    if (regions.empty()) throw hl::Error(HL_ERR_VALUE, "autocast exit without a matching enter on this thread");
    Saved s = regions.back();
    regions.pop_back();
    // The cast cache holds low-precision copies of the weights; they are
    // stale after the optimizer step, so drop them when the outermost region
    // ends (Python's autocast does the same).
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set(s.device_type, s.enabled, s.dtype);
  })
}

int32_t hl_autocast_set_enabled(int32_t device_type, int32_t on) {
  if (device_type != HL_CPU && device_type != HL_CUDA) return 0;
  bool prev = enabled(device_type);
  set(device_type, on != 0, dtype(device_type));
  return prev ? 1 : 0;
}

int32_t hl_autocast_enabled(int32_t device_type) {
  if (device_type != HL_CPU && device_type != HL_CUDA) return 0;
  return enabled(device_type) ? 1 : 0;
}

hl_status hl_set_tf32(int32_t on) {
  HL_TRY({
    // TF32 for fp32 matmuls and convolutions on Ampere+ GPUs (no effect on CPU).
    at::globalContext().setAllowTF32CuBLAS(on != 0);
    at::globalContext().setAllowTF32CuDNN(on != 0);
    at::globalContext().setFloat32MatmulPrecision(on ? "high" : "highest");
  })
}

}  // extern "C"
