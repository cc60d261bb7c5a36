package torch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNoGradHoldsOnDeviceGoroutine: libtorch's grad mode is per OS thread, so
// NoGrad must hold for every call made inside it, even while other goroutines
// keep the scheduler busy (which, unlocked, moves a goroutine between threads).
func TestNoGradHoldsOnDeviceGoroutine(t *testing.T) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for !stop.Load() {
				for j := 0; j < 1000; j++ {
					x += j
				}
				runtime.Gosched()
			}
			_ = x
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	const calls = 10000
	noGradLoop := func() int {
		violations := 0
		w := Ones([]int{4}, RequiresGrad)
		defer w.Free()
		NoGrad(func() {
			for i := 0; i < calls; i++ {
				y := w.MulScalar(2)
				if y.RequiresGrad() || GradEnabled() {
					violations++
				}
				y.Free()
				if i%500 == 0 {
					time.Sleep(time.Microsecond) // invite the scheduler to move us
				}
			}
		})
		require.True(t, GradEnabled(), "NoGrad restores grad mode")
		return violations
	}
	var onDevice int
	RunLocked(func() { onDevice = noGradLoop() })
	require.Zero(t, onDevice, "device goroutine: %d of %d calls inside NoGrad recorded gradients", onDevice, calls)
	// NoGrad locks the thread itself, so it also holds on an unlocked goroutine.
	unlocked := noGradLoop()
	require.Zero(t, unlocked, "unlocked goroutine: %d of %d calls inside NoGrad recorded gradients", unlocked, calls)
}

func TestNoGradRestoresAfterPanic(t *testing.T) {
	RunLocked(func() {
		require.Error(t, Try(func() {
			NoGrad(func() { Ones([]int{2}).Matmul(Ones([]int{3})) })
		}))
		require.True(t, GradEnabled())
	})
	require.PanicsWithValue(t, "boom", func() { RunLocked(func() { panic("boom") }) })
}

// TestThreadCountReachesDeviceGoroutine: OpenMP keeps the thread count per OS
// thread, so RunLocked must apply SetNumThreads' count on its own thread.
func TestThreadCountReachesDeviceGoroutine(t *testing.T) {
	require.NoError(t, SetNumThreads(2))
	defer SetNumThreads(1)
	var inside int
	RunLocked(func() { inside = NumThreads() })
	require.Equal(t, 2, inside)
	require.Error(t, SetNumThreads(0))
}
