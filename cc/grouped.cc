// grouped.cc: the grouped matrix product of a mixture's routed projections
// (models/mohd's gathered path), one custom autograd node for all groups.
//
// Rows sorted by group, loads[j] of them in group j, each multiplied by its
// group's matrix: one GEMM per group on views of the operands, with the
// gather of the input rows (src) and the scatter-add of the output rows
// (dest) done by the op itself. Composed from libtorch ops, the same product
// is a split, a GEMM and a concatenation per group plus an index_select and
// its backward (a zero fill and index_add_, which costs a dispatch per row)
// on each side, and a node per op in the graph.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/record_function.h>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dst.scalar_type(), "grouped_mm_add_rows", [&] {
    scalar_t *d = dst.data_ptr<scalar_t>();
    const scalar_t *sp = s.data_ptr<scalar_t>();
    for (int64_t i = 0; i < M; ++i) {
      scalar_t *o = d + ip[i] * q;
      const scalar_t *r = sp + i * q;
      for (int64_t c = 0; c < q; ++c) o[c] += r[c];
    }
  });
}

// rows_of is one group's rows of x: x's rows idx[start, start + n) (a
// copy) or, without idx, rows [start, start + n) of x (a view).
at::Tensor rows_of(const at::Tensor &x, const at::Tensor &idx, int64_t start, int64_t n) {
  return idx.defined() ? x.index_select(0, idx.narrow(0, start, n)) : x.narrow(0, start, n);
}

// mm_into_rows adds a·b to one group's rows of out, rows idx[start,
// start + n) (add_rows), or without idx writes it to rows [start, start + n)
// (the product goes straight into them): rows_of's counterpart for results.
void mm_into_rows(at::Tensor &out, const at::Tensor &idx, int64_t start, int64_t n, const at::Tensor &a,
                  const at::Tensor &b) {
  if (idx.defined()) {
    add_rows(out, idx.narrow(0, start, n), at::mm(a, b));
  } else {
    auto rows = out.narrow(0, start, n);
    at::mm_out(rows, a, b);
  }
}

struct GroupedMM : public torch::autograd::Function<GroupedMM> {
  // y[dest[i]] += x[src[i]] · op(w[j]) for the rows i of group j, where
  // op(w) = w, or wᵀ when trans; y starts as zeros, or as base (only with
  // dest; GroupedMMAdd), which it then is, updated in place.
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                               std::vector<int64_t> loads, const c10::optional<at::Tensor> &src_opt,
                               const c10::optional<at::Tensor> &dest_opt, int64_t out_rows, bool trans,
                               at::Tensor base = at::Tensor()) {
    // The indices are optional arguments, not tensors: autograd gives them
    // no gradient and does not ask for one.
    const at::Tensor src = src_opt.value_or(at::Tensor()), dest = dest_opt.value_or(at::Tensor());
    RECORD_USER_SCOPE("hl::grouped_mm");
    const int64_t q = trans ? w.size(1) : w.size(2);
    int64_t M = 0;
    for (int64_t n : loads) M += n;
    at::Tensor y;
    if (base.defined()) {
      ctx->mark_dirty({base});
      y = base;
    } else {
      y = dest.defined() ? at::zeros({out_rows, q}, x.options()) : at::empty({M, q}, x.options());
    }
    int64_t start = 0;
    for (size_t j = 0; j < loads.size(); ++j) {
      const int64_t n = loads[j];
      if (n == 0) continue;
      mm_into_rows(y, dest, start, n, rows_of(x, src, start, n), trans ? w[j].t() : w[j]);
      start += n;
    }
    ctx->save_for_backward({x, w});
    ctx->saved_data["src"] = src_opt;
    ctx->saved_data["dest"] = dest_opt;
    ctx->saved_data["loads"] = loads;
    ctx->saved_data["trans"] = trans;
    ctx->saved_data["base"] = base.defined();
    return {y};
  }

  // With G_j the output gradient's rows of group j (rows dest of it, or
  // the group's own rows): x's rows get G_j · op(w[j])ᵀ (added to rows src
  // when given), w[j] gets X_jᵀ · G_j (or G_jᵀ · X_j when trans).
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::grouped_mm_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const auto opt_tensor = [&](const char *key) {
      const c10::IValue &v = ctx->saved_data[key];
      return v.isNone() ? at::Tensor() : v.toTensor();
    };
    const at::Tensor src = opt_tensor("src"), dest = opt_tensor("dest");
    const auto loads = ctx->saved_data["loads"].toIntVector();
    const bool trans = ctx->saved_data["trans"].toBool();
    const at::Tensor gy = grads[0].contiguous();
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    at::Tensor gx, gw;
    if (need_x) gx = src.defined() ? at::zeros_like(x) : at::empty_like(x);
    if (need_w) gw = at::zeros_like(w);
    int64_t start = 0;
    for (size_t j = 0; j < loads.size(); ++j) {
      const int64_t n = loads[j];
      if (n == 0) continue;
      const auto gj = rows_of(gy, dest, start, n);
      if (need_x) mm_into_rows(gx, src, start, n, gj, trans ? w[j] : w[j].t());
      if (need_w) {
        // The group's input rows again: gathered anew rather than saved by
        // the forward, which would hold all gathered rows (K per token of x
        // in the out projection) until the backward.
        const auto xj = rows_of(x, src, start, n);
        auto gwj = gw[j];
        if (trans) {
          at::mm_out(gwj, gj.t(), xj);
        } else {
          at::mm_out(gwj, xj.t(), gj);
        }
      }
      start += n;
    }
    variable_list out{gx, gw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    // base's gradient is the output's: the products were added to it.
    if (ctx->saved_data["base"].toBool()) out.push_back(grads[0]);
    return out;
  }
};

// GroupedMMAdd is GroupedMM into base: a node of its own because base is
// a tensor input (autograd passes it the output's gradient), which
// GroupedMM without base does not have.
struct GroupedMMAdd : public torch::autograd::Function<GroupedMMAdd> {
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                               std::vector<int64_t> loads, const c10::optional<at::Tensor> &src_opt,
                               const c10::optional<at::Tensor> &dest_opt, int64_t out_rows, bool trans,
                               const at::Tensor &base) {
    return GroupedMM::forward(ctx, x, w, std::move(loads), src_opt, dest_opt, out_rows, trans, base);
  }
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    return GroupedMM::backward(ctx, std::move(grads));
  }
};

}  // namespace

extern "C" {

hl_status hl_grouped_mm(hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups, hl_tensor src,
                        hl_tensor dest, hl_tensor base, int64_t out_rows, int32_t trans_w, hl_tensor *out) {
  HL_TRY({
    const auto &X = hl::T(x);
    const auto &W = hl::T(w);
    const bool trans = trans_w != 0;
    if (X.dim() != 2 || W.dim() != 3) throw hl::Error(HL_ERR_SHAPE, "grouped_mm: need x [rows, p] and w [groups, ·, ·]");
    if (groups != W.size(0) || (groups > 0 && loads == nullptr))
      throw hl::Error(HL_ERR_SHAPE, "grouped_mm: " + std::to_string(groups) + " loads for " +
                                        std::to_string(W.size(0)) + " groups of w");
    const int64_t p = trans ? W.size(2) : W.size(1);
    if (X.size(1) != p)
      throw hl::Error(HL_ERR_SHAPE, "grouped_mm: x has " + std::to_string(X.size(1)) + " columns, w's groups take " +
                                        std::to_string(p));
    if (X.scalar_type() != W.scalar_type()) throw hl::Error(HL_ERR_DTYPE, "grouped_mm: x and w differ in dtype");
    std::vector<int64_t> ls(loads, loads + groups);
    int64_t M = 0;
    for (int64_t n : ls) {
      if (n < 0) throw hl::Error(HL_ERR_VALUE, "grouped_mm: negative load");
      M += n;
    }
    at::Tensor S, D;
    auto check_index = [&](hl_tensor h, const char *name, int64_t bound) {
      at::Tensor t = hl::T(h);
      if (t.dim() != 1 || t.size(0) != M || t.scalar_type() != at::kLong)
        throw hl::Error(HL_ERR_SHAPE, std::string("grouped_mm: ") + name + " must be int64 [" + std::to_string(M) +
                                          "] (the loads' sum)");
      if (M > 0) {
        const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
        if (lo < 0 || hi >= bound)
          throw hl::Error(HL_ERR_INDEX, std::string("grouped_mm: ") + name + " holds " +
                                            std::to_string(lo < 0 ? lo : hi) + ", outside [0, " +
                                            std::to_string(bound) + ")");
      }
      return t;
    };
    if (src != nullptr) {
      S = check_index(src, "src", X.size(0));
    } else if (X.size(0) != M) {
      throw hl::Error(HL_ERR_SHAPE, "grouped_mm: x has " + std::to_string(X.size(0)) + " rows, the loads sum to " +
                                        std::to_string(M));
    }
    if (dest != nullptr) {
      if (out_rows < 0) throw hl::Error(HL_ERR_VALUE, "grouped_mm: negative out_rows");
      D = check_index(dest, "dest", out_rows);
    }
    at::Tensor B;
    if (base != nullptr) {
      B = hl::T(base);
      const int64_t q = trans ? W.size(1) : W.size(2);
      if (dest == nullptr) throw hl::Error(HL_ERR_VALUE, "grouped_mm: base needs dest (the rows it adds to)");
      if (B.dim() != 2 || B.size(0) != out_rows || B.size(1) != q)
        throw hl::Error(HL_ERR_SHAPE, "grouped_mm: base must be [" + std::to_string(out_rows) + ", " +
                                          std::to_string(q) + "] (out_rows and w's output size)");
      if (B.scalar_type() != X.scalar_type()) throw hl::Error(HL_ERR_DTYPE, "grouped_mm: base and x differ in dtype");
      if (!B.is_contiguous()) throw hl::Error(HL_ERR_VALUE, "grouped_mm: base must be contiguous (it is added to in place)");
      if (B.is_leaf() && B.requires_grad())
        throw hl::Error(HL_ERR_VALUE, "grouped_mm: base is a leaf that requires grad (it is added to in place)");
    }
    const auto S_opt = S.defined() ? c10::optional<at::Tensor>(S) : c10::nullopt;
    const auto D_opt = D.defined() ? c10::optional<at::Tensor>(D) : c10::nullopt;
    hl::put(out, B.defined() ? GroupedMMAdd::apply(X, W, ls, S_opt, D_opt, out_rows, trans, B)[0]
                             : GroupedMM::apply(X, W, ls, S_opt, D_opt, out_rows, trans)[0]);
  })
}

}  // extern "C"
