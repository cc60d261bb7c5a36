package torch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScope(t *testing.T) {
	base := LiveTensors()

	outer := NewScope()
	a := Ones([]int{2})
	var kept, retained *Tensor
	WithScope(func() {
		b := a.AddScalar(1)
		kept = b.MulScalar(2)
		retained = b.MulScalar(3).Retain()
		_ = b.Exp()
		require.Equal(t, base+5, LiveTensors())
		current.Keep(kept)
	})
	// The inner scope freed b and exp(b); kept moved to outer, retained is unowned.
	require.Equal(t, base+3, LiveTensors())
	require.Equal(t, 2, outer.Len())
	require.Equal(t, []float32{4, 4}, kept.Float32s())
	outer.Close()
	require.Equal(t, base+1, LiveTensors(), "only the retained tensor survives")
	require.Equal(t, []float32{6, 6}, retained.Float32s())
	retained.Free()
	retained.Free() // twice is a no-op
	require.Equal(t, base, LiveTensors())
	require.ErrorIs(t, Try(func() { kept.Exp() }), ErrValue, "use after scope close is an error, not a crash")

	// Free inside a scope removes the tensor from it.
	WithScope(func() {
		x := Zeros([]int{3})
		x.Free()
		require.Equal(t, 0, current.Len())
	})
	require.Equal(t, base, LiveTensors())

	// Keep in the outermost scope makes the tensor unowned.
	s := NewScope()
	y := Ones([]int{1})
	s.Keep(y)
	s.Close()
	require.Equal(t, base+1, LiveTensors())
	y.Free()

	// A scope closes even when its body panics, and scopes must nest.
	require.Error(t, Try(func() { WithScope(func() { Ones([]int{2}).Matmul(Ones([]int{3})) }) }))
	require.Nil(t, current)
	s1 := NewScope()
	s2 := NewScope()
	require.Panics(t, func() { s1.Close() })
	s2.Close()
	s1.Close()
	s1.Close()
	require.Equal(t, base, LiveTensors())
}

// TestScopeStaysFlat: results freed right after use leave no slots behind.
func TestScopeStaysFlat(t *testing.T) {
	s := NewScope()
	defer s.Close()
	x := Ones([]int{2})
	for i := 0; i < 1000; i++ {
		x.AddScalar(1).Free()
	}
	require.Len(t, s.tensors, 1)
}

func TestShareAndMultiOutput(t *testing.T) {
	base := LiveTensors()
	WithScope(func() {
		x := f64([]float64{3, 1, 2})
		y := x.Share()
		y.Fill(5)
		require.Equal(t, []float64{5, 5, 5}, x.Float64s(), "a shared handle is the same tensor")
		parts := x.Split(1, 0)
		require.Len(t, parts, 3)
		v, i := x.Sort(0, false)
		_, _ = v, i
	})
	require.Equal(t, base, LiveTensors())
}
