package text

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// iota32 returns 0, 1, ..., n-1: each id is its own position.
func iota32(n int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return ids
}

func TestBatcherDeterministic(t *testing.T) {
	ids := iota32(10_000)
	a, err := NewBatcher(ids, 8, 32, 42)
	require.NoError(t, err)
	b, err := NewBatcher(ids, 8, 32, 42)
	require.NoError(t, err)

	// Step 7 is the same whether or not earlier steps were drawn.
	x7, y7 := a.Batch(7)
	for step := range 7 {
		b.Batch(step)
	}
	bx, by := b.Batch(7)
	require.Equal(t, x7, bx)
	require.Equal(t, y7, by)
	x7again, _ := a.Batch(7)
	require.Equal(t, x7, x7again)

	x8, _ := a.Batch(8)
	require.NotEqual(t, x7, x8, "another step")
	c, err := NewBatcher(ids, 8, 32, 43)
	require.NoError(t, err)
	cx, _ := c.Batch(7)
	require.NotEqual(t, x7, cx, "another seed")

	// The derivation is part of the contract: the first window of (seed 42,
	// step 7) starts where PCG(42, 7) says.
	require.Equal(t, int64(firstStart(42, 7, len(ids)-32)), x7[0])
}

func TestBatcherWindows(t *testing.T) {
	const n, batch, context = 100, 64, 10
	ids := iota32(n)
	bt, err := NewBatcher(ids, batch, context, 1)
	require.NoError(t, err)
	gotBatch, gotContext := bt.Shape()
	require.Equal(t, [2]int{batch, context}, [2]int{gotBatch, gotContext})
	starts := map[int64]bool{}
	for step := range 50 {
		x, y := bt.Batch(step)
		require.Len(t, x, batch*context)
		require.Len(t, y, batch*context)
		for r := range batch {
			s := x[r*context]
			starts[s] = true
			require.True(t, s >= 0 && s+context+1 <= n, "window at %d out of range", s)
			for i := range context {
				require.Equal(t, s+int64(i), x[r*context+i], "x is a contiguous window")
				require.Equal(t, x[r*context+i]+1, y[r*context+i], "y is x shifted by one")
			}
		}
	}
	// 3200 draws over 90 possible starts reach every one, ends included.
	require.Len(t, starts, n-context)
	require.True(t, starts[0] && starts[n-context-1])

	// BatchInto reuses buffers and agrees with Batch.
	x, y := make([]int64, batch*context), make([]int64, batch*context)
	bt.BatchInto(3, x, y)
	wx, wy := bt.Batch(3)
	require.Equal(t, wx, x)
	require.Equal(t, wy, y)
	require.Panics(t, func() { bt.BatchInto(3, x[:1], y) })
	require.Panics(t, func() { bt.Batch(-1) })
}

func TestBatcherExactFit(t *testing.T) {
	// context+1 tokens allow exactly one window.
	bt, err := NewBatcher([]int32{5, 6, 7, 8}, 2, 3, 9)
	require.NoError(t, err)
	x, y := bt.Batch(123)
	require.Equal(t, []int64{5, 6, 7, 5, 6, 7}, x)
	require.Equal(t, []int64{6, 7, 8, 6, 7, 8}, y)
}

func TestNewBatcherErrors(t *testing.T) {
	tests := []struct {
		n, batch, context int
		want              string
	}{
		{3, 2, 3, "batcher: 3 tokens, want at least context+1 = 4"},
		{0, 1, 1, "batcher: 0 tokens, want at least context+1 = 2"},
		{10, 0, 3, "batcher: batch size 0, want at least 1"},
		{10, 2, 0, "batcher: context 0, want at least 1"},
	}
	for _, tc := range tests {
		_, err := NewBatcher(iota32(tc.n), tc.batch, tc.context, 0)
		require.EqualError(t, err, tc.want)
	}
}

func firstStart(seed, step uint64, starts int) int {
	return rand.New(rand.NewPCG(seed, step)).IntN(starts)
}
