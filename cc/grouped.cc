// grouped.cc: the grouped matrix product of a mixture's routed projections
// (models/mohd's gathered path), one custom autograd node for all groups.
//
// Rows sorted by group, loads[j] of them in group j, each multiplied by its
// group's matrix: one GEMM per group on views of the operands, with the
// gather of the input rows (src) and the scatter-add of the output rows
// (dest) done by the op itself — on AVX-512 CPUs inside the GEMM (gemm.cc's
// indexes: gathered rows packed from where they lie, results added into
// the destination rows by the micro-kernel; see product below), elsewhere
// by copies and hl::add_rows. Composed from libtorch ops, the same product
// is a split, a GEMM and a concatenation per group plus an index_select and
// its backward (a zero fill and index_add_, which costs a dispatch per row)
// on each side, and a node per op in the graph. The products are hl::mm's:
// on AVX-512 CPUs in float32 the shim's own GEMM (gemm.cc), where the BLAS's
// AVX2 kernels ran the shared rows' short products ([2048, 48]·[48, 704] at
// width 128) at 40 GFLOP/s.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/record_function.h>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// rows_of is one group's rows of x: x's rows idx[start, start + n) (a
// copy) or, without idx, rows [start, start + n) of x (a view).
at::Tensor rows_of(const at::Tensor &x, const at::Tensor &idx, int64_t start, int64_t n) {
  return idx.defined() ? x.index_select(0, idx.narrow(0, start, n)) : x.narrow(0, start, n);
}

// mm_into_rows adds a·b to one group's rows of out, rows idx[start,
// start + n) (hl::add_rows), or without idx writes it to rows [start, start + n)
// (the product goes straight into them): rows_of's counterpart for results.
void mm_into_rows(at::Tensor &out, const at::Tensor &idx, int64_t start, int64_t n, const at::Tensor &a,
                  const at::Tensor &b) {
  if (idx.defined()) {
    hl::add_rows(out, idx.narrow(0, start, n), hl::mm(a, b));
  } else {
    auto rows = out.narrow(0, start, n);
    hl::mm_out(rows, a, b);
  }
}

// Rows names a group's rows of t — rows idx[start, start + n), or rows
// [start, start + n) without idx — as a matrix, transposed when trans; a
// whole matrix is whole(t) (t's rows, its columns when trans).
struct Rows {
  at::Tensor t, idx;
  int64_t start, n;
  bool trans = false;
  Rows T() const { return {t, idx, start, n, !trans}; }
  int64_t rows() const { return trans ? t.size(1) : n; }
  int64_t cols() const { return trans ? n : t.size(1); }
  // tensor is the matrix as a tensor (a copy where idx gathers rows).
  at::Tensor tensor() const {
    const auto r = rows_of(t, idx, start, n);
    return trans ? r.t() : r;
  }
  // operand is the matrix as gemm reads it: the gathered rows where they are.
  hl::GemmOperand operand() const {
    hl::GemmOperand o{t.data_ptr<float>(), t.stride(0), t.stride(1)};
    if (idx.defined())
      o.ri = idx.data_ptr<int64_t>() + start;
    else
      o.p += start * t.stride(0);
    if (trans) o = {o.p, o.cs, o.rs, o.ci, o.ri};
    return o;
  }
};
Rows whole(const at::Tensor &t) { return {t, at::Tensor(), 0, t.size(0)}; }

// indexable reports whether gemm can read (or write) idx's rows of x in
// place: x float32 on the CPU and idx, if any, a contiguous int64 CPU index
// (product asks own_product besides: an AVX-512 CPU).
bool indexable(const at::Tensor &x, const at::Tensor &idx) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat &&
         (!idx.defined() || (idx.device().is_cpu() && idx.scalar_type() == at::kLong && idx.is_contiguous()));
}

// distinct reports whether ip[0, n) are n distinct rows (each in [0, R)).
bool distinct(const int64_t *ip, int64_t n, int64_t R) {
  std::vector<bool> seen(static_cast<size_t>(R));
  for (int64_t i = 0; i < n; ++i) {
    if (ip[i] < 0 || ip[i] >= R || seen[ip[i]]) return false;
    seen[ip[i]] = true;
  }
  return true;
}

// product adds a·b to rows oidx[ostart, ostart + a.rows()) of out, or
// writes it to rows [ostart, ostart + a.rows()) without oidx: on AVX-512
// CPUs one gemm that reads gathered rows where they are and adds into the
// output rows in its micro-kernel (each output one FMA chain continuing
// from the value it adds to), else mm_into_rows on gathered copies.
void product(at::Tensor &out, const at::Tensor &oidx, int64_t ostart, const Rows &a, const Rows &b) {
  const int64_t m = a.rows();
  if (m == 0) return;
  if (hl::own_product(a.t) && indexable(a.t, a.idx) && indexable(b.t, b.idx) && indexable(out, oidx) &&
      out.stride(1) == 1 && (!oidx.defined() || distinct(oidx.data_ptr<int64_t>() + ostart, m, out.size(0)))) {
    float *o = out.data_ptr<float>() + (oidx.defined() ? 0 : ostart * out.stride(0));
    hl::gemm(m, b.cols(), a.cols(), a.operand(), b.operand(), o, out.stride(0), nullptr,
             oidx.defined() ? oidx.data_ptr<int64_t>() + ostart : nullptr, oidx.defined());
    return;
  }
  mm_into_rows(out, oidx, ostart, m, a.tensor(), b.tensor());
}

// for_groups calls f(j, start, n) for each group j with rows, its n = loads[j]
// rows starting at row start of the rows sorted by group.
template <typename F>
void for_groups(const std::vector<int64_t> &loads, F &&f) {
  int64_t start = 0;
  for (size_t j = 0; j < loads.size(); ++j) {
    if (loads[j] > 0) f(j, start, loads[j]);
    start += loads[j];
  }
}

struct GroupedMM : public torch::autograd::Function<GroupedMM> {
  // y[dest[i]] += x[src[i]] · op(w[j]) for the rows i of group j, where
  // op(w) = w, or wᵀ when trans.
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                               std::vector<int64_t> loads, const c10::optional<at::Tensor> &src_opt,
                               const c10::optional<at::Tensor> &dest_opt, int64_t out_rows, bool trans) {
    // The indices are optional arguments, not tensors: autograd gives them
    // no gradient and does not ask for one.
    const at::Tensor src = src_opt.value_or(at::Tensor()), dest = dest_opt.value_or(at::Tensor());
    RECORD_USER_SCOPE("hl::grouped_mm");
    const int64_t q = trans ? w.size(1) : w.size(2);
    int64_t M = 0;
    for (int64_t n : loads) M += n;
    at::Tensor y = dest.defined() ? at::zeros({out_rows, q}, x.options()) : at::empty({M, q}, x.options());
    for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
      product(y, dest, start, Rows{x, src, start, n}, trans ? whole(w[j]).T() : whole(w[j]));
    });
    ctx->save_for_backward({x, w});
    ctx->saved_data["src"] = src_opt;
    ctx->saved_data["dest"] = dest_opt;
    ctx->saved_data["loads"] = loads;
    ctx->saved_data["trans"] = trans;
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
    for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
      const Rows gj{gy, dest, start, n};
      if (need_x) product(gx, src, start, gj, trans ? whole(w[j]) : whole(w[j]).T());
      if (need_w) {
        // The group's input rows again: read anew rather than saved by the
        // forward, which would hold all gathered rows (K per token of x in
        // the out projection) until the backward.
        const Rows xj{x, src, start, n};
        auto gwj = gw[j];
        product(gwj, at::Tensor(), 0, trans ? gj.T() : xj.T(), trans ? xj : gj);
      }
    });
    return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// RoutedIn and RoutedOut are the two projections of a routed sublayer whose
// weight w has S shared rows and then G groups of g routed rows (models/
// mohd's gathered path), each one node that owns the whole weight: its
// gradient is written row block by row block (the shared rows by one GEMM,
// each group's by one), where two ops on views of w would each produce a
// zero-filled full-size gradient for autograd to add up. RoutedIn's
// forward is one kernel (routed_gemm, gemm.cc: each output's chain runs
// through the shared rows and then the token's groups in registers, where
// per-group products added into the output reread it from memory once per
// group); RoutedOut writes the shared product and each group's into their
// columns of one result. The shared product starts x's gradient in both
// backwards: no zero fill and no addition of two results.

// group_w is group j's g rows of w (after the S shared ones).
at::Tensor group_w(const at::Tensor &w, int64_t S, int64_t g, size_t j) {
  return w.narrow(0, S + static_cast<int64_t>(j) * g, g);
}

// zero_empty_groups zeroes the gradient rows of the groups without rows.
void zero_empty_groups(at::Tensor &gw, const std::vector<int64_t> &loads, int64_t S, int64_t g) {
  for (size_t j = 0; j < loads.size(); ++j)
    if (loads[j] == 0) group_w(gw, S, g, j).zero_();
}

// routed_rows lists, for routed_gemm, each row's K assignments in order of
// group: xrow[t·K + q] is the row of x (an assignment t·K + k) and
// wrow[t·K + q] the first row of its group in w (S + j·g), for the q-th
// smallest group j of row t. order lists the assignments sorted by group,
// loads[j] of group j.
void routed_rows(const at::Tensor &order, const std::vector<int64_t> &loads, int64_t R, int64_t K, int64_t S,
                 int64_t g, std::vector<int64_t> &xrow, std::vector<int64_t> &wrow) {
  const int64_t M = order.size(0);
  const int64_t *op = order.data_ptr<int64_t>();
  xrow.resize(M);
  wrow.resize(M);
  // Visiting the assignments by group fills each row's slots in order of
  // group (a row picks a group at most once).
  std::vector<int64_t> filled(R, 0);
  for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
    for (int64_t i = start; i < start + n; ++i) {
      const int64_t a = op[i], t = a / K, q = filled[t]++;
      xrow[t * K + q] = a;
      wrow[t * K + q] = S + static_cast<int64_t>(j) * g;
    }
  });
}

struct RoutedIn : public torch::autograd::Function<RoutedIn> {
  // y [R, n] = xs·w[:S] + Σ_k x[t·K + k]·w_j for row t, whose k-th
  // assignment is in group j; x [R·K, g] in order of rows, order [R·K] the
  // assignments sorted by group (loads[j] in group j), xs [R, S] (S = w's
  // rows − G·g).
  static variable_list forward(AutogradContext *ctx, const at::Tensor &xs, const at::Tensor &x, const at::Tensor &w,
                               std::vector<int64_t> loads, const at::Tensor &order_in, int64_t R) {
    RECORD_USER_SCOPE("hl::routed_in");
    const int64_t g = x.size(1), S = w.size(0) - static_cast<int64_t>(loads.size()) * g;
    const int64_t K = R > 0 ? x.size(0) / R : 0;  // 0: no assignments
    const at::Tensor order = order_in.detach();
    // The row each assignment adds to: its token, a / K.
    const at::Tensor tok = at::floor_divide(order, K > 0 ? K : 1);
    at::Tensor y;
    if (hl::own_product(x) && indexable(xs, at::Tensor()) && indexable(w, at::Tensor()) && w.stride(1) == 1 &&
        x.is_contiguous() && xs.stride(1) == 1) {
      // One kernel: each row's shared chain and its groups' in registers.
      std::vector<int64_t> xrow, wrow;
      routed_rows(order, loads, R, K, S, g, xrow, wrow);
      y = at::empty({R, w.size(1)}, x.options());
      hl::routed_gemm(R, w.size(1), S, g, K, xs.data_ptr<float>(), xs.stride(0), x.data_ptr<float>(), xrow.data(),
                      wrow.data(), w.data_ptr<float>(), w.stride(0), w.size(0), y.data_ptr<float>(), y.stride(0));
    } else {
      y = S > 0 ? hl::mm(xs, w.narrow(0, 0, S)) : at::zeros({R, w.size(1)}, x.options());
      for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
        product(y, tok, start, Rows{x, order, start, n}, whole(group_w(w, S, g, j)));
      });
    }
    ctx->save_for_backward({xs, x, w});
    ctx->saved_data["order"] = order;
    ctx->saved_data["tok"] = tok;
    ctx->saved_data["loads"] = loads;
    return {y};
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::routed_in_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &xs = saved[0], &x = saved[1], &w = saved[2];
    const at::Tensor order = ctx->saved_data["order"].toTensor(), tok = ctx->saved_data["tok"].toTensor();
    const auto loads = ctx->saved_data["loads"].toIntVector();
    const int64_t g = x.size(1), S = w.size(0) - static_cast<int64_t>(loads.size()) * g;
    const at::Tensor gy = grads[0].contiguous();
    at::Tensor gxs, gx = at::zeros_like(x), gw = at::empty_like(w);
    if (S > 0) {
      gxs = hl::mm(gy, w.narrow(0, 0, S).t());
      auto rows = gw.narrow(0, 0, S);
      hl::mm_out(rows, xs.t(), gy);
    }
    zero_empty_groups(gw, loads, S, g);
    for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
      const Rows gj{gy, tok, start, n};
      product(gx, order, start, gj, whole(group_w(w, S, g, j)).T());
      auto gwj = group_w(gw, S, g, j);
      product(gwj, at::Tensor(), 0, Rows{x, order, start, n}.T(), gj);
    });
    return {gxs, gx, gw, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct RoutedOut : public torch::autograd::Function<RoutedOut> {
  // y [R, S + G·g]: y[:, :S] = x·w[:S]ᵀ, and group j's columns
  // y[t, S + j·g : S + (j+1)·g] = x[t]·w_jᵀ for the rows t = src[i] of group
  // j (no row twice in a group), zero for the rows without it; x [R, p],
  // w [S + G·g, p]. The products write into y's columns where they lie: no
  // separate shared and routed results to join.
  static variable_list forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                               std::vector<int64_t> loads, int64_t g, const at::Tensor &src_in) {
    RECORD_USER_SCOPE("hl::routed_out");
    const int64_t G = static_cast<int64_t>(loads.size()), S = w.size(0) - G * g, R = x.size(0);
    const at::Tensor src = src_in.detach();
    at::Tensor y = at::empty({R, S + G * g}, x.options());
    if (S > 0) {
      auto ys = y.narrow(1, 0, S);
      hl::mm_out(ys, x, w.narrow(0, 0, S).t());
    }
    y.narrow(1, S, G * g).zero_();
    for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
      auto yj = y.narrow(1, S + static_cast<int64_t>(j) * g, g);
      product(yj, src, start, Rows{x, src, start, n}, whole(group_w(w, S, g, j)).T());
    });
    ctx->save_for_backward({x, w});
    ctx->saved_data["src"] = src;
    ctx->saved_data["loads"] = loads;
    ctx->saved_data["g"] = g;
    return {y};
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::routed_out_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const at::Tensor src = ctx->saved_data["src"].toTensor();
    const auto loads = ctx->saved_data["loads"].toIntVector();
    const int64_t g = ctx->saved_data["g"].toInt(), S = w.size(0) - static_cast<int64_t>(loads.size()) * g;
    const at::Tensor gy = grads[0].contiguous();
    at::Tensor gx, gw = at::empty_like(w);
    if (S > 0) {
      const auto gys = gy.narrow(1, 0, S);
      gx = hl::mm(gys, w.narrow(0, 0, S));
      auto rows = gw.narrow(0, 0, S);
      hl::mm_out(rows, gys.t(), x);
    } else {
      gx = at::zeros_like(x);
    }
    zero_empty_groups(gw, loads, S, g);
    for_groups(loads, [&](size_t j, int64_t start, int64_t n) {
      // Group j's columns of gy, at its rows src.
      const Rows gj{gy.narrow(1, S + static_cast<int64_t>(j) * g, g), src, start, n};
      product(gx, src, start, gj, whole(group_w(w, S, g, j)));
      auto gwj = group_w(gw, S, g, j);
      product(gwj, at::Tensor(), 0, gj.T(), Rows{x, src, start, n});
    });
    return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The entry points' checks of their arguments, op naming the entry point.

// read_loads copies the loads of the groups (none negative) into ls and
// returns their sum M.
int64_t read_loads(const char *op, const int64_t *loads, int64_t groups, std::vector<int64_t> &ls) {
  if (groups < 0 || (groups > 0 && loads == nullptr)) throw hl::Error(HL_ERR_VALUE, std::string(op) + ": no loads");
  ls.assign(loads, loads + groups);
  int64_t M = 0;
  for (int64_t n : ls) {
    if (n < 0) throw hl::Error(HL_ERR_VALUE, std::string(op) + ": negative load");
    M += n;
  }
  return M;
}

// check_routed checks what RoutedIn and RoutedOut share, w [S + G·g, ·]
// with S ≥ 0, and reads the loads (read_loads).
int64_t check_routed(const char *op, const at::Tensor &W, const int64_t *loads, int64_t groups, int64_t g,
                     std::vector<int64_t> &ls) {
  if (W.dim() != 2) throw hl::Error(HL_ERR_SHAPE, std::string(op) + ": w must be 2-D [S + groups·g, ·]");
  if (g < 1 || W.size(0) < groups * g)
    throw hl::Error(HL_ERR_SHAPE, std::string(op) + ": w has " + std::to_string(W.size(0)) + " rows, fewer than " +
                                      std::to_string(groups) + " groups of " + std::to_string(g));
  return read_loads(op, loads, groups, ls);
}

// check_index is a group-sorted row index (a gather's src or a
// scatter's dest): int64 [M], every entry in [0, bound).
at::Tensor check_index(const char *op, const char *name, hl_tensor h, int64_t M, int64_t bound) {
  if (h == nullptr) throw hl::Error(HL_ERR_VALUE, std::string(op) + ": " + name + " is required");
  at::Tensor t = hl::T(h);
  if (t.dim() != 1 || t.size(0) != M || t.scalar_type() != at::kLong)
    throw hl::Error(HL_ERR_SHAPE, std::string(op) + ": " + name + " must be int64 [" + std::to_string(M) + "] (the loads' sum)");
  if (M > 0) {
    const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
    if (lo < 0 || hi >= bound)
      throw hl::Error(HL_ERR_INDEX, std::string(op) + ": " + name + " holds " + std::to_string(lo < 0 ? lo : hi) +
                                        ", outside [0, " + std::to_string(bound) + ")");
  }
  return t;
}

// repeat_in_group finds, among rows sorted by group (loads[j] of them in
// group j), the first whose row(i) in [0, R) its group already had: it
// returns that row and its group, or {-1, -1}.
template <typename Row>
std::pair<int64_t, int64_t> repeat_in_group(const std::vector<int64_t> &loads, int64_t R, const Row &row) {
  std::vector<int64_t> last(static_cast<size_t>(R), -1);
  int64_t i = 0;
  for (int64_t j = 0; j < static_cast<int64_t>(loads.size()); ++j)
    for (const int64_t e = i + loads[j]; i < e; ++i) {
      const int64_t t = row(i);
      if (last[t] == j) return {t, j};
      last[t] = j;
    }
  return {-1, -1};
}

// check_routed_order checks that order lists every assignment once and
// that no row's K assignments fall twice in one group (loads[j] of them
// in group j): what RoutedIn's kernel and its scattered products rely on.
void check_routed_order(const at::Tensor &order, const std::vector<int64_t> &loads, int64_t K) {
  const auto o = order.to(at::kCPU).contiguous();
  const int64_t M = o.size(0), *op = o.data_ptr<int64_t>();
  if (M == 0) return;
  if (!distinct(op, M, M)) throw hl::Error(HL_ERR_VALUE, "routed_in: order repeats an assignment");
  const auto [t, j] = repeat_in_group(loads, M / K, [&](int64_t i) { return op[i] / K; });
  if (t >= 0)
    throw hl::Error(HL_ERR_VALUE, "routed_in: row " + std::to_string(t) + " has two assignments in group " +
                                      std::to_string(j));
}

}  // namespace

extern "C" {

hl_status hl_grouped_mm(hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups, hl_tensor src,
                        hl_tensor dest, int64_t out_rows, int32_t trans_w, hl_tensor *out) {
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
    std::vector<int64_t> ls;
    const int64_t M = read_loads("grouped_mm", loads, groups, ls);
    at::Tensor S, D;
    if (src != nullptr) {
      S = check_index("grouped_mm", "src", src, M, X.size(0));
    } else if (X.size(0) != M) {
      throw hl::Error(HL_ERR_SHAPE, "grouped_mm: x has " + std::to_string(X.size(0)) + " rows, the loads sum to " +
                                        std::to_string(M));
    }
    if (dest != nullptr) {
      if (out_rows < 0) throw hl::Error(HL_ERR_VALUE, "grouped_mm: negative out_rows");
      D = check_index("grouped_mm", "dest", dest, M, out_rows);
    }
    auto r = GroupedMM::apply(X, W, ls, S.defined() ? c10::optional<at::Tensor>(S) : c10::nullopt,
                              D.defined() ? c10::optional<at::Tensor>(D) : c10::nullopt, out_rows, trans);
    hl::put(out, r[0]);
  })
}

hl_status hl_routed_in(hl_tensor xs, hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups, hl_tensor order,
                       int64_t rows, hl_tensor *out) {
  HL_TRY({
    const auto &X = hl::T(x);
    const auto &W = hl::T(w);
    if (X.dim() != 2) throw hl::Error(HL_ERR_SHAPE, "routed_in: x must be [M, g]");
    std::vector<int64_t> ls;
    const int64_t g = X.size(1), M = check_routed("routed_in", W, loads, groups, g, ls), S = W.size(0) - groups * g;
    if (X.size(0) != M)
      throw hl::Error(HL_ERR_SHAPE, "routed_in: x has " + std::to_string(X.size(0)) + " rows, the loads sum to " +
                                        std::to_string(M));
    if (rows < 0) throw hl::Error(HL_ERR_VALUE, "routed_in: negative rows");
    if ((rows == 0 && M > 0) || (rows > 0 && M % rows != 0))
      throw hl::Error(HL_ERR_SHAPE, "routed_in: x has " + std::to_string(M) + " rows, not K per row of " +
                                        std::to_string(rows));
    at::Tensor XS;
    if (S > 0) {
      if (xs == nullptr) throw hl::Error(HL_ERR_VALUE, "routed_in: w has " + std::to_string(S) + " shared rows but xs is missing");
      XS = hl::T(xs);
      if (XS.dim() != 2 || XS.size(0) != rows || XS.size(1) != S)
        throw hl::Error(HL_ERR_SHAPE, "routed_in: xs must be [" + std::to_string(rows) + ", " + std::to_string(S) + "]");
      if (XS.scalar_type() != X.scalar_type()) throw hl::Error(HL_ERR_DTYPE, "routed_in: xs and x differ in dtype");
    } else {
      if (xs != nullptr && hl::T(xs).numel() > 0)
        throw hl::Error(HL_ERR_SHAPE, "routed_in: xs given but w has no shared rows (" + std::to_string(W.size(0)) +
                                          " rows, " + std::to_string(groups) + " groups of " + std::to_string(g) + ")");
      XS = at::empty({rows, 0}, X.options());
    }
    if (X.scalar_type() != W.scalar_type()) throw hl::Error(HL_ERR_DTYPE, "routed_in: x and w differ in dtype");
    const at::Tensor O = check_index("routed_in", "order", order, M, M);
    check_routed_order(O, ls, rows > 0 ? M / rows : 0);
    hl::put(out, RoutedIn::apply(XS, X, W, ls, O, rows)[0]);
  })
}

hl_status hl_routed_out(hl_tensor x, hl_tensor w, const int64_t *loads, int64_t groups, int64_t g, hl_tensor src,
                        hl_tensor *out) {
  HL_TRY({
    const auto &X = hl::T(x);
    const auto &W = hl::T(w);
    if (X.dim() != 2) throw hl::Error(HL_ERR_SHAPE, "routed_out: x must be [R, p]");
    std::vector<int64_t> ls;
    const int64_t M = check_routed("routed_out", W, loads, groups, g, ls);
    if (W.size(1) != X.size(1))
      throw hl::Error(HL_ERR_SHAPE, "routed_out: x has " + std::to_string(X.size(1)) + " columns, w's rows take " +
                                        std::to_string(W.size(1)));
    if (X.scalar_type() != W.scalar_type()) throw hl::Error(HL_ERR_DTYPE, "routed_out: x and w differ in dtype");
    const at::Tensor S = check_index("routed_out", "src", src, M, X.size(0));
    // Each group's rows are distinct: a row's columns of a group are one
    // product's, written once.
    const auto sc = S.to(at::kCPU).contiguous();
    const int64_t *sp = sc.data_ptr<int64_t>();
    const auto [t, j] = repeat_in_group(ls, X.size(0), [&](int64_t i) { return sp[i]; });
    if (t >= 0)
      throw hl::Error(HL_ERR_VALUE, "routed_out: row " + std::to_string(t) + " twice in group " + std::to_string(j));
    hl::put(out, RoutedOut::apply(X, W, ls, g, S)[0]);
  })
}

}  // extern "C"
