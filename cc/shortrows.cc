// shortrows.cc: softmax and the sum of squares over a short last dimension
// (a handful of entries a row), custom autograd nodes on the CPU.
//
// libtorch's kernels for both vectorise along the row: with rows of 8 or
// 10 floats (models/mohd's router probabilities over N_r = 10 groups, its
// group energies over g = 8 dimensions) every row is a partial vector,
// handled through a copy, and the row's reduction is a dispatch of its own:
// a softmax of [2,048, 10] takes 180 µs, a sum of squares of [2,048, 16, 8]
// about 0.3 ms, each backward as much again. Here a row is a plain loop
// (its sums in order), and the exponentials of the whole tensor are one
// vectorised at::exp_. Rows longer than kShort, other dtypes and devices
// keep libtorch's ops; so does a backward under create_graph (then made of
// differentiable ops).
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/ATen.h>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kShort = 64;

// short_rows reports whether x's last dimension is short enough for the
// loops here, on a float or double CPU tensor.
bool short_rows(const at::Tensor &x) {
  return x.dim() >= 1 && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
         x.size(-1) > 0 && x.size(-1) <= kShort && !x.is_mkldnn() && !x.is_sparse();
}

struct ShortSoftmax : public torch::autograd::Function<ShortSoftmax> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x_in) {
    const auto x = x_in.contiguous();
    const int64_t L = x.size(-1), M = x.numel() / L;
    auto p = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "short_softmax", [&] {
      const scalar_t *xp = x.data_ptr<scalar_t>();
      scalar_t *pp = p.data_ptr<scalar_t>();
      for (int64_t i = 0; i < M; ++i) {
        scalar_t m = xp[i * L];
        for (int64_t c = 1; c < L; ++c) m = std::max(m, xp[i * L + c]);
        for (int64_t c = 0; c < L; ++c) pp[i * L + c] = xp[i * L + c] - m;
      }
      p.exp_();
      for (int64_t i = 0; i < M; ++i) {
        scalar_t s = 0;
        for (int64_t c = 0; c < L; ++c) s += pp[i * L + c];
        const scalar_t r = scalar_t(1) / s;
        for (int64_t c = 0; c < L; ++c) pp[i * L + c] *= r;
      }
    });
    ctx->save_for_backward({p});
    return p;
  }

  // ∂x = p ⊙ (g − Σ_row g ⊙ p).
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto p = ctx->get_saved_variables()[0];
    const auto g = grads[0].contiguous();
    if (at::GradMode::is_enabled()) return {p * (g - (g * p).sum(-1, true))};
    const int64_t L = p.size(-1), M = p.numel() / L;
    auto gx = at::empty_like(p);
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "short_softmax_backward", [&] {
      const scalar_t *pp = p.data_ptr<scalar_t>(), *gp = g.data_ptr<scalar_t>();
      scalar_t *o = gx.data_ptr<scalar_t>();
      for (int64_t i = 0; i < M; ++i) {
        scalar_t s = 0;
        for (int64_t c = 0; c < L; ++c) s += gp[i * L + c] * pp[i * L + c];
        for (int64_t c = 0; c < L; ++c) o[i * L + c] = pp[i * L + c] * (gp[i * L + c] - s);
      }
    });
    return {gx};
  }
};

struct SquareSum : public torch::autograd::Function<SquareSum> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x_in) {
    const auto x = x_in.contiguous();
    const int64_t L = x.size(-1), M = x.numel() / L;
    auto sizes = x.sizes().vec();
    sizes.pop_back();
    auto out = at::empty(sizes, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "square_sum", [&] {
      const scalar_t *xp = x.data_ptr<scalar_t>();
      scalar_t *o = out.data_ptr<scalar_t>();
      for (int64_t i = 0; i < M; ++i) {
        scalar_t s = 0;
        for (int64_t c = 0; c < L; ++c) s += xp[i * L + c] * xp[i * L + c];
        o[i] = s;
      }
    });
    ctx->save_for_backward({x});
    return out;
  }

  // ∂x = 2·x·g (g broadcast along the row).
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    const auto g = grads[0].contiguous();
    if (at::GradMode::is_enabled()) return {x * g.unsqueeze(-1) * 2};
    const int64_t L = x.size(-1), M = x.numel() / L;
    auto gx = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "square_sum_backward", [&] {
      const scalar_t *xp = x.data_ptr<scalar_t>(), *gp = g.data_ptr<scalar_t>();
      scalar_t *o = gx.data_ptr<scalar_t>();
      for (int64_t i = 0; i < M; ++i) {
        const scalar_t t = 2 * gp[i];
        for (int64_t c = 0; c < L; ++c) o[i * L + c] = t * xp[i * L + c];
      }
    });
    return {gx};
  }
};

}  // namespace

namespace hl {

at::Tensor softmax(const at::Tensor &x, int64_t dim) {
  if (short_rows(x) && (dim == -1 || dim == x.dim() - 1)) return ShortSoftmax::apply(x);
  return x.softmax(dim);
}

at::Tensor square_sum(const at::Tensor &x) {
  if (short_rows(x)) return SquareSum::apply(x);
  return x.square().sum(-1);
}

}  // namespace hl

extern "C" {

hl_status hl_square_sum(hl_tensor x, hl_tensor *out) {
  HL_TRY({
    const auto &X = hl::T(x);
    if (X.dim() < 1) throw hl::Error(HL_ERR_SHAPE, "square_sum: x must have a last dimension");
    hl::put(out, hl::square_sum(X));
  })
}

}  // extern "C"
