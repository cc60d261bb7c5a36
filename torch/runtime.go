package torch

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// loadErr is why the shim could not be loaded (nil when it was).
var loadErr error

func init() {
	// The shim (libhlshim.so.1, with libtorch) is loaded here, at start-up,
	// not linked: see LoadError for where it is looked for.
	if err := capi.Load(); err != nil {
		loadErr = err
		return
	}
	if os.Getenv("HIDDENLAB_MALLOC") != "default" {
		// Activations of a few MB would otherwise be mmap()ed and unmapped
		// every step; keeping them on the heap cut a small GPT's step by ~25%
		// at the same peak RSS. One arena for all threads keeps the OpenMP
		// workers' and the driving thread's tensors off per-thread heaps that
		// glibc maps and unmaps (hl_tune_malloc). HIDDENLAB_MALLOC=default
		// keeps glibc's settings.
		capi.TuneMalloc(64<<20, 256<<20)
	}
}

// LoadError reports why the shim could not be loaded when the program started
// (or why a bad HIDDENLAB_SIMD kept it from loading), or nil. Programs check
// it before any tensor work and exit with its message: without the shim
// every function of this package prints the same message and exits the
// process with status 1.
//
// The shim is $HIDDENLAB_SHIM_DIR/libhlshim.so.1 when that variable is set
// (and nothing else then); otherwise the first libhlshim.so.1 found next to
// the executable, in <exe dir>/../lib/hiddenlab (make install), in build/cpu
// of the source tree the binary was built from, or on the dynamic linker's
// path. A shim of another ABI version is an error too.
func LoadError() error { return loadErr }

// ShimPath reports the file of the loaded shim ("" when LoadError is not nil).
func ShimPath() string { return capi.Path() }

// ManualSeed seeds libtorch's CPU and CUDA generators.
func ManualSeed(seed uint64) { fail("manual_seed", capi.ManualSeed(seed)) }

// threads is the intra-op thread count SetNumThreads chose (0: libtorch's default).
var threads atomic.Int32

// SetNumThreads sets libtorch's intra-op thread count (OpenMP) for the calling
// OS thread and for every later RunLocked: OpenMP keeps the count per thread,
// so a count set on one thread does not reach work on another. Keep threads ×
// parallel processes at or below the core count.
func SetNumThreads(n int) error {
	if err := capi.SetNumThreads(n); err != nil {
		return newError("set_num_threads", err)
	}
	threads.Store(int32(n))
	return nil
}

// NumThreads reports libtorch's intra-op thread count on the calling OS thread.
func NumThreads() int { return capi.NumThreads() }

// Version is the linked libtorch's version, e.g. "1.13.1".
func Version() string {
	v := capi.TorchVersion()
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// BuildInfo describes the loaded shim and libtorch's build configuration.
func BuildInfo() string { return capi.BuildInfo() }

// BuiltWithCUDA reports whether the loaded shim is a CUDA build.
func BuiltWithCUDA() bool { return capi.BuiltWithCUDA() }

// LiveTensors counts tensor handles created and not yet freed, process-wide.
// Leak tests compare it with a baseline.
func LiveTensors() int64 { return capi.LiveTensors() }

// CUDADeviceCount reports the number of visible CUDA devices (0 with a CPU
// build of the shim).
func CUDADeviceCount() int {
	n, err := capi.CUDADeviceCount()
	if err != nil {
		return 0
	}
	return n
}

// DeviceInfo describes a CUDA device.
type DeviceInfo struct {
	Name        string
	TotalMemory int64 // bytes
}

// CUDADeviceInfo describes CUDA device index; with a CPU build of the shim it
// fails with an error of kind KindNoCUDA.
func CUDADeviceInfo(index int) (DeviceInfo, error) {
	name, total, err := capi.CUDADeviceInfo(index)
	if err != nil {
		return DeviceInfo{}, newError("cuda_device_info", err)
	}
	return DeviceInfo{Name: name, TotalMemory: total}, nil
}

// Synchronize waits for the work queued on d (a no-op on the CPU).
func Synchronize(d Device) error {
	if d.Type != DeviceCUDA {
		return nil
	}
	if err := capi.CUDASynchronize(d.Index); err != nil {
		return newError("cuda_synchronize", err)
	}
	return nil
}

// RNGState snapshots the CPU generator (for checkpoints); the caller owns the
// returned uint8 tensor.
func RNGState() *Tensor {
	h, err := capi.RNGState()
	fail("rng_state", err)
	return &Tensor{h: h}
}

// SetRNGState restores a snapshot taken by RNGState.
func SetRNGState(state *Tensor) { fail("set_rng_state", capi.SetRNGState(state.handle())) }

// RunLocked runs f on a new goroutine locked to its own OS thread (the device
// goroutine) and waits for it. All tensor work of a model belongs inside, since
// libtorch keeps grad mode, autocast, CUDA streams and the OpenMP thread count
// per thread; the thread count of SetNumThreads is applied first. A panic in f
// is re-raised in the caller.
func RunLocked(f func()) {
	done := make(chan any, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer func() { done <- recover() }()
		if n := threads.Load(); n > 0 {
			fail("set_num_threads", capi.SetNumThreads(int(n)))
		}
		f()
	}()
	if r := <-done; r != nil {
		panic(r)
	}
}
