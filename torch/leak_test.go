package torch

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rssBytes reads the resident set size from /proc/self/statm.
func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	fields := strings.Fields(string(b))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// TestNoLeaks runs 1,000 steps of a small two-layer network's forward,
// backward and SGD update, and checks that the live-handle counter returns to
// its baseline and that RSS stays flat.
func TestNoLeaks(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ManualSeed(1)
	w1 := Randn([]int{64, 32}).MulScalar(0.1).SetRequiresGrad(true)
	w2 := Randn([]int{10, 64}).MulScalar(0.1).SetRequiresGrad(true)
	params := []*Tensor{w1, w2}
	x := Randn([]int{16, 32})
	y := RandInt(0, 10, []int{16})
	defer func() {
		for _, p := range append(params, x, y) {
			p.Free()
		}
	}()

	step := func() float64 {
		s := NewScope()
		defer s.Close()
		h := Linear(x, w1, nil).Gelu()
		loss := CrossEntropy(Linear(h, w2, nil), y)
		ZeroGrad(params, true)
		loss.Backward()
		NoGrad(func() {
			for _, p := range params {
				p.AddScaledInPlace(p.Grad(), -0.1)
			}
		})
		return loss.Item()
	}

	baseline := LiveTensors()
	first := 0.0
	for i := 0; i < 100; i++ { // warm up allocator caches and OpenMP
		l := step()
		if i == 0 {
			first = l
		}
	}
	rss0 := rssBytes(t)
	var last float64
	for i := 0; i < 1000; i++ {
		last = step()
	}
	rss1 := rssBytes(t)
	live := LiveTensors()
	growth := float64(rss1-rss0) / float64(rss0)
	t.Logf("live handles: baseline %d, after 1,100 steps %d; RSS %.1f MiB -> %.1f MiB (%+.2f%%); loss %.3f -> %.3f",
		baseline, live, float64(rss0)/(1<<20), float64(rss1)/(1<<20), 100*growth, first, last)
	require.Equal(t, baseline, live, "every handle created by a step is freed")
	require.Less(t, growth, 0.05, "RSS grew by %.2f%%", 100*growth)
	require.Less(t, last, first, "the loop really trains")
}
