package text

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvalWindows(t *testing.T) {
	tests := []struct {
		name               string
		n, context, stride int
		want               []Window
	}{
		{"exact fit", 13, 4, 4, []Window{{0, 0}, {4, 0}, {8, 0}}},
		{"one window", 5, 4, 4, []Window{{0, 0}}},
		// 11 targets: two whole windows, then one ending at the end that
		// skips the 1 target window {4,0} already scored.
		{"tail", 12, 4, 4, []Window{{0, 0}, {4, 0}, {7, 1}}},
		{"sliding", 11, 4, 2, []Window{{0, 0}, {2, 2}, {4, 2}, {6, 2}}},
		{"sliding tail", 12, 4, 2, []Window{{0, 0}, {2, 2}, {4, 2}, {6, 2}, {7, 3}}},
		{"stride 1", 7, 4, 1, []Window{{0, 0}, {1, 3}, {2, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, err := EvalWindows(iota32(tc.n), tc.context, tc.stride)
			require.NoError(t, err)
			require.Equal(t, tc.want, ws)
		})
	}
}

func TestEvalWindowsCoverEveryTargetOnce(t *testing.T) {
	for _, n := range []int{9, 10, 100, 101, 257, 1000} {
		for _, context := range []int{1, 8, 9, 64} {
			for _, stride := range []int{1, context / 2, context} {
				if stride < 1 || n < context+1 {
					continue
				}
				ws, err := EvalWindows(iota32(n), context, stride)
				require.NoError(t, err)
				scored := make([]int, n-1)
				for i, w := range ws {
					require.True(t, w.Start >= 0 && w.Start+context+1 <= n)
					require.True(t, w.Skip >= 0 && w.Skip < context)
					if i > 0 {
						require.Greater(t, w.Start, ws[i-1].Start, "in order")
					}
					for j := w.Start + w.Skip; j < w.Start+context; j++ {
						scored[j]++
					}
				}
				for j, c := range scored {
					require.Equal(t, 1, c, "n=%d context=%d stride=%d: target %d scored %d times", n, context, stride, j, c)
				}
			}
		}
	}
}

func TestEvalWindowsErrors(t *testing.T) {
	tests := []struct {
		n, context, stride int
		want               string
	}{
		{4, 4, 4, "eval windows: 4 tokens, want at least context+1 = 5"},
		{10, 0, 1, "eval windows: context 0, want at least 1"},
		{10, 4, 0, "eval windows: stride 0, want 1..context (4)"},
		{10, 4, 5, "eval windows: stride 5, want 1..context (4)"},
	}
	for _, tc := range tests {
		_, err := EvalWindows(iota32(tc.n), tc.context, tc.stride)
		require.EqualError(t, err, tc.want)
	}
}

func TestEvalBatches(t *testing.T) {
	const n, context = 12, 4
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(100 + i)
	}
	ws, err := EvalWindows(ids, context, context) // {0,0} {4,0} {7,1}
	require.NoError(t, err)
	var got []EvalBatch
	for b := range EvalBatches(ids, ws, context, 2) {
		got = append(got, b)
	}
	require.Len(t, got, 2)
	require.Equal(t, ws[:2], got[0].Windows)
	require.Equal(t, []int64{100, 101, 102, 103, 104, 105, 106, 107}, got[0].X)
	require.Equal(t, []int64{101, 102, 103, 104, 105, 106, 107, 108}, got[0].Y)
	require.Equal(t, []float32{1, 1, 1, 1, 1, 1, 1, 1}, got[0].Mask)
	require.Equal(t, 8, got[0].Scored)
	require.Equal(t, []int64{107, 108, 109, 110}, got[1].X)
	require.Equal(t, []int64{108, 109, 110, 111}, got[1].Y)
	require.Equal(t, []float32{0, 1, 1, 1}, got[1].Mask, "target 108 was scored in the first batch")
	require.Equal(t, 3, got[1].Scored)
	require.Equal(t, n-1, got[0].Scored+got[1].Scored)

	// Stopping early stops the iteration.
	count := 0
	for range EvalBatches(ids, ws, context, 1) {
		count++
		break
	}
	require.Equal(t, 1, count)
	require.Panics(t, func() { EvalBatches(ids, ws, context, 0) })
}

func TestEvalBatchesScoreSplit(t *testing.T) {
	// Every target of a real split is scored once: the masked targets,
	// in order, are exactly ids[1:].
	b, err := ReadCorpus(storiesValid)
	require.NoError(t, err)
	ids := make([]int32, len(b))
	for i, c := range b {
		ids[i] = int32(c)
	}
	const context = 256
	ws, err := EvalWindows(ids, context, context)
	require.NoError(t, err)
	require.Len(t, ws, (len(ids)-1+context-1)/context)
	var scored []int32
	total := 0
	for batch := range EvalBatches(ids, ws, context, 16) {
		for i, m := range batch.Mask {
			if m == 1 {
				scored = append(scored, int32(batch.Y[i]))
			}
		}
		total += batch.Scored
	}
	require.Equal(t, len(ids)-1, total)
	require.Equal(t, ids[1:], scored)
}
