package torch

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// x23 is [[1 2 3] [4 5 6]].
func x23() *Tensor { return f64([]float64{1, 2, 3, 4, 5, 6}, 2, 3) }

func TestCreation(t *testing.T) {
	runValueCases(t, []valueCase{
		{"zeros", func() *Tensor { return Zeros([]int{2, 2}) }, []int{2, 2}, []float64{0, 0, 0, 0}},
		{"ones", func() *Tensor { return Ones([]int{3}, Int64) }, []int{3}, []float64{1, 1, 1}},
		{"full", func() *Tensor { return Full([]int{2}, 7.5) }, []int{2}, []float64{7.5, 7.5}},
		{"arange", func() *Tensor { return Arange(0, 5, 2) }, []int{3}, []float64{0, 2, 4}},
		{"arange float", func() *Tensor { return Arange(0, 1, 0.25, Float32) }, []int{4}, []float64{0, 0.25, 0.5, 0.75}},
		{"eye", func() *Tensor { return Eye(2, 3) }, []int{2, 3}, []float64{1, 0, 0, 0, 1, 0}},
		{"from slice", x23, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"scalar", func() *Tensor { return Scalar(int32(-4)) }, []int{}, []float64{-4}},
		{"bools", func() *Tensor { return FromSlice([]bool{true, false}, nil) }, []int{2}, []float64{1, 0}},
		{"zeros like", func() *Tensor { return ZerosLike(x23()) }, []int{2, 3}, []float64{0, 0, 0, 0, 0, 0}},
	})

	s := NewScope()
	defer s.Close()
	require.Equal(t, Int64, Arange(0, 3, 1).DType())
	require.Equal(t, Int64, Arange(0, 3, 1).AddScalar(1).DType(), "integral scalars keep integer tensors integral")
	require.Equal(t, Int64, Arange(0, 3, 1).ClampMin(1).DType())
	require.Equal(t, Float32, Arange(0, 3, 1).AddScalar(0.5).DType(), "a fractional scalar promotes, as in PyTorch")
	require.Equal(t, Float64, Ones([]int{1}, Float64).DType())
	require.Equal(t, BFloat16, Zeros([]int{1}, BFloat16).DType())
	require.Equal(t, []int{4, 5}, Empty([]int{4, 5}).Shape())
	require.True(t, Zeros([]int{2}, RequiresGrad).RequiresGrad())

	u := Rand([]int{10000}).Float64s()
	mean := 0.0
	for _, v := range u {
		require.True(t, v >= 0 && v < 1)
		mean += v / float64(len(u))
	}
	require.InDelta(t, 0.5, mean, 0.02)

	n := Randn([]int{20000}, Float64)
	require.InDelta(t, 0.0, n.Mean().Item(), 0.03)
	require.InDelta(t, 1.0, n.Std().Item(), 0.03)

	seen := map[int64]bool{}
	for _, v := range RandInt(3, 7, []int{1000}).Int64s() {
		require.True(t, v >= 3 && v < 7, "randint out of range: %d", v)
		seen[v] = true
	}
	require.Len(t, seen, 4)

	ManualSeed(42)
	a := Randn([]int{8}).Float32s()
	ManualSeed(42)
	b := Randn([]int{8}).Float32s()
	require.Equal(t, a, b, "same seed, same numbers")

	require.Error(t, Try(func() { FromSlice([]float32{1, 2, 3}, []int{2, 2}) }), "3 values cannot fill 2x2")
}

func TestConversion(t *testing.T) {
	runValueCases(t, []valueCase{
		{"to int64 truncates", func() *Tensor { return f64([]float64{1.7, -1.7}).To(Int64) }, []int{2}, []float64{1, -1}},
		{"to bfloat16 rounds", func() *Tensor { return f64([]float64{1.00390625}).To(BFloat16) }, []int{1}, []float64{1}},
		{"contiguous transpose", func() *Tensor { return x23().T().Contiguous() }, []int{3, 2}, []float64{1, 4, 2, 5, 3, 6}},
		{"clone", func() *Tensor { return x23().Clone() }, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
	})

	s := NewScope()
	defer s.Close()
	x := x23()
	require.Equal(t, Float32, x.To(Float32).DType())
	require.False(t, x.T().IsContiguous())
	require.True(t, x.T().Contiguous().IsContiguous())
	require.Equal(t, []int{1, 3}, x.T().Strides())

	c := x.Clone()
	c.Fill(0)
	require.Equal(t, []float64{1, 2, 3, 4, 5, 6}, x.Float64s(), "a clone does not share storage")
	v := x.View(6)
	v.Fill(9)
	require.Equal(t, 9.0, x.Amax().Item(), "a view shares storage")

	w := Ones([]int{2}, RequiresGrad)
	require.False(t, w.MulScalar(2).Detach().RequiresGrad())
	require.Equal(t, int64(5), Scalar(int64(5)).ItemInt())
	require.Equal(t, 2.5, Scalar(2.5).Item())
	require.Equal(t, []bool{true, false}, f64([]float64{1, 0}).Bools())
	require.Equal(t, []float32{1.5, 2}, f64([]float64{1.5, 2}).Float32s())
	require.Error(t, Try(func() { x.Item() }), "item of 6 elements")
}

func TestShapeOps(t *testing.T) {
	runValueCases(t, []valueCase{
		{"view", func() *Tensor { return x23().View(3, 2) }, []int{3, 2}, []float64{1, 2, 3, 4, 5, 6}},
		{"view -1", func() *Tensor { return x23().View(-1) }, []int{6}, []float64{1, 2, 3, 4, 5, 6}},
		{"reshape of transpose", func() *Tensor { return x23().T().Reshape(6) }, []int{6}, []float64{1, 4, 2, 5, 3, 6}},
		{"permute", func() *Tensor { return x23().Permute(1, 0) }, []int{3, 2}, []float64{1, 4, 2, 5, 3, 6}},
		{"transpose", func() *Tensor { return x23().Unsqueeze(0).Transpose(0, 2) }, []int{3, 2, 1}, []float64{1, 4, 2, 5, 3, 6}},
		{"squeeze", func() *Tensor { return x23().View(2, 1, 3).Squeeze(1) }, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"squeeze all", func() *Tensor { return x23().View(1, 2, 1, 3).SqueezeAll() }, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"unsqueeze", func() *Tensor { return x23().Unsqueeze(-1) }, []int{2, 3, 1}, []float64{1, 2, 3, 4, 5, 6}},
		{"flatten", func() *Tensor { return x23().View(1, 2, 3).Flatten(1, 2) }, []int{1, 6}, []float64{1, 2, 3, 4, 5, 6}},
		{"expand", func() *Tensor { return f64([]float64{1, 2, 3}, 1, 3).Expand(2, 3) }, []int{2, 3}, []float64{1, 2, 3, 1, 2, 3}},
		{"cat dim 0", func() *Tensor { return Cat([]*Tensor{x23(), f64([]float64{7, 8, 9}, 1, 3)}, 0) }, []int{3, 3}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"cat dim 1", func() *Tensor { return Cat([]*Tensor{x23(), x23()}, 1) }, []int{2, 6}, []float64{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}},
		{"stack", func() *Tensor { return Stack([]*Tensor{f64([]float64{1, 2}), f64([]float64{3, 4})}, 1) }, []int{2, 2}, []float64{1, 3, 2, 4}},
		{"split first", func() *Tensor { return x23().Split(2, 1)[0] }, []int{2, 2}, []float64{1, 2, 4, 5}},
		{"split rest", func() *Tensor { return x23().Split(2, 1)[1] }, []int{2, 1}, []float64{3, 6}},
		{"chunk", func() *Tensor { return x23().Chunk(3, 1)[2] }, []int{2, 1}, []float64{3, 6}},
		{"split sizes", func() *Tensor { return x23().SplitSizes([]int{1, 2}, 1)[1] }, []int{2, 2}, []float64{2, 3, 5, 6}},
		{"narrow", func() *Tensor { return x23().Narrow(1, 1, 2) }, []int{2, 2}, []float64{2, 3, 5, 6}},
		{"slice step", func() *Tensor { return x23().Slice(1, 0, 3, 2) }, []int{2, 2}, []float64{1, 3, 4, 6}},
		{"select", func() *Tensor { return x23().Select(0, 1) }, []int{3}, []float64{4, 5, 6}},
		{"repeat", func() *Tensor { return f64([]float64{1, 2}).Repeat(2, 2) }, []int{2, 4}, []float64{1, 2, 1, 2, 1, 2, 1, 2}},
		{"index_select", func() *Tensor { return x23().IndexSelect(1, i64([]int64{2, 0})) }, []int{2, 2}, []float64{3, 1, 6, 4}},
		{"gather", func() *Tensor { return x23().Gather(1, i64([]int64{0, 0, 2, 1}, 2, 2)) }, []int{2, 2}, []float64{1, 1, 6, 5}},
		{"scatter", func() *Tensor {
			return Zeros([]int{2, 3}, Float64).Scatter(1, i64([]int64{1, 0}, 2, 1), f64([]float64{9, 8}, 2, 1))
		}, []int{2, 3}, []float64{0, 9, 0, 8, 0, 0}},
		{"scatter_add", func() *Tensor {
			return Ones([]int{1, 3}, Float64).ScatterAdd(1, i64([]int64{0, 0, 2}, 1, 3), f64([]float64{1, 2, 5}, 1, 3))
		}, []int{1, 3}, []float64{4, 1, 6}},
		{"index_put", func() *Tensor {
			return Zeros([]int{3}, Float64).IndexPut([]*Tensor{i64([]int64{0, 2})}, f64([]float64{1, 2}), false)
		}, []int{3}, []float64{1, 0, 2}},
		{"index_put accumulate", func() *Tensor {
			return Zeros([]int{3}, Float64).IndexPut([]*Tensor{i64([]int64{0, 2, 0})}, f64([]float64{1, 2, 3}), true)
		}, []int{3}, []float64{4, 0, 2}},
		{"index rows", func() *Tensor { return x23().Index(i64([]int64{1, 0})) }, []int{2, 3}, []float64{4, 5, 6, 1, 2, 3}},
		{"index columns", func() *Tensor { return x23().Index(nil, i64([]int64{2})) }, []int{2, 1}, []float64{3, 6}},
		{"masked_fill", func() *Tensor { x := x23(); return x.MaskedFill(x.GtScalar(3), -1) }, []int{2, 3}, []float64{1, 2, 3, -1, -1, -1}},
		{"where", func() *Tensor { x := x23(); return Where(x.GtScalar(2), x, x.MulScalar(0)) }, []int{2, 3}, []float64{0, 0, 3, 4, 5, 6}},
		{"triu", func() *Tensor { return Ones([]int{3, 3}).Triu(0) }, []int{3, 3}, []float64{1, 1, 1, 0, 1, 1, 0, 0, 1}},
		{"tril -1", func() *Tensor { return Ones([]int{3, 3}).Tril(-1) }, []int{3, 3}, []float64{0, 0, 0, 1, 0, 0, 1, 1, 0}},
		{"one_hot", func() *Tensor { return i64([]int64{0, 2}).OneHot(3) }, []int{2, 3}, []float64{1, 0, 0, 0, 0, 1}},
	})
}

func TestMath(t *testing.T) {
	gelu := func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
	geluTanh := func(x float64) float64 {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	v := func() *Tensor { return f64([]float64{-1, 0, 0.5, 2}) }
	cases := []valueCase{
		{"add broadcast", func() *Tensor { return x23().Add(f64([]float64{10, 20, 30})) }, []int{2, 3}, []float64{11, 22, 33, 14, 25, 36}},
		{"sub", func() *Tensor { return x23().Sub(x23().MulScalar(2)) }, []int{2, 3}, []float64{-1, -2, -3, -4, -5, -6}},
		{"mul", func() *Tensor { return x23().Mul(f64([]float64{2, 1}, 2, 1)) }, []int{2, 3}, []float64{2, 4, 6, 4, 5, 6}},
		{"div", func() *Tensor { return x23().Div(f64([]float64{2})) }, []int{2, 3}, []float64{0.5, 1, 1.5, 2, 2.5, 3}},
		{"pow", func() *Tensor { return x23().Pow(f64([]float64{2})) }, []int{2, 3}, []float64{1, 4, 9, 16, 25, 36}},
		{"int plus int scalar stays int", func() *Tensor { return i64([]int64{3, 4}).AddScalar(2).Mul(Scalar(int64(1))) }, []int{2}, []float64{5, 6}},
		{"int div is true division", func() *Tensor { return i64([]int64{3, 4}).Div(i64([]int64{2, 2})) }, []int{2}, []float64{1.5, 2}},
		{"maximum", func() *Tensor { return v().Maximum(f64([]float64{0})) }, []int{4}, []float64{0, 0, 0.5, 2}},
		{"minimum", func() *Tensor { return v().Minimum(f64([]float64{0})) }, []int{4}, []float64{-1, 0, 0, 0}},
		{"remainder", func() *Tensor { return f64([]float64{-3, 3}).RemainderScalar(2) }, []int{2}, []float64{1, 1}},
		{"floor_divide", func() *Tensor { return f64([]float64{-3, 3}).FloorDivide(f64([]float64{2})) }, []int{2}, []float64{-2, 1}},
		{"atan2", func() *Tensor { return f64([]float64{1}).Atan2(f64([]float64{1})) }, []int{1}, []float64{math.Pi / 4}},
		{"add scalar", func() *Tensor { return v().AddScalar(1) }, []int{4}, []float64{0, 1, 1.5, 3}},
		{"sub scalar", func() *Tensor { return v().SubScalar(1) }, []int{4}, []float64{-2, -1, -0.5, 1}},
		{"rsub scalar", func() *Tensor { return v().RSubScalar(1) }, []int{4}, []float64{2, 1, 0.5, -1}},
		{"mul scalar", func() *Tensor { return v().MulScalar(-2) }, []int{4}, []float64{2, 0, -1, -4}},
		{"div scalar", func() *Tensor { return v().DivScalar(4) }, []int{4}, []float64{-0.25, 0, 0.125, 0.5}},
		{"rdiv scalar", func() *Tensor { return f64([]float64{2, 4}).RDivScalar(1) }, []int{2}, []float64{0.5, 0.25}},
		{"pow scalar", func() *Tensor { return v().PowScalar(2) }, []int{4}, []float64{1, 0, 0.25, 4}},
		{"rpow scalar", func() *Tensor { return f64([]float64{0, 3}).RPowScalar(2) }, []int{2}, []float64{1, 8}},
		{"add scaled", func() *Tensor { return v().AddScaled(Ones([]int{4}, Float64), 0.5) }, []int{4}, []float64{-0.5, 0.5, 1, 2.5}},
		{"neg", func() *Tensor { return v().Neg() }, []int{4}, []float64{1, 0, -0.5, -2}},
		{"exp", func() *Tensor { return f64([]float64{0, 1}).Exp() }, []int{2}, []float64{1, math.E}},
		{"log", func() *Tensor { return f64([]float64{1, math.E}).Log() }, []int{2}, []float64{0, 1}},
		{"log1p", func() *Tensor { return f64([]float64{0, 1}).Log1p() }, []int{2}, []float64{0, math.Ln2}},
		{"expm1", func() *Tensor { return f64([]float64{0, 1}).Expm1() }, []int{2}, []float64{0, math.E - 1}},
		{"sqrt", func() *Tensor { return f64([]float64{4, 9}).Sqrt() }, []int{2}, []float64{2, 3}},
		{"rsqrt", func() *Tensor { return f64([]float64{4, 0.25}).Rsqrt() }, []int{2}, []float64{0.5, 2}},
		{"abs", func() *Tensor { return v().Abs() }, []int{4}, []float64{1, 0, 0.5, 2}},
		{"square", func() *Tensor { return v().Square() }, []int{4}, []float64{1, 0, 0.25, 4}},
		{"reciprocal", func() *Tensor { return f64([]float64{2, -4}).Reciprocal() }, []int{2}, []float64{0.5, -0.25}},
		{"sign", func() *Tensor { return v().Sign() }, []int{4}, []float64{-1, 0, 1, 1}},
		{"sin cos", func() *Tensor { return f64([]float64{math.Pi / 2}).Sin().Add(f64([]float64{0}).Cos()) }, []int{1}, []float64{2}},
		{"floor ceil round", func() *Tensor {
			return f64([]float64{-1.5, 2.5}).Floor().Add(f64([]float64{0.2, 0.2}).Ceil()).Add(f64([]float64{2.5, 3.5}).Round())
		}, []int{2}, []float64{-2 + 1 + 2, 2 + 1 + 4}},
		{"erf", func() *Tensor { return f64([]float64{0.5}).Erf() }, []int{1}, []float64{math.Erf(0.5)}},
		{"relu", func() *Tensor { return v().Relu() }, []int{4}, []float64{0, 0, 0.5, 2}},
		{"gelu", func() *Tensor { return v().Gelu() }, []int{4}, []float64{gelu(-1), 0, gelu(0.5), gelu(2)}},
		{"gelu tanh", func() *Tensor { return v().GeluTanh() }, []int{4}, []float64{geluTanh(-1), 0, geluTanh(0.5), geluTanh(2)}},
		{"silu", func() *Tensor { return v().Silu() }, []int{4}, []float64{-sig(-1), 0, 0.5 * sig(0.5), 2 * sig(2)}},
		{"tanh", func() *Tensor { return v().Tanh() }, []int{4}, []float64{math.Tanh(-1), 0, math.Tanh(0.5), math.Tanh(2)}},
		{"sigmoid", func() *Tensor { return v().Sigmoid() }, []int{4}, []float64{sig(-1), 0.5, sig(0.5), sig(2)}},
		{"log sigmoid", func() *Tensor { return v().LogSigmoid() }, []int{4}, []float64{math.Log(sig(-1)), math.Log(0.5), math.Log(sig(0.5)), math.Log(sig(2))}},
		{"softplus", func() *Tensor { return f64([]float64{0, 1, 30}).Softplus() }, []int{3}, []float64{math.Ln2, math.Log1p(math.E), 30}},
		{"clamp", func() *Tensor { return v().Clamp(-0.5, 1) }, []int{4}, []float64{-0.5, 0, 0.5, 1}},
		{"clamp min", func() *Tensor { return v().ClampMin(0.25) }, []int{4}, []float64{0.25, 0.25, 0.5, 2}},
		{"clamp max", func() *Tensor { return v().ClampMax(0.25) }, []int{4}, []float64{-1, 0, 0.25, 0.25}},
		{"comparisons", func() *Tensor {
			a, b := f64([]float64{1, 2, 3}), f64([]float64{2, 2, 2})
			return Stack([]*Tensor{a.Eq(b), a.Ne(b), a.Lt(b), a.Le(b), a.Gt(b), a.Ge(b)}, 0)
		}, []int{6, 3}, []float64{0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1}},
		{"scalar comparisons", func() *Tensor {
			a := f64([]float64{1, 2, 3})
			return Stack([]*Tensor{a.EqScalar(2), a.NeScalar(2), a.LtScalar(2), a.LeScalar(2), a.GtScalar(2), a.GeScalar(2)}, 0)
		}, []int{6, 3}, []float64{0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1}},
		{"logic", func() *Tensor {
			a, b := FromSlice([]bool{true, true, false}, nil), FromSlice([]bool{true, false, false}, nil)
			return Stack([]*Tensor{a.LogicalAnd(b), a.LogicalOr(b), a.LogicalNot()}, 0)
		}, []int{3, 3}, []float64{1, 0, 0, 1, 1, 0, 0, 0, 1}},
		{"isnan isfinite", func() *Tensor {
			a := f64([]float64{math.NaN(), math.Inf(1), 1})
			return Stack([]*Tensor{a.IsNaN(), a.IsFinite()}, 0)
		}, []int{2, 3}, []float64{1, 0, 0, 0, 0, 1}},
		{"matmul", func() *Tensor { return f64([]float64{1, 2, 3, 4}, 2, 2).Matmul(f64([]float64{5, 6, 7, 8}, 2, 2)) }, []int{2, 2}, []float64{19, 22, 43, 50}},
		{"matmul vector", func() *Tensor { return x23().Matmul(f64([]float64{1, 0, -1})) }, []int{2}, []float64{-2, -2}},
		{"matmul batched broadcast", func() *Tensor {
			return Stack([]*Tensor{Eye(2, 2, Float64), Eye(2, 2, Float64).MulScalar(2)}, 0).Matmul(f64([]float64{1, 2, 3, 4}, 2, 2))
		}, []int{2, 2, 2}, []float64{1, 2, 3, 4, 2, 4, 6, 8}},
		{"bmm", func() *Tensor {
			return f64([]float64{1, 2, 3, 4}, 2, 1, 2).Bmm(f64([]float64{1, 1, 2, 0}, 2, 2, 1))
		}, []int{2, 1, 1}, []float64{3, 6}},
		{"linear", func() *Tensor {
			return Linear(f64([]float64{1, 2}, 1, 2), f64([]float64{1, 0, 0, 1, 1, 1}, 3, 2), f64([]float64{0.5, 0, -1}))
		}, []int{1, 3}, []float64{1.5, 2, 2}},
		{"linear no bias", func() *Tensor { return Linear(f64([]float64{1, 2}, 1, 2), f64([]float64{3, 4}, 1, 2), nil) }, []int{1, 1}, []float64{11}},
		{"einsum matmul", func() *Tensor {
			return Einsum("ij,jk->ik", f64([]float64{1, 2, 3, 4}, 2, 2), f64([]float64{5, 6, 7, 8}, 2, 2))
		}, []int{2, 2}, []float64{19, 22, 43, 50}},
		{"einsum trace", func() *Tensor { return Einsum("ii->", f64([]float64{1, 2, 3, 4}, 2, 2)) }, []int{}, []float64{5}},
	}
	runValueCases(t, cases)

	s := NewScope()
	defer s.Close()
	a := f64([]float64{1, 4})
	a.AddInPlace(f64([]float64{1, 1})).MulScalarInPlace(2).AddScalarInPlace(-1).SqrtInPlace()
	require.InDeltaSlice(t, []float64{math.Sqrt(3), 3}, a.Float64s(), 1e-12)
	a.AddScaledInPlace(f64([]float64{1, 1}), -1).MulInPlace(f64([]float64{2, 2})).ExpInPlace()
	require.InDeltaSlice(t, []float64{math.Exp(2 * (math.Sqrt(3) - 1)), math.Exp(4)}, a.Float64s(), 1e-9)
}

func TestReductions(t *testing.T) {
	lse := func(xs ...float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += math.Exp(x)
		}
		return math.Log(s)
	}
	runValueCases(t, []valueCase{
		{"sum all", func() *Tensor { return x23().Sum() }, []int{}, []float64{21}},
		{"sum dim", func() *Tensor { return x23().Sum(1) }, []int{2}, []float64{6, 15}},
		{"sum keep", func() *Tensor { return x23().SumKeep(1) }, []int{2, 1}, []float64{6, 15}},
		{"sum keep all", func() *Tensor { return x23().SumKeep() }, []int{1, 1}, []float64{21}},
		{"sum two dims", func() *Tensor { return x23().View(1, 2, 3).Sum(0, 2) }, []int{2}, []float64{6, 15}},
		{"mean", func() *Tensor { return x23().Mean(0) }, []int{3}, []float64{2.5, 3.5, 4.5}},
		{"mean keep", func() *Tensor { return x23().MeanKeep(-1) }, []int{2, 1}, []float64{2, 5}},
		{"amax", func() *Tensor { return x23().Amax(1) }, []int{2}, []float64{3, 6}},
		{"amax keep", func() *Tensor { return x23().AmaxKeep(0) }, []int{1, 3}, []float64{4, 5, 6}},
		{"amin", func() *Tensor { return x23().Amin(0) }, []int{3}, []float64{1, 2, 3}},
		{"amin all", func() *Tensor { return x23().Amin() }, []int{}, []float64{1}},
		{"logsumexp", func() *Tensor { return x23().LogSumExp(1) }, []int{2}, []float64{lse(1, 2, 3), lse(4, 5, 6)}},
		{"logsumexp all", func() *Tensor { return x23().LogSumExp() }, []int{}, []float64{lse(1, 2, 3, 4, 5, 6)}},
		{"prod", func() *Tensor { return x23().Prod() }, []int{}, []float64{720}},
		{"prod dim", func() *Tensor { return x23().Prod(1) }, []int{2}, []float64{6, 120}},
		{"var", func() *Tensor { return x23().Var() }, []int{}, []float64{3.5}},
		{"var dim", func() *Tensor { return x23().Var(1) }, []int{2}, []float64{1, 1}},
		{"std", func() *Tensor { return x23().Std() }, []int{}, []float64{math.Sqrt(3.5)}},
		{"all", func() *Tensor { return x23().GtScalar(3).All(1) }, []int{2}, []float64{0, 1}},
		{"any", func() *Tensor { return x23().GtScalar(5).Any() }, []int{}, []float64{1}},
		{"argmax", func() *Tensor { return f64([]float64{1, 9, 3, 7, 2, 8}, 2, 3).Argmax(1, false) }, []int{2}, []float64{1, 2}},
		{"argmax all", func() *Tensor { return f64([]float64{1, 9, 3, 7, 2, 8}, 2, 3).ArgmaxAll() }, []int{}, []float64{1}},
		{"argmin", func() *Tensor { return f64([]float64{1, 9, 3, 7, 2, 8}, 2, 3).Argmin(0, true) }, []int{1, 3}, []float64{0, 1, 0}},
		{"norm", func() *Tensor { return f64([]float64{3, 4}).Norm(2) }, []int{}, []float64{5}},
		{"norm dim", func() *Tensor { return f64([]float64{3, -4, 1, 1}, 2, 2).Norm(1, 1) }, []int{2}, []float64{7, 2}},
		{"norm keep", func() *Tensor { return f64([]float64{3, 4, 6, 8}, 2, 2).NormKeep(2, 1) }, []int{2, 1}, []float64{5, 10}},
		{"cumsum", func() *Tensor { return x23().Cumsum(1) }, []int{2, 3}, []float64{1, 3, 6, 4, 9, 15}},
	})

	s := NewScope()
	defer s.Close()
	vals, idx := f64([]float64{1, 9, 3, 7, 2, 8}, 2, 3).MaxDim(1, false)
	require.Equal(t, []float64{9, 8}, vals.Float64s())
	require.Equal(t, []int64{1, 2}, idx.Int64s())
	vals, idx = f64([]float64{1, 9, 3, 7, 2, 8}, 2, 3).MinDim(0, true)
	require.Equal(t, []int{1, 3}, vals.Shape())
	require.Equal(t, []float64{1, 2, 3}, vals.Float64s())
	require.Equal(t, []int64{0, 1, 0}, idx.Int64s())

	vals, idx = f64([]float64{1, 5, 3, 4}).TopK(2, 0)
	require.Equal(t, []float64{5, 4}, vals.Float64s())
	require.Equal(t, []int64{1, 3}, idx.Int64s())
	vals, idx = f64([]float64{1, 5, 3, 4}).BottomK(2, 0)
	require.Equal(t, []float64{1, 3}, vals.Float64s())
	require.Equal(t, []int64{0, 2}, idx.Int64s())
	vals, idx = f64([]float64{1, 5, 3, 4}).Sort(0, true)
	require.Equal(t, []float64{5, 4, 3, 1}, vals.Float64s())
	require.Equal(t, []int64{1, 3, 2, 0}, idx.Int64s())

	require.Equal(t, []int64{1, 1, 1}, f64([]float64{0, 1, 0}).Multinomial(3, true).Int64s())
	draws := f64([]float64{0.2, 0.8}).Multinomial(20000, true).Float64s()
	mean := 0.0
	for _, d := range draws {
		mean += d / float64(len(draws))
	}
	require.InDelta(t, 0.8, mean, 0.015)
	perm := f64([]float64{1, 1, 1, 1}).Multinomial(4, false).Int64s()
	require.ElementsMatch(t, []int64{0, 1, 2, 3}, perm, "without replacement every index once")
}

func TestFunctional(t *testing.T) {
	softmax := func(xs ...float64) []float64 {
		m, s := math.Inf(-1), 0.0
		for _, x := range xs {
			m = math.Max(m, x)
		}
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = math.Exp(x - m)
			s += out[i]
		}
		for i := range out {
			out[i] /= s
		}
		return out
	}
	p := softmax(1, 2, 3)
	logp := []float64{math.Log(p[0]), math.Log(p[1]), math.Log(p[2])}
	ln := func(xs []float64, eps float64) []float64 {
		mean, v := 0.0, 0.0
		for _, x := range xs {
			mean += x / float64(len(xs))
		}
		for _, x := range xs {
			v += (x - mean) * (x - mean) / float64(len(xs))
		}
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = (x - mean) / math.Sqrt(v+eps)
		}
		return out
	}
	n := ln([]float64{1, 2, 3}, 1e-5)
	smooth := 0.9*(-logp[2]) + 0.1*(-(logp[0]+logp[1]+logp[2])/3)

	runValueCases(t, []valueCase{
		{"softmax", func() *Tensor { return f64([]float64{1, 2, 3}).Softmax(0) }, []int{3}, p},
		{"softmax rows", func() *Tensor { return f64([]float64{1, 2, 3, 1, 1, 1}, 2, 3).Softmax(1) }, []int{2, 3}, append(append([]float64{}, p...), 1.0/3, 1.0/3, 1.0/3)},
		{"log_softmax", func() *Tensor { return f64([]float64{1, 2, 3}).LogSoftmax(-1) }, []int{3}, logp},
		{"dropout eval", func() *Tensor { return x23().Dropout(0.5, false) }, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"embedding", func() *Tensor { return Embedding(x23().T().Contiguous(), i64([]int64{2, 0})) }, []int{2, 2}, []float64{3, 6, 1, 4}},
		{"layer_norm", func() *Tensor { return LayerNorm(f64([]float64{1, 2, 3}), 1, nil, nil, 1e-5) }, []int{3}, n},
		{"layer_norm affine", func() *Tensor {
			return LayerNorm(f64([]float64{1, 2, 3}, 1, 3), 1, f64([]float64{2, 2, 2}), f64([]float64{1, 0, 0}), 1e-5)
		}, []int{1, 3}, []float64{2*n[0] + 1, 2 * n[1], 2 * n[2]}},
		{"layer_norm two dims", func() *Tensor { return LayerNorm(f64([]float64{1, 2, 3, 4}, 1, 2, 2), 2, nil, nil, 0) }, []int{1, 2, 2}, ln([]float64{1, 2, 3, 4}, 0)},
		{"cross_entropy", func() *Tensor { return CrossEntropy(f64([]float64{1, 2, 3}, 1, 3), i64([]int64{2})) }, []int{}, []float64{-logp[2]}},
		{"cross_entropy ignore", func() *Tensor {
			o := DefaultCrossEntropy
			o.IgnoreIndex = 0
			return CrossEntropyWith(f64([]float64{1, 2, 3, 5, 5, 5}, 2, 3), i64([]int64{2, 0}), o)
		}, []int{}, []float64{-logp[2]}},
		{"cross_entropy default ignore -100", func() *Tensor {
			return CrossEntropy(f64([]float64{1, 2, 3, 5, 5, 5}, 2, 3), i64([]int64{0, -100}))
		}, []int{}, []float64{-logp[0]}},
		{"cross_entropy none", func() *Tensor {
			o := DefaultCrossEntropy
			o.Reduction = ReduceNone
			return CrossEntropyWith(f64([]float64{1, 2, 3, 1, 2, 3}, 2, 3), i64([]int64{2, 1}), o)
		}, []int{2}, []float64{-logp[2], -logp[1]}},
		{"cross_entropy sum", func() *Tensor {
			o := DefaultCrossEntropy
			o.Reduction = ReduceSum
			return CrossEntropyWith(f64([]float64{1, 2, 3, 1, 2, 3}, 2, 3), i64([]int64{2, 1}), o)
		}, []int{}, []float64{-logp[2] - logp[1]}},
		{"cross_entropy smoothing", func() *Tensor {
			o := DefaultCrossEntropy
			o.LabelSmoothing = 0.1
			return CrossEntropyWith(f64([]float64{1, 2, 3}, 1, 3), i64([]int64{2}), o)
		}, []int{}, []float64{smooth}},
		{"cross_entropy class weight", func() *Tensor {
			o := DefaultCrossEntropy
			o.Weight = f64([]float64{1, 1, 3})
			// weighted mean: (3·(-logp2) + 1·(-logp1)) / (3 + 1)
			return CrossEntropyWith(f64([]float64{1, 2, 3, 1, 2, 3}, 2, 3), i64([]int64{2, 1}), o)
		}, []int{}, []float64{(3*-logp[2] + -logp[1]) / 4}},
		{"mse", func() *Tensor { return MSELoss(f64([]float64{1, 2}), f64([]float64{3, 5}), ReduceMean) }, []int{}, []float64{6.5}},
		{"mse none", func() *Tensor { return MSELoss(f64([]float64{1, 2}), f64([]float64{3, 5}), ReduceNone) }, []int{2}, []float64{4, 9}},
		{"kl_div sum", func() *Tensor {
			return KLDiv(f64([]float64{math.Log(0.5), math.Log(0.5)}), f64([]float64{0.25, 0.75}), ReduceSum, false)
		}, []int{}, []float64{0.25*math.Log(0.25/0.5) + 0.75*math.Log(0.75/0.5)}},
		{"kl_div log target", func() *Tensor {
			return KLDiv(f64([]float64{math.Log(0.5), math.Log(0.5)}), f64([]float64{math.Log(0.25), math.Log(0.75)}), ReduceSum, true)
		}, []int{}, []float64{0.25*math.Log(0.25/0.5) + 0.75*math.Log(0.75/0.5)}},
	})

	s := NewScope()
	defer s.Close()
	d := Ones([]int{20000}, Float64).Dropout(0.25, true).Float64s()
	zeros := 0
	for _, v := range d {
		require.True(t, v == 0 || math.Abs(v-1/0.75) < 1e-12, "dropout keeps 1/(1-p)-scaled values, got %v", v)
		if v == 0 {
			zeros++
		}
	}
	require.InDelta(t, 0.25, float64(zeros)/float64(len(d)), 0.015)
}

// naiveAttention is softmax(q kᵀ/√E [+ causal mask]) v over [L,E] slices.
func naiveAttention(q, k, v []float64, L, S, E int, causal bool) []float64 {
	out := make([]float64, L*E)
	for i := 0; i < L; i++ {
		scores := make([]float64, S)
		m := math.Inf(-1)
		for j := 0; j < S; j++ {
			if causal && j > i {
				scores[j] = math.Inf(-1)
				continue
			}
			for e := 0; e < E; e++ {
				scores[j] += q[i*E+e] * k[j*E+e]
			}
			scores[j] /= math.Sqrt(float64(E))
			m = math.Max(m, scores[j])
		}
		sum := 0.0
		for j := range scores {
			scores[j] = math.Exp(scores[j] - m)
			sum += scores[j]
		}
		for j := 0; j < S; j++ {
			for e := 0; e < E; e++ {
				out[i*E+e] += scores[j] / sum * v[j*E+e]
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	s := NewScope()
	defer s.Close()
	const L, E = 4, 3
	q := []float64{0.1, -0.2, 0.3, 0.5, 0.4, -0.1, -0.3, 0.2, 0.9, 0.0, 0.7, -0.5}
	k := []float64{0.2, 0.1, -0.4, -0.6, 0.3, 0.2, 0.5, -0.5, 0.1, 0.3, 0.3, 0.3}
	v := []float64{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}
	for _, causal := range []bool{false, true} {
		got := Attention(f64(q, 1, L, E), f64(k, 1, L, E), f64(v, 1, L, E), nil, 0, causal)
		requireClose(t, got, []int{1, L, E}, naiveAttention(q, k, v, L, L, E, causal), 1e-12)
	}
	// A boolean mask (true = attend) equal to the causal one gives the same result.
	mask := Ones([]int{L, L}, Bool).Tril(0)
	got := Attention(f64(q, 1, L, E), f64(k, 1, L, E), f64(v, 1, L, E), mask, 0, false)
	requireClose(t, got, []int{1, L, E}, naiveAttention(q, k, v, L, L, E, true), 1e-12)
	require.ErrorIs(t, Try(func() { Attention(f64(q, 1, L, E), f64(k, 1, L, E), f64(v, 1, L, E), mask, 0, true) }), ErrValue)
}

func TestUnbind(t *testing.T) {
	for _, dim := range []int{0, 1, -1} {
		WithScope(func() {
			x := Randn([]int{3, 2, 4}, RequiresGrad)
			parts := x.Unbind(dim)
			d := dim
			if d < 0 {
				d += 3
			}
			if len(parts) != x.Size(d) {
				t.Fatalf("dim %d: %d parts, want %d", dim, len(parts), x.Size(d))
			}
			// Σ_i (i+1)·sum(part_i): the gradient is i+1 along dim.
			var loss *Tensor
			for i, p := range parts {
				if got, want := p.Float32s(), x.Select(d, i).Contiguous().Float32s(); !equalFloat32s(got, want) {
					t.Errorf("dim %d part %d: %v, want %v", dim, i, got, want)
				}
				term := p.Sum().MulScalar(float64(i + 1))
				if loss == nil {
					loss = term
				} else {
					loss = loss.Add(term)
				}
			}
			loss.Backward()
			g := x.Grad()
			for i := 0; i < x.Size(d); i++ {
				for _, v := range g.Select(d, i).Contiguous().Float32s() {
					if v != float32(i+1) {
						t.Fatalf("dim %d: gradient %v in slice %d, want %d", dim, v, i, i+1)
					}
				}
			}
		})
	}
}

func equalFloat32s(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
