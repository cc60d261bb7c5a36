package torch

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// onThreads runs f on a locked OS thread with n intra-op threads, then puts
// the previous count back (for this thread and for later RunLocked calls).
func onThreads(t *testing.T, n int, f func()) {
	t.Helper()
	RunLocked(func() {
		prev := NumThreads()
		require.NoError(t, SetNumThreads(n))
		defer func() { require.NoError(t, SetNumThreads(prev)) }()
		f()
	})
}

// requireNearFloat64 requires each got[i] (a float32 result) to have
// want[i]'s shape and to lie within bound·(1 + max |want[i]|) of it (want in
// float64), a nil want requiring a nil got; it returns the largest error so
// scaled. what names the case in failure messages.
func requireNearFloat64(t *testing.T, got, want []*Tensor, bound float64, what string) float64 {
	t.Helper()
	worst := 0.0
	for i := range want {
		if want[i] == nil {
			require.Nil(t, got[i], "%s: value %d", what, i)
			continue
		}
		require.Equal(t, want[i].Shape(), got[i].Shape(), "%s: value %d", what, i)
		err := got[i].To(Float64).Sub(want[i]).Abs().Amax().Item()
		scale := want[i].Abs().Amax().Item()
		require.Less(t, err, bound*(1+scale), "%s: value %d: max |float32 − float64| %g", what, i, err)
		worst = max(worst, err/(1+scale))
	}
	return worst
}

// f64 builds a float64 tensor from values and a shape (1-d when shape is nil).
func f64(vals []float64, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(vals)}
	}
	return FromSlice(vals, shape)
}

func i64(vals []int64, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(vals)}
	}
	return FromSlice(vals, shape)
}

// requireClose checks shape and values of got against want within tol.
func requireClose(t *testing.T, got *Tensor, shape []int, want []float64, tol float64) {
	t.Helper()
	require.Equal(t, shape, got.Shape(), "shape")
	vals := Values[float64](got)
	require.Len(t, vals, len(want))
	for i := range want {
		if math.IsNaN(want[i]) {
			require.True(t, math.IsNaN(vals[i]), "element %d: got %v, want NaN", i, vals[i])
			continue
		}
		require.InDelta(t, want[i], vals[i], tol, "element %d: got %v, want %v (all: %v)", i, vals[i], want[i], vals)
	}
}

// valueCase is one hand-worked op result.
type valueCase struct {
	name  string
	run   func() *Tensor
	shape []int
	want  []float64
}

func runValueCases(t *testing.T, cases []valueCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			requireClose(t, c.run(), c.shape, c.want, 1e-6)
		})
	}
}
