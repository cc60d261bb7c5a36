// Package capi is the only Go package that imports "C": thin 1:1 wrappers over
// the shim's C ABI (cc/include/hlshim.h) that return (handle, error).
//
// Handles are owned C pointers; capi neither frees nor tracks them. The torch
// package layers ownership (scopes), typed errors and a Go API on top.
//
// The shim is loaded at run time, not linked: Load (load.go) finds
// libhlshim.so.1 and binds the trampolines of trampolines.c to it. Nothing
// else in the package works before Load succeeds.
package capi

/*
#cgo CFLAGS: -I${SRCDIR}/../../../cc/include
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "hlshim.h"
*/
import "C"

import "unsafe"

// Tensor is an owned handle to one libtorch tensor (NULL is the zero value).
type Tensor = C.hl_tensor

// HeaderABIVersion is the ABI version of the header this package was compiled
// against; ABIVersion reports the loaded library's.
const HeaderABIVersion = int(C.HL_ABI_VERSION)

// Status is an error reported by the shim: a kind (hl_error_kind) and a message.
type Status struct {
	Kind    int
	Message string
}

func (s *Status) Error() string { return s.Message }

// check turns an hl_status into an error, freeing it.
func check(s C.hl_status) error {
	if s == nil {
		return nil
	}
	err := &Status{Kind: int(C.hl_status_kind(s)), Message: C.GoString(C.hl_status_message(s))}
	C.hl_status_free(s)
	return err
}

// Options mirrors hl_options.
type Options struct {
	DType        int32
	DeviceType   int32
	DeviceIndex  int32
	RequiresGrad bool
}

func (o Options) c() C.hl_options {
	var rg C.int32_t
	if o.RequiresGrad {
		rg = 1
	}
	return C.hl_options{dtype: C.int32_t(o.DType), device_type: C.int32_t(o.DeviceType), device_index: C.int32_t(o.DeviceIndex), requires_grad: rg}
}

func b2i(b bool) C.int32_t {
	if b {
		return 1
	}
	return 0
}

func i64s(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}

func handles(ts []Tensor) *C.hl_tensor {
	if len(ts) == 0 {
		return nil
	}
	return (*C.hl_tensor)(unsafe.Pointer(&ts[0]))
}

// ---- library ----

// ABIVersion reports the loaded shim's ABI version.
func ABIVersion() int { return int(C.hl_abi_version()) }

// readString reads a string result of the shim (hl::copy_string's
// contract: f writes at most cap bytes, NUL included, into buf and returns
// the full length), asking again if the string grew between the call that
// measured it and the one that copied it.
func readString(f func(buf *C.char, cap C.int64_t) C.int64_t) string {
	for {
		n := f(nil, 0)
		buf := make([]byte, int(n)+1)
		if m := f((*C.char)(unsafe.Pointer(&buf[0])), C.int64_t(len(buf))); m <= n {
			return string(buf[:m])
		}
	}
}

// BuildInfo describes the loaded shim and its libtorch.
func BuildInfo() string {
	return readString(func(buf *C.char, cap C.int64_t) C.int64_t { return C.hl_build_info(buf, cap) })
}

// BLASCore names the kernels OpenBLAS chose at load time ("" when the BLAS
// is not OpenBLAS).
func BLASCore() string {
	return readString(func(buf *C.char, cap C.int64_t) C.int64_t { return C.hl_blas_core(buf, cap) })
}

// ProfileStart turns the shim's operator profiler on (and clears its
// table); with shapes it keys operators by name and input sizes.
func ProfileStart(shapes bool) error {
	s := C.int32_t(0)
	if shapes {
		s = 1
	}
	return check(C.hl_profile_start(s))
}

// ProfileStop turns the operator profiler off; its table stays readable.
func ProfileStop() error { return check(C.hl_profile_stop()) }

// ProfileTable is the profiler's table: a line per operator name,
// "name\tcalls\tself_ns\ttotal_ns".
func ProfileTable() string {
	return readString(func(buf *C.char, cap C.int64_t) C.int64_t { return C.hl_profile_table(buf, cap) })
}

// TorchVersion is major*10000 + minor*100 + patch of the linked libtorch.
func TorchVersion() int { return int(C.hl_torch_version()) }

// BuiltWithCUDA reports whether the loaded shim is a CUDA build.
func BuiltWithCUDA() bool { return C.hl_built_with_cuda() != 0 }

// LiveTensors counts handles created and not yet freed.
func LiveTensors() int64 { return int64(C.hl_live_tensors()) }

// ManualSeed seeds libtorch's generators.
func ManualSeed(seed uint64) error { return check(C.hl_manual_seed(C.uint64_t(seed))) }

// SetNumThreads sets libtorch's intra-op thread count.
func SetNumThreads(n int) error { return check(C.hl_set_num_threads(C.int32_t(n))) }

// TuneMalloc sets glibc's mmap and trim thresholds (<= 0 leaves one alone).
func TuneMalloc(mmapThreshold, trimThreshold int64) error {
	return check(C.hl_tune_malloc(C.int64_t(mmapThreshold), C.int64_t(trimThreshold)))
}

// NumThreads reports libtorch's intra-op thread count.
func NumThreads() int { return int(C.hl_get_num_threads()) }

// SetGradEnabled sets the calling OS thread's grad mode and returns the previous one.
func SetGradEnabled(on bool) bool { return C.hl_set_grad_enabled(b2i(on)) != 0 }

// GradEnabled reports the calling OS thread's grad mode.
func GradEnabled() bool { return C.hl_is_grad_enabled() != 0 }

// CUDADeviceCount reports the number of visible CUDA devices (0 in a CPU build).
func CUDADeviceCount() (int, error) {
	var n C.int32_t
	err := check(C.hl_cuda_device_count(&n))
	return int(n), err
}

// CUDADeviceInfo reports a CUDA device's name and total memory.
func CUDADeviceInfo(index int) (string, int64, error) {
	var buf [256]C.char
	var total C.int64_t
	if err := check(C.hl_cuda_device_info(C.int32_t(index), &buf[0], C.int64_t(len(buf)), &total)); err != nil {
		return "", 0, err
	}
	return C.GoString(&buf[0]), int64(total), nil
}

// CUDASynchronize waits for all work on a CUDA device.
func CUDASynchronize(index int) error { return check(C.hl_cuda_synchronize(C.int32_t(index))) }

// RNGState returns the CPU generator state as a uint8 tensor.
func RNGState() (Tensor, error) {
	var out Tensor
	err := check(C.hl_rng_get_state(&out))
	return out, err
}

// SetRNGState restores the CPU generator state.
func SetRNGState(state Tensor) error { return check(C.hl_rng_set_state(state)) }

// AutocastEnter enters an autocast region for a device type and dtype.
func AutocastEnter(deviceType, dtype int32) error {
	return check(C.hl_autocast_enter(C.int32_t(deviceType), C.int32_t(dtype)))
}

// AutocastExit leaves the innermost autocast region.
func AutocastExit() error { return check(C.hl_autocast_exit()) }

// AutocastSetEnabled turns autocast on or off for a device type, returning the previous state.
func AutocastSetEnabled(deviceType int32, on bool) bool {
	return C.hl_autocast_set_enabled(C.int32_t(deviceType), b2i(on)) != 0
}

// AutocastEnabled reports whether autocast is on for a device type.
func AutocastEnabled(deviceType int32) bool { return C.hl_autocast_enabled(C.int32_t(deviceType)) != 0 }

// SetTF32 allows TF32 matmuls on the GPU.
func SetTF32(on bool) error { return check(C.hl_set_tf32(b2i(on))) }

// CUDAMemory reports a device's allocated, reserved and peak allocated bytes.
func CUDAMemory(index int) (allocated, reserved, peak int64, err error) {
	var a, r, p C.int64_t
	err = check(C.hl_cuda_memory(C.int32_t(index), &a, &r, &p))
	return int64(a), int64(r), int64(p), err
}

// CUDAResetPeak resets a device's peak statistics.
func CUDAResetPeak(index int) error { return check(C.hl_cuda_reset_peak(C.int32_t(index))) }

// CUDAEmptyCache returns cached, unused device memory to the driver.
func CUDAEmptyCache() error { return check(C.hl_cuda_empty_cache()) }
