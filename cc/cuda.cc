// cuda.cc: CUDA device queries. In a CPU build they return HL_ERR_NO_CUDA (or 0
// devices), so one Go binary runs with either build of the shim.
#include "internal.h"

#ifdef HL_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>

namespace {

[[noreturn]] void no_cuda(const char *what) {
  throw hl::Error(HL_ERR_NO_CUDA, std::string(what) +
                                      ": this hiddenlab shim was built without CUDA "
                                      "(rebuild it against a CUDA libtorch: make shim-cuda)");
}

}  // namespace

extern "C" {

hl_status hl_cuda_device_count(int32_t *out) {
  HL_TRY({
#ifdef HL_WITH_CUDA
    *out = static_cast<int32_t>(c10::cuda::device_count());
#else
    *out = 0;
#endif
  })
}

hl_status hl_cuda_device_info(int32_t index, char *name, int64_t cap, int64_t *total_bytes) {
  HL_TRY({
#ifdef HL_WITH_CUDA
    hl::device(HL_CUDA, index);  // validates the ordinal
    const cudaDeviceProp *p = at::cuda::getDeviceProperties(index);
    hl::copy_string(p->name, name, cap);
    *total_bytes = static_cast<int64_t>(p->totalGlobalMem);
#else
    (void)index, (void)name, (void)cap, (void)total_bytes;
    no_cuda("cuda device info");
#endif
  })
}

hl_status hl_cuda_synchronize(int32_t index) {
  HL_TRY({
#ifdef HL_WITH_CUDA
    hl::device(HL_CUDA, index);
    c10::cuda::CUDAGuard g(static_cast<c10::DeviceIndex>(index));
    c10::cuda::device_synchronize();
#else
    (void)index;
    no_cuda("cuda synchronize");
#endif
  })
}

hl_status hl_cuda_memory(int32_t index, int64_t *allocated, int64_t *reserved, int64_t *peak_allocated) {
  HL_TRY({
#ifdef HL_WITH_CUDA
    hl::device(HL_CUDA, index);
    auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
    *allocated = st.allocated_bytes[0].current;  // index 0: the aggregate pool
    *reserved = st.reserved_bytes[0].current;
    *peak_allocated = st.allocated_bytes[0].peak;
#else
    (void)index, (void)allocated, (void)reserved, (void)peak_allocated;
    no_cuda("cuda memory");
#endif
  })
}

hl_status hl_cuda_reset_peak(int32_t index) {
  HL_TRY({
#ifdef HL_WITH_CUDA
    hl::device(HL_CUDA, index);
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
#else
    (void)index;
    no_cuda("cuda reset peak");
#endif
  })
}

hl_status hl_cuda_empty_cache(void) {
  HL_TRY({
#ifdef HL_WITH_CUDA
    c10::cuda::CUDACachingAllocator::emptyCache();
#else
    no_cuda("cuda empty cache");
#endif
  })
}

}  // extern "C"
