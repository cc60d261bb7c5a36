// math.cc: elementwise ops, products, reductions, sorting and sampling.
#include <algorithm>
#include <cmath>

#include "internal.h"

using hl::T;

namespace {

// scalar converts a Go float64 argument for an op on t: an integral value on
// an integer or bool tensor becomes an integer Scalar, so x + 1 on int64
// stays int64 as in PyTorch (a double would promote to float).
at::Scalar scalar(const at::Tensor &t, double v) {
  if (!at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type()) && v == std::trunc(v) &&
      std::abs(v) < 9.2e18)
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

at::Tensor unary(int32_t op, const at::Tensor &x) {
  switch (op) {
    case HL_NEG: return x.neg();
    case HL_EXP: return x.exp();
    case HL_LOG: return x.log();
    case HL_SQRT: return x.sqrt();
    case HL_RSQRT: return x.rsqrt();
    case HL_ABS: return x.abs();
    case HL_RELU: return x.relu();
    case HL_GELU: return at::gelu(x, "none");
    case HL_GELU_TANH: return at::gelu(x, "tanh");
    case HL_SILU: return at::silu(x);
    case HL_TANH: return x.tanh();
    case HL_SIGMOID: return x.sigmoid();
    case HL_SOFTPLUS: return at::softplus(x, 1.0, 20.0);
    case HL_SIN: return x.sin();
    case HL_COS: return x.cos();
    case HL_RECIPROCAL: return x.reciprocal();
    case HL_SQUARE: return x.square();
    case HL_SIGN: return x.sign();
    case HL_FLOOR: return x.floor();
    case HL_CEIL: return x.ceil();
    case HL_ROUND: return x.round();
    case HL_LOGICAL_NOT: return x.logical_not();
    case HL_LOG1P: return x.log1p();
    case HL_EXPM1: return x.expm1();
    case HL_ERF: return x.erf();
    case HL_ISNAN: return x.isnan();
    case HL_ISFINITE: return x.isfinite();
    case HL_LOG_SIGMOID: return at::log_sigmoid(x);
  }
  throw hl::Error(HL_ERR_VALUE, "unknown unary op " + std::to_string(op));
}

void unary_(int32_t op, const at::Tensor &x) {
  switch (op) {
    case HL_NEG: x.neg_(); return;
    case HL_EXP: x.exp_(); return;
    case HL_LOG: x.log_(); return;
    case HL_SQRT: x.sqrt_(); return;
    case HL_RSQRT: x.rsqrt_(); return;
    case HL_ABS: x.abs_(); return;
    case HL_RELU: x.relu_(); return;
    case HL_TANH: x.tanh_(); return;
    case HL_SIGMOID: x.sigmoid_(); return;
    case HL_SIN: x.sin_(); return;
    case HL_COS: x.cos_(); return;
    case HL_RECIPROCAL: x.reciprocal_(); return;
    case HL_SQUARE: x.square_(); return;
    case HL_SIGN: x.sign_(); return;
    case HL_FLOOR: x.floor_(); return;
    case HL_CEIL: x.ceil_(); return;
    case HL_ROUND: x.round_(); return;
    case HL_LOG1P: x.log1p_(); return;
    case HL_EXPM1: x.expm1_(); return;
    case HL_ERF: x.erf_(); return;
    default: x.copy_(unary(op, x)); return;
  }
}

at::Tensor binary(int32_t op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case HL_ADD: return a.add(b);
    case HL_SUB: return a.sub(b);
    case HL_MUL: return a.mul(b);
    case HL_DIV: return a.div(b);
    case HL_POW: return a.pow(b);
    case HL_MAXIMUM: return at::maximum(a, b);
    case HL_MINIMUM: return at::minimum(a, b);
    case HL_EQ: return a.eq(b);
    case HL_NE: return a.ne(b);
    case HL_LT: return a.lt(b);
    case HL_LE: return a.le(b);
    case HL_GT: return a.gt(b);
    case HL_GE: return a.ge(b);
    case HL_LOGICAL_AND: return a.logical_and(b);
    case HL_LOGICAL_OR: return a.logical_or(b);
    case HL_REMAINDER: return a.remainder(b);
    case HL_FLOOR_DIVIDE: return a.div(b, "floor");
    case HL_ATAN2: return a.atan2(b);
  }
  throw hl::Error(HL_ERR_VALUE, "unknown binary op " + std::to_string(op));
}

void binary_(int32_t op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case HL_ADD: a.add_(b); return;
    case HL_SUB: a.sub_(b); return;
    case HL_MUL: a.mul_(b); return;
    case HL_DIV: a.div_(b); return;
    case HL_POW: a.pow_(b); return;
    default: a.copy_(binary(op, a, b)); return;
  }
}

at::Tensor binary_scalar(int32_t op, const at::Tensor &a, const at::Scalar &s) {
  switch (op) {
    case HL_ADD: return a.add(s);
    case HL_SUB: return a.sub(s);
    case HL_MUL: return a.mul(s);
    case HL_DIV: return a.div(s);
    case HL_POW: return a.pow(s);
    case HL_MAXIMUM: return a.clamp_min(s);
    case HL_MINIMUM: return a.clamp_max(s);
    case HL_EQ: return a.eq(s);
    case HL_NE: return a.ne(s);
    case HL_LT: return a.lt(s);
    case HL_LE: return a.le(s);
    case HL_GT: return a.gt(s);
    case HL_GE: return a.ge(s);
    case HL_REMAINDER: return a.remainder(s);
    case HL_FLOOR_DIVIDE: return a.div(s, "floor");
    default: return binary(op, a, at::scalar_tensor(s, a.options().requires_grad(false)));
  }
}

// s op a, for the ops where order matters.
at::Tensor binary_scalar_reversed(int32_t op, const at::Tensor &a, const at::Scalar &s) {
  switch (op) {
    case HL_ADD: return a.add(s);
    case HL_MUL: return a.mul(s);
    case HL_SUB: return at::rsub(a, s);
    case HL_DIV: return a.reciprocal().mul(s);
    case HL_POW: return at::pow(s, a);
    default: return binary(op, at::scalar_tensor(s, a.options().requires_grad(false)), a);
  }
}

void binary_scalar_(int32_t op, const at::Tensor &a, const at::Scalar &s) {
  switch (op) {
    case HL_ADD: a.add_(s); return;
    case HL_SUB: a.sub_(s); return;
    case HL_MUL: a.mul_(s); return;
    case HL_DIV: a.div_(s); return;
    case HL_POW: a.pow_(s); return;
    case HL_MAXIMUM: a.clamp_min_(s); return;
    case HL_MINIMUM: a.clamp_max_(s); return;
    default: a.copy_(binary_scalar(op, a, s)); return;
  }
}

// Reduces one dim at a time, last first, for ops without a multi-dim overload.
template <typename F>
at::Tensor reduce_each(const at::Tensor &x, at::IntArrayRef d, bool keep, F f) {
  std::vector<int64_t> ds;
  for (auto k : d) ds.push_back(at::maybe_wrap_dim(k, x.dim()));
  std::sort(ds.rbegin(), ds.rend());
  at::Tensor r = x;
  for (auto k : ds) r = f(r, k, keep);
  return r;
}

at::Tensor every_dim(const at::Tensor &x, bool keep, at::Tensor full) {
  return keep ? full.reshape(std::vector<int64_t>(x.dim(), 1)) : full;
}

at::Tensor reduce(int32_t op, const at::Tensor &x, at::IntArrayRef d, bool keep) {
  const bool all = d.empty();
  switch (op) {
    case HL_SUM: return all ? every_dim(x, keep, x.sum()) : x.sum(d, keep);
    case HL_MEAN: return all ? every_dim(x, keep, x.mean()) : x.mean(d, keep);
    case HL_AMAX: return x.amax(d, keep);
    case HL_AMIN: return x.amin(d, keep);
    case HL_LOGSUMEXP: {
      if (!all) return x.logsumexp(d, keep);
      std::vector<int64_t> every(x.dim());
      for (int64_t i = 0; i < x.dim(); i++) every[i] = i;
      return x.logsumexp(every, keep);
    }
    case HL_VAR: return all ? every_dim(x, keep, x.var()) : x.var(d, true, keep);
    case HL_STD: return all ? every_dim(x, keep, x.std()) : x.std(d, true, keep);
    case HL_PROD:
      if (all) return every_dim(x, keep, x.prod());
      return reduce_each(x, d, keep, [](const at::Tensor &r, int64_t k, bool kd) { return r.prod(k, kd); });
    case HL_ALL:
      if (all) return every_dim(x, keep, x.all());
      return reduce_each(x, d, keep, [](const at::Tensor &r, int64_t k, bool kd) { return r.all(k, kd); });
    case HL_ANY:
      if (all) return every_dim(x, keep, x.any());
      return reduce_each(x, d, keep, [](const at::Tensor &r, int64_t k, bool kd) { return r.any(k, kd); });
  }
  throw hl::Error(HL_ERR_VALUE, "unknown reduction " + std::to_string(op));
}

}  // namespace

extern "C" {

hl_status hl_unary(int32_t op, hl_tensor t, hl_tensor *out) { HL_TRY(hl::put(out, unary(op, T(t)))) }
hl_status hl_unary_(int32_t op, hl_tensor t) { HL_TRY(unary_(op, T(t))) }
hl_status hl_binary(int32_t op, hl_tensor a, hl_tensor b, hl_tensor *out) { HL_TRY(hl::put(out, binary(op, T(a), T(b)))) }
hl_status hl_binary_(int32_t op, hl_tensor a, hl_tensor b) { HL_TRY(binary_(op, T(a), T(b))) }

hl_status hl_binary_scalar(int32_t op, hl_tensor a, double s, int32_t reversed, hl_tensor *out) {
  HL_TRY(hl::put(out, reversed ? binary_scalar_reversed(op, T(a), scalar(T(a), s)) : binary_scalar(op, T(a), scalar(T(a), s))))
}

hl_status hl_binary_scalar_(int32_t op, hl_tensor a, double s) { HL_TRY(binary_scalar_(op, T(a), scalar(T(a), s))) }

hl_status hl_add_scaled(hl_tensor a, hl_tensor b, double alpha, hl_tensor *out) {
  HL_TRY(hl::put(out, T(a).add(T(b), alpha)))
}

hl_status hl_add_scaled_(hl_tensor a, hl_tensor b, double alpha) { HL_TRY(T(a).add_(T(b), alpha)) }

hl_status hl_clamp(hl_tensor t, double lo, double hi, int32_t has_lo, int32_t has_hi, hl_tensor *out) {
  HL_TRY({
    c10::optional<at::Scalar> l, h;
    if (has_lo) l = scalar(T(t), lo);
    if (has_hi) h = scalar(T(t), hi);
    hl::put(out, T(t).clamp(l, h));
  })
}

hl_status hl_matmul(hl_tensor a, hl_tensor b, hl_tensor *out) {
  HL_TRY({
    const auto &x = T(a), &w = T(b);
    // x [..., K] · w [K, N] is a Linear with weight wᵀ: the shim's GEMM where
    // it takes float32 products (hl::linear), libtorch's matmul elsewhere.
    if (x.dim() >= 2 && w.dim() == 2 && x.size(-1) == w.size(0))
      hl::put(out, hl::linear(x, w.t(), c10::nullopt));
    else
      hl::put(out, x.matmul(w));
  })
}
hl_status hl_bmm(hl_tensor a, hl_tensor b, hl_tensor *out) { HL_TRY(hl::put(out, T(a).bmm(T(b)))) }

hl_status hl_linear(hl_tensor x, hl_tensor w, hl_tensor bias, hl_tensor *out) {
  HL_TRY(hl::put(out, hl::linear(T(x), T(w), hl::opt(bias))))
}

hl_status hl_einsum(const char *equation, const hl_tensor *ts, int32_t n, hl_tensor *out) {
  HL_TRY({
    if (equation == nullptr) throw hl::Error(HL_ERR_VALUE, "null einsum equation");
    hl::put(out, at::einsum(equation, hl::tensors(ts, n)));
  })
}

hl_status hl_reduce(int32_t op, hl_tensor t, const int64_t *dims, int32_t ndim, int32_t keepdim, hl_tensor *out) {
  HL_TRY(hl::put(out, reduce(op, T(t), hl::dims(dims, ndim), keepdim != 0)))
}

hl_status hl_max_dim(hl_tensor t, int64_t dim, int32_t keepdim, int32_t is_min, hl_tensor *values,
                     hl_tensor *indices) {
  HL_TRY({
    auto r = is_min ? T(t).min(dim, keepdim != 0) : T(t).max(dim, keepdim != 0);
    *values = hl::wrap(std::get<0>(r));
    *indices = hl::wrap(std::get<1>(r));
  })
}

hl_status hl_argmax(hl_tensor t, int64_t dim, int32_t all, int32_t keepdim, int32_t is_min, hl_tensor *out) {
  HL_TRY({
    c10::optional<int64_t> d;
    if (!all) d = dim;
    hl::put(out, is_min ? T(t).argmin(d, keepdim != 0) : T(t).argmax(d, keepdim != 0));
  })
}

hl_status hl_norm(hl_tensor t, double p, const int64_t *dims, int32_t ndim, int32_t keepdim, hl_tensor *out) {
  HL_TRY({
    if (ndim == 0 && !keepdim) hl::put(out, T(t).norm(p));
    else {
      std::vector<int64_t> d(dims, dims + ndim);
      if (d.empty())
        for (int64_t i = 0; i < T(t).dim(); i++) d.push_back(i);
      hl::put(out, T(t).norm(at::Scalar(p), d, keepdim != 0));
    }
  })
}

hl_status hl_cumsum(hl_tensor t, int64_t dim, hl_tensor *out) { HL_TRY(hl::put(out, T(t).cumsum(dim))) }

hl_status hl_topk(hl_tensor t, int64_t k, int64_t dim, int32_t largest, int32_t sorted, hl_tensor *values,
                  hl_tensor *indices) {
  HL_TRY({
    auto r = T(t).topk(k, dim, largest != 0, sorted != 0);
    *values = hl::wrap(std::get<0>(r));
    *indices = hl::wrap(std::get<1>(r));
  })
}

hl_status hl_sort(hl_tensor t, int64_t dim, int32_t descending, hl_tensor *values, hl_tensor *indices) {
  HL_TRY({
    auto r = T(t).sort(dim, descending != 0);
    *values = hl::wrap(std::get<0>(r));
    *indices = hl::wrap(std::get<1>(r));
  })
}

hl_status hl_multinomial(hl_tensor probs, int64_t n, int32_t replacement, hl_tensor *out) {
  HL_TRY(hl::put(out, T(probs).multinomial(n, replacement != 0)))
}

}  // extern "C"
