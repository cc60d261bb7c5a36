package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

var unaryNames = [capi.UnaryCount]string{
	capi.Neg: "neg", capi.Exp: "exp", capi.Log: "log", capi.Sqrt: "sqrt", capi.Rsqrt: "rsqrt",
	capi.Abs: "abs", capi.Relu: "relu", capi.Gelu: "gelu", capi.GeluTanh: "gelu_tanh", capi.Silu: "silu",
	capi.Tanh: "tanh", capi.Sigmoid: "sigmoid", capi.Softplus: "softplus", capi.Sin: "sin", capi.Cos: "cos",
	capi.Reciprocal: "reciprocal", capi.Square: "square", capi.Sign: "sign", capi.Floor: "floor",
	capi.Ceil: "ceil", capi.Round: "round", capi.LogicalNot: "logical_not", capi.Log1p: "log1p",
	capi.Expm1: "expm1", capi.Erf: "erf", capi.IsNaN: "isnan", capi.IsFinite: "isfinite",
	capi.LogSigmoid: "log_sigmoid",
}

var binaryNames = [capi.BinaryCount]string{
	capi.Add: "add", capi.Sub: "sub", capi.Mul: "mul", capi.Div: "div", capi.Pow: "pow",
	capi.Maximum: "maximum", capi.Minimum: "minimum", capi.Eq: "eq", capi.Ne: "ne", capi.Lt: "lt",
	capi.Le: "le", capi.Gt: "gt", capi.Ge: "ge", capi.LogicalAnd: "logical_and",
	capi.LogicalOr: "logical_or", capi.Remainder: "remainder", capi.FloorDivide: "floor_divide",
	capi.Atan2: "atan2",
}

func (t *Tensor) unary(op int32) *Tensor {
	h, err := capi.Unary(op, t.handle())
	return wrap(unaryNames[op], h, err)
}

func (t *Tensor) unaryInPlace(op int32) *Tensor {
	fail(unaryNames[op]+"_", capi.UnaryInPlace(op, t.handle()))
	return t
}

func (t *Tensor) binary(op int32, o *Tensor) *Tensor {
	h, err := capi.Binary(op, t.handle(), o.handle())
	return wrap(binaryNames[op], h, err)
}

func (t *Tensor) binaryScalar(op int32, s float64, reversed bool) *Tensor {
	h, err := capi.BinaryScalar(op, t.handle(), s, reversed)
	return wrap(binaryNames[op], h, err)
}

// Neg is -t.
func (t *Tensor) Neg() *Tensor { return t.unary(capi.Neg) }

// Exp is e^t.
func (t *Tensor) Exp() *Tensor { return t.unary(capi.Exp) }

// Log is the natural logarithm.
func (t *Tensor) Log() *Tensor { return t.unary(capi.Log) }

// Log1p is log(1 + t).
func (t *Tensor) Log1p() *Tensor { return t.unary(capi.Log1p) }

// Expm1 is e^t - 1.
func (t *Tensor) Expm1() *Tensor { return t.unary(capi.Expm1) }

// Sqrt is the square root.
func (t *Tensor) Sqrt() *Tensor { return t.unary(capi.Sqrt) }

// Rsqrt is 1/sqrt(t).
func (t *Tensor) Rsqrt() *Tensor { return t.unary(capi.Rsqrt) }

// Abs is |t|.
func (t *Tensor) Abs() *Tensor { return t.unary(capi.Abs) }

// Square is t².
func (t *Tensor) Square() *Tensor { return t.unary(capi.Square) }

// Reciprocal is 1/t.
func (t *Tensor) Reciprocal() *Tensor { return t.unary(capi.Reciprocal) }

// Sign is -1, 0 or 1 by sign.
func (t *Tensor) Sign() *Tensor { return t.unary(capi.Sign) }

// Sin is the sine.
func (t *Tensor) Sin() *Tensor { return t.unary(capi.Sin) }

// Cos is the cosine.
func (t *Tensor) Cos() *Tensor { return t.unary(capi.Cos) }

// Floor rounds down.
func (t *Tensor) Floor() *Tensor { return t.unary(capi.Floor) }

// Ceil rounds up.
func (t *Tensor) Ceil() *Tensor { return t.unary(capi.Ceil) }

// Round rounds half to even.
func (t *Tensor) Round() *Tensor { return t.unary(capi.Round) }

// Erf is the error function.
func (t *Tensor) Erf() *Tensor { return t.unary(capi.Erf) }

// LogicalNot is !t, as bool.
func (t *Tensor) LogicalNot() *Tensor { return t.unary(capi.LogicalNot) }

// IsNaN marks NaN elements.
func (t *Tensor) IsNaN() *Tensor { return t.unary(capi.IsNaN) }

// IsFinite marks finite elements.
func (t *Tensor) IsFinite() *Tensor { return t.unary(capi.IsFinite) }

// Relu is max(t, 0).
func (t *Tensor) Relu() *Tensor { return t.unary(capi.Relu) }

// Gelu is the exact (erf) GELU.
func (t *Tensor) Gelu() *Tensor { return t.unary(capi.Gelu) }

// GeluTanh is GELU with the tanh approximation (GPT-2's).
func (t *Tensor) GeluTanh() *Tensor { return t.unary(capi.GeluTanh) }

// Silu is t·sigmoid(t).
func (t *Tensor) Silu() *Tensor { return t.unary(capi.Silu) }

// Tanh is the hyperbolic tangent.
func (t *Tensor) Tanh() *Tensor { return t.unary(capi.Tanh) }

// Sigmoid is 1/(1+e^-t).
func (t *Tensor) Sigmoid() *Tensor { return t.unary(capi.Sigmoid) }

// LogSigmoid is log(sigmoid(t)), computed stably.
func (t *Tensor) LogSigmoid() *Tensor { return t.unary(capi.LogSigmoid) }

// Softplus is log(1+e^t) (linear above 20, as PyTorch's default).
func (t *Tensor) Softplus() *Tensor { return t.unary(capi.Softplus) }

// Add is t + o (broadcasting).
func (t *Tensor) Add(o *Tensor) *Tensor { return t.binary(capi.Add, o) }

// Sub is t - o.
func (t *Tensor) Sub(o *Tensor) *Tensor { return t.binary(capi.Sub, o) }

// Mul is t * o elementwise.
func (t *Tensor) Mul(o *Tensor) *Tensor { return t.binary(capi.Mul, o) }

// Div is t / o (true division).
func (t *Tensor) Div(o *Tensor) *Tensor { return t.binary(capi.Div, o) }

// Pow is t^o.
func (t *Tensor) Pow(o *Tensor) *Tensor { return t.binary(capi.Pow, o) }

// Maximum is the elementwise max.
func (t *Tensor) Maximum(o *Tensor) *Tensor { return t.binary(capi.Maximum, o) }

// Minimum is the elementwise min.
func (t *Tensor) Minimum(o *Tensor) *Tensor { return t.binary(capi.Minimum, o) }

// Remainder is t mod o with the sign of o (Python's %).
func (t *Tensor) Remainder(o *Tensor) *Tensor { return t.binary(capi.Remainder, o) }

// FloorDivide is floor(t / o).
func (t *Tensor) FloorDivide(o *Tensor) *Tensor { return t.binary(capi.FloorDivide, o) }

// Atan2 is atan2(t, o).
func (t *Tensor) Atan2(o *Tensor) *Tensor { return t.binary(capi.Atan2, o) }

// Eq is t == o, as bool.
func (t *Tensor) Eq(o *Tensor) *Tensor { return t.binary(capi.Eq, o) }

// Ne is t != o.
func (t *Tensor) Ne(o *Tensor) *Tensor { return t.binary(capi.Ne, o) }

// Lt is t < o.
func (t *Tensor) Lt(o *Tensor) *Tensor { return t.binary(capi.Lt, o) }

// Le is t <= o.
func (t *Tensor) Le(o *Tensor) *Tensor { return t.binary(capi.Le, o) }

// Gt is t > o.
func (t *Tensor) Gt(o *Tensor) *Tensor { return t.binary(capi.Gt, o) }

// Ge is t >= o.
func (t *Tensor) Ge(o *Tensor) *Tensor { return t.binary(capi.Ge, o) }

// LogicalAnd is t && o.
func (t *Tensor) LogicalAnd(o *Tensor) *Tensor { return t.binary(capi.LogicalAnd, o) }

// LogicalOr is t || o.
func (t *Tensor) LogicalOr(o *Tensor) *Tensor { return t.binary(capi.LogicalOr, o) }

// AddScalar is t + s.
func (t *Tensor) AddScalar(s float64) *Tensor { return t.binaryScalar(capi.Add, s, false) }

// SubScalar is t - s.
func (t *Tensor) SubScalar(s float64) *Tensor { return t.binaryScalar(capi.Sub, s, false) }

// RSubScalar is s - t.
func (t *Tensor) RSubScalar(s float64) *Tensor { return t.binaryScalar(capi.Sub, s, true) }

// MulScalar is t * s.
func (t *Tensor) MulScalar(s float64) *Tensor { return t.binaryScalar(capi.Mul, s, false) }

// DivScalar is t / s.
func (t *Tensor) DivScalar(s float64) *Tensor { return t.binaryScalar(capi.Div, s, false) }

// RDivScalar is s / t.
func (t *Tensor) RDivScalar(s float64) *Tensor { return t.binaryScalar(capi.Div, s, true) }

// PowScalar is t^s.
func (t *Tensor) PowScalar(s float64) *Tensor { return t.binaryScalar(capi.Pow, s, false) }

// RPowScalar is s^t.
func (t *Tensor) RPowScalar(s float64) *Tensor { return t.binaryScalar(capi.Pow, s, true) }

// RemainderScalar is t mod s.
func (t *Tensor) RemainderScalar(s float64) *Tensor { return t.binaryScalar(capi.Remainder, s, false) }

// EqScalar is t == s.
func (t *Tensor) EqScalar(s float64) *Tensor { return t.binaryScalar(capi.Eq, s, false) }

// NeScalar is t != s.
func (t *Tensor) NeScalar(s float64) *Tensor { return t.binaryScalar(capi.Ne, s, false) }

// LtScalar is t < s.
func (t *Tensor) LtScalar(s float64) *Tensor { return t.binaryScalar(capi.Lt, s, false) }

// LeScalar is t <= s.
func (t *Tensor) LeScalar(s float64) *Tensor { return t.binaryScalar(capi.Le, s, false) }

// GtScalar is t > s.
func (t *Tensor) GtScalar(s float64) *Tensor { return t.binaryScalar(capi.Gt, s, false) }

// GeScalar is t >= s.
func (t *Tensor) GeScalar(s float64) *Tensor { return t.binaryScalar(capi.Ge, s, false) }

// AddScaled is t + alpha*o.
func (t *Tensor) AddScaled(o *Tensor, alpha float64) *Tensor {
	h, err := capi.AddScaled(t.handle(), o.handle(), alpha)
	return wrap("add", h, err)
}

// Clamp limits t to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor {
	h, err := capi.Clamp(t.handle(), lo, hi, true, true)
	return wrap("clamp", h, err)
}

// ClampMin limits t from below.
func (t *Tensor) ClampMin(lo float64) *Tensor {
	h, err := capi.Clamp(t.handle(), lo, 0, true, false)
	return wrap("clamp_min", h, err)
}

// ClampMax limits t from above.
func (t *Tensor) ClampMax(hi float64) *Tensor {
	h, err := capi.Clamp(t.handle(), 0, hi, false, true)
	return wrap("clamp_max", h, err)
}

// Matmul is torch.matmul (broadcasting batched matrix product).
func (t *Tensor) Matmul(o *Tensor) *Tensor {
	h, err := capi.Matmul(t.handle(), o.handle())
	return wrap("matmul", h, err)
}

// Bmm is the batched product of [B,n,m] and [B,m,p] tensors.
func (t *Tensor) Bmm(o *Tensor) *Tensor {
	h, err := capi.Bmm(t.handle(), o.handle())
	return wrap("bmm", h, err)
}

// Linear is x @ wᵀ + bias (bias may be nil).
func Linear(x, w, bias *Tensor) *Tensor {
	h, err := capi.Linear(x.handle(), w.handle(), opt(bias))
	return wrap("linear", h, err)
}

// Einsum is torch.einsum.
func Einsum(equation string, ts ...*Tensor) *Tensor {
	h, err := capi.Einsum(equation, handlesOf(ts))
	return wrap("einsum", h, err)
}

// ---- in place (not for tensors autograd needs; used by optimizers) ----

// AddInPlace does t += o and returns t.
func (t *Tensor) AddInPlace(o *Tensor) *Tensor {
	fail("add_", capi.BinaryInPlace(capi.Add, t.handle(), o.handle()))
	return t
}

// MulInPlace does t *= o and returns t.
func (t *Tensor) MulInPlace(o *Tensor) *Tensor {
	fail("mul_", capi.BinaryInPlace(capi.Mul, t.handle(), o.handle()))
	return t
}

// AddScaledInPlace does t += alpha*o and returns t.
func (t *Tensor) AddScaledInPlace(o *Tensor, alpha float64) *Tensor {
	fail("add_", capi.AddScaledInPlace(t.handle(), o.handle(), alpha))
	return t
}

// MulScalarInPlace does t *= s and returns t.
func (t *Tensor) MulScalarInPlace(s float64) *Tensor {
	fail("mul_", capi.BinaryScalarInPlace(capi.Mul, t.handle(), s))
	return t
}

// AddScalarInPlace does t += s and returns t.
func (t *Tensor) AddScalarInPlace(s float64) *Tensor {
	fail("add_", capi.BinaryScalarInPlace(capi.Add, t.handle(), s))
	return t
}

// SqrtInPlace does t = sqrt(t) and returns t.
func (t *Tensor) SqrtInPlace() *Tensor { return t.unaryInPlace(capi.Sqrt) }

// ExpInPlace does t = e^t and returns t.
func (t *Tensor) ExpInPlace() *Tensor { return t.unaryInPlace(capi.Exp) }
