// shape.cc: views, joins, splits and indexing.
#include <torch/csrc/autograd/custom_function.h>

#include "internal.h"

using hl::T;

namespace {

c10::List<c10::optional<at::Tensor>> index_list(const hl_tensor *indices, int32_t n) {
  if (n < 0 || (n > 0 && indices == nullptr)) throw hl::Error(HL_ERR_VALUE, "bad index list");
  c10::List<c10::optional<at::Tensor>> list;
  list.reserve(n);
  for (int32_t i = 0; i < n; i++) list.push_back(hl::opt(indices[i]));
  return list;
}

// SelectRows is index_select(x, 0, idx) for a float CPU matrix x [R, q]
// and an int64 CPU index, with a backward of its own: libtorch's adds the
// gradient's rows by index_add_, which on the CPU costs about 0.35 µs a
// row for rows of a few floats (models/mohd's gathered group rows: 4,096
// rows of 8 a router, 1.5 ms a step at width 128); here hl::add_rows adds
// them in one loop in order of i, as index_add_ does (the same sums in the
// same order).
struct SelectRows : public torch::autograd::Function<SelectRows> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x, const at::Tensor &idx) {
    ctx->save_for_backward({idx});
    ctx->saved_data["rows"] = x.size(0);
    return x.index_select(0, idx);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    const auto idx = ctx->get_saved_variables()[0];
    const at::Tensor g = grads[0].contiguous();
    auto gx = at::zeros({ctx->saved_data["rows"].toInt(), g.size(1)}, g.options());
    if (at::GradMode::is_enabled()) return {gx.index_add(0, idx, g), at::Tensor()};
    hl::add_rows(gx, idx, g);
    return {gx, at::Tensor()};
  }
};

// select_index is x.index_select(dim, idx), by SelectRows where it applies:
// rows of a float or double CPU matrix that needs a gradient.
at::Tensor select_index(const at::Tensor &x, int64_t dim, const at::Tensor &idx) {
  if (dim == 0 && x.dim() == 2 && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
      x.requires_grad() && at::GradMode::is_enabled() && idx.dim() == 1 && idx.device().is_cpu() &&
      idx.scalar_type() == at::kLong && idx.is_contiguous())
    return SelectRows::apply(x, idx);
  return x.index_select(dim, idx);
}

}  // namespace

namespace hl {

// add_rows adds row i of src [M, q] to row idx[i] of dst [R, q], in order
// of i (a fixed order: the sums are reproducible).
void add_rows(at::Tensor &dst, const at::Tensor &idx, const at::Tensor &src) {
  if (!dst.device().is_cpu() || !dst.is_contiguous()) {
    dst.index_add_(0, idx, src);
    return;
  }
  const auto s = src.contiguous();
  const auto ix = idx.contiguous();
  const int64_t M = s.size(0), q = s.size(1);
  const int64_t *ip = ix.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dst.scalar_type(), "add_rows", [&] {
    scalar_t *d = dst.data_ptr<scalar_t>();
    const scalar_t *sp = s.data_ptr<scalar_t>();
    for (int64_t i = 0; i < M; ++i) {
      scalar_t *o = d + ip[i] * q;
      const scalar_t *r = sp + i * q;
      for (int64_t c = 0; c < q; ++c) o[c] += r[c];
    }
  });
}

}  // namespace hl

extern "C" {

hl_status hl_view(hl_tensor t, const int64_t *shape, int32_t ndim, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).view(hl::dims(shape, ndim))))
}

hl_status hl_reshape(hl_tensor t, const int64_t *shape, int32_t ndim, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).reshape(hl::dims(shape, ndim))))
}

hl_status hl_expand(hl_tensor t, const int64_t *shape, int32_t ndim, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).expand(hl::dims(shape, ndim))))
}

hl_status hl_permute(hl_tensor t, const int64_t *dims, int32_t ndim, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).permute(hl::dims(dims, ndim))))
}

hl_status hl_transpose(hl_tensor t, int64_t d0, int64_t d1, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).transpose(d0, d1)))
}

hl_status hl_squeeze(hl_tensor t, int64_t dim, int32_t all, hl_tensor *out) {
  HL_TRY(hl::put(out, all ? T(t).squeeze() : T(t).squeeze(dim)))
}

hl_status hl_unsqueeze(hl_tensor t, int64_t dim, hl_tensor *out) { HL_TRY(hl::put(out, T(t).unsqueeze(dim))) }

hl_status hl_flatten(hl_tensor t, int64_t start, int64_t end, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).flatten(start, end)))
}

hl_status hl_cat(const hl_tensor *ts, int32_t n, int64_t dim, hl_tensor *out) {
  HL_TRY(hl::put(out, at::cat(hl::tensors(ts, n), dim)))
}

hl_status hl_stack(const hl_tensor *ts, int32_t n, int64_t dim, hl_tensor *out) {
  HL_TRY(hl::put(out, at::stack(hl::tensors(ts, n), dim)))
}

hl_status hl_split_sizes(hl_tensor t, const int64_t *sizes, int32_t n, int64_t dim, hl_tensor *outs) {
  HL_TRY({
    auto parts = T(t).split_with_sizes(hl::dims(sizes, n), dim);
    if (static_cast<int32_t>(parts.size()) != n) throw hl::Error(HL_ERR_SHAPE, "split produced a different count");
    for (int32_t i = 0; i < n; i++) outs[i] = hl::wrap(std::move(parts[i]));
  })
}

hl_status hl_narrow(hl_tensor t, int64_t dim, int64_t start, int64_t length, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).narrow(dim, start, length)))
}

hl_status hl_slice(hl_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).slice(dim, start, end, step)))
}

hl_status hl_select(hl_tensor t, int64_t dim, int64_t index, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).select(dim, index)))
}

hl_status hl_repeat(hl_tensor t, const int64_t *repeats, int32_t ndim, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).repeat(hl::dims(repeats, ndim))))
}

hl_status hl_index_select(hl_tensor t, int64_t dim, hl_tensor index, hl_tensor *out) {
  HL_TRY(hl::put(out, select_index(T(t), dim, T(index))))
}

hl_status hl_gather(hl_tensor t, int64_t dim, hl_tensor index, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).gather(dim, T(index))))
}

hl_status hl_scatter(hl_tensor t, int64_t dim, hl_tensor index, hl_tensor src, int32_t add, hl_tensor *out) {
  HL_TRY(hl::put(out, add ? T(t).scatter_add(dim, T(index), T(src)) : T(t).scatter(dim, T(index), T(src))))
}

hl_status hl_index_put(hl_tensor t, const hl_tensor *indices, int32_t n, hl_tensor values, int32_t accumulate,
                       hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).index_put(index_list(indices, n), T(values), accumulate != 0)))
}

hl_status hl_index(hl_tensor t, const hl_tensor *indices, int32_t n, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).index(index_list(indices, n))))
}

hl_status hl_masked_fill(hl_tensor t, hl_tensor mask, double value, hl_tensor *out) {
  HL_TRY(hl::put(out, T(t).masked_fill(T(mask), value)))
}

hl_status hl_where(hl_tensor cond, hl_tensor a, hl_tensor b, hl_tensor *out) {
  HL_TRY(hl::put(out, at::where(T(cond), T(a), T(b))))
}

hl_status hl_triu(hl_tensor t, int64_t diagonal, hl_tensor *out) { HL_TRY(hl::put(out, T(t).triu(diagonal))) }
hl_status hl_tril(hl_tensor t, int64_t diagonal, hl_tensor *out) { HL_TRY(hl::put(out, T(t).tril(diagonal))) }

hl_status hl_one_hot(hl_tensor t, int64_t num_classes, hl_tensor *out) {
  HL_TRY(hl::put(out, at::one_hot(T(t), num_classes)))
}

}  // extern "C"
