package torch

import (
	"runtime"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// Autocast runs f with automatic mixed precision on device type d's ops:
// matmuls, linear layers and attention run in dtype (BFloat16 or Float16)
// while reductions, norms and losses stay in float32, as PyTorch's autocast.
// Run the forward pass inside and the backward pass outside (backward
// follows the forward's dtypes). The region's cast cache is dropped when the
// outermost region ends, so updated weights are recast on the next forward.
// bf16 needs no loss scaling. The goroutine is locked to its thread for the
// duration, since libtorch keeps autocast state per thread.
func Autocast(d DeviceType, dtype DType, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fail("autocast", capi.AutocastEnter(int32(d), int32(dtype)))
	defer func() { fail("autocast", capi.AutocastExit()) }()
	f()
}

// WithoutAutocast runs f with autocast off for device type d (an fp32 island
// inside an Autocast region, e.g. for numerically sensitive similarities).
func WithoutAutocast(d DeviceType, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := capi.AutocastSetEnabled(int32(d), false)
	defer capi.AutocastSetEnabled(int32(d), prev)
	f()
}

// AutocastEnabled reports whether autocast is on for device type d on this thread.
func AutocastEnabled(d DeviceType) bool { return capi.AutocastEnabled(int32(d)) }

// SetTF32 allows (or forbids) TensorFloat-32 for float32 matmuls on the GPU.
func SetTF32(on bool) error {
	if err := capi.SetTF32(on); err != nil {
		return newError("set_tf32", err)
	}
	return nil
}

// MemoryStats are a CUDA device's caching-allocator statistics, in bytes.
type MemoryStats struct {
	Allocated, Reserved, PeakAllocated int64
}

// CUDAMemory reports a CUDA device's memory statistics (KindNoCUDA in a CPU build).
func CUDAMemory(index int) (MemoryStats, error) {
	a, r, p, err := capi.CUDAMemory(index)
	if err != nil {
		return MemoryStats{}, newError("cuda_memory", err)
	}
	return MemoryStats{Allocated: a, Reserved: r, PeakAllocated: p}, nil
}

// CUDAResetPeak resets a device's peak memory statistic.
func CUDAResetPeak(index int) error {
	if err := capi.CUDAResetPeak(index); err != nil {
		return newError("cuda_reset_peak", err)
	}
	return nil
}

// CUDAEmptyCache returns cached, unused device memory to the driver.
func CUDAEmptyCache() error {
	if err := capi.CUDAEmptyCache(); err != nil {
		return newError("cuda_empty_cache", err)
	}
	return nil
}
