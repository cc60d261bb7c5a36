package torch

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		name string
		kind *Error
		op   string
		f    func()
	}{
		{"matmul shapes", ErrShape, "matmul", func() { Ones([]int{2, 3}).Matmul(Ones([]int{2, 3})) }},
		{"broadcast shapes", ErrShape, "add", func() { Ones([]int{2}).Add(Ones([]int{3})) }},
		{"view size", ErrShape, "view", func() { Ones([]int{2, 3}).View(4) }},
		{"cat shapes", ErrShape, "cat", func() { Cat([]*Tensor{Ones([]int{2, 3}), Ones([]int{2, 2})}, 0) }},
		{"from slice size", ErrShape, "from_slice", func() { FromSlice([]float32{1, 2, 3}, []int{2, 2}) }},
		{"matmul dtypes", ErrDType, "matmul", func() { Ones([]int{2, 2}).Matmul(Ones([]int{2, 2}, Float64)) }},
		{"float indices", ErrDType, "index_select", func() { Ones([]int{3}).IndexSelect(0, Ones([]int{1})) }},
		{"float targets", ErrDType, "cross_entropy", func() { CrossEntropy(Ones([]int{2, 3}), Ones([]int{2})) }},
		{"cuda tensor in CPU build", ErrNoCUDA, "zeros", func() { Zeros([]int{2}, CUDA(0)) }},
		{"to cuda in CPU build", ErrNoCUDA, "to", func() { Ones([]int{2}).To(CUDA(0)) }},
		{"select out of range", ErrIndex, "select", func() { Ones([]int{2}).Select(0, 5) }},
		{"embedding out of range", ErrIndex, "embedding", func() { Embedding(Ones([]int{3, 2}), i64([]int64{7})) }},
		{"use after free", ErrValue, "tensor", func() { x := Ones([]int{2}); x.Free(); x.Exp() }},
		{"nil tensor", ErrValue, "tensor", func() { var x *Tensor; x.Exp() }},
		{"bad dropout", ErrValue, "dropout", func() { Ones([]int{2}).Dropout(1.5, true) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.kind == ErrNoCUDA && BuiltWithCUDA() {
				t.Skip("this shim is a CUDA build")
			}
			s := NewScope()
			defer s.Close()
			before := LiveTensors()
			err := Try(c.f)
			require.Error(t, err)
			require.ErrorIs(t, err, c.kind, "got %v", err)
			var te *Error
			require.True(t, errors.As(err, &te))
			require.Equal(t, c.op, te.Op)
			require.NotContains(t, te.Msg, "frame #", "messages carry no C++ backtrace")
			// The failed op left no handle behind and the process goes on.
			require.LessOrEqual(t, LiveTensors()-before, int64(s.Len()))
			require.Equal(t, 6.0, Ones([]int{2, 3}).Sum().Item())
		})
	}
}

func TestCUDAInCPUBuild(t *testing.T) {
	if BuiltWithCUDA() {
		t.Skip("this shim is a CUDA build")
	}
	require.Equal(t, 0, CUDADeviceCount())
	_, err := CUDADeviceInfo(0)
	require.ErrorIs(t, err, ErrNoCUDA)
	require.ErrorIs(t, Synchronize(CUDA(0)), ErrNoCUDA)
	require.NoError(t, Synchronize(CPU))
}

func TestTryPassesOtherPanics(t *testing.T) {
	require.PanicsWithValue(t, "not a torch error", func() {
		_ = Try(func() { panic("not a torch error") })
	})
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want DType
	}{{"float32", Float32}, {"bf16", BFloat16}, {"torch.int64", Int64}, {"bool", Bool}, {"half", Float16}} {
		got, err := ParseDType(c.in)
		require.NoError(t, err)
		require.Equal(t, c.want, got)
	}
	_, err := ParseDType("complex64")
	require.ErrorContains(t, err, `unknown dtype "complex64"`)

	for _, c := range []struct {
		in   string
		want Device
	}{{"cpu", CPU}, {"cuda", CUDA(0)}, {"cuda:3", CUDA(3)}} {
		got, err := ParseDevice(c.in)
		require.NoError(t, err)
		require.Equal(t, c.want, got)
		require.Equal(t, c.want, must(ParseDevice(got.String())))
	}
	_, err = ParseDevice("tpu")
	require.ErrorContains(t, err, `unknown device "tpu"`)
	_, err = ParseDevice("cuda:x")
	require.Error(t, err)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
