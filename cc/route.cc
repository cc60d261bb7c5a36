// route.cc: a mixture router's choice and dispatch in one pass
// (models/mohd): each row's K best groups, and the assignments sorted by
// group.
//
// Composed from libtorch ops the same is a topk over rows of a few groups
// (N_r = 10 in the benchmark's MoHD), a one-hot sum for the loads and a
// sort of the BT·K group ids: three kernels made for long rows and large
// sorts, each a dispatch and a pass, 0.4 ms a router at BT = 2,048 on one
// thread. Here it is one pass over p and a counting sort. The outputs are
// integers (no gradient); the router's values are p.Gather(1, top).
#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <cmath>
#include <vector>

#include "internal.h"

namespace {

// before orders two groups of one row: the larger value first, NaN as the
// largest (as topk does), the lower index first between equals.
template <typename T>
bool before(T a, int64_t i, T b, int64_t j) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na != nb) return na;
  if (!na && a != b) return a > b;
  return i < j;
}

// route_topk writes each row's K best groups of p [R, G] into top [R, K]
// (best first), the assignments a = t·K + k sorted by group (within a
// group by a) into order [R·K], and each group's count into loads [G].
template <typename T>
void route_topk(const T *p, int64_t R, int64_t G, int64_t K, int64_t *top, int64_t *order, int64_t *loads) {
  std::fill(loads, loads + G, 0);
  std::vector<T> bv(K);
  for (int64_t t = 0; t < R; ++t) {
    const T *row = p + t * G;
    int64_t *bi = top + t * K, n = 0;
    bool nan = false;
    for (int64_t j = 0; j < G; ++j) nan |= std::isnan(row[j]);
    if (nan) {
      for (int64_t j = 0; j < G; ++j) hl::keep_best(row[j], j, bv.data(), bi, n, K, before<T>);
    } else {
      // Groups come in order of index, so a later equal value never
      // comes before: the plain comparison is the order.
      const auto larger = [](T a, int64_t, T b, int64_t) { return a > b; };
      for (int64_t j = 0; j < G; ++j) hl::keep_best(row[j], j, bv.data(), bi, n, K, larger);
    }
    for (int64_t k = 0; k < K; ++k) ++loads[bi[k]];
  }
  std::vector<int64_t> next(G);
  for (int64_t j = 0, s = 0; j < G; ++j) {
    next[j] = s;
    s += loads[j];
  }
  for (int64_t a = 0; a < R * K; ++a) order[next[top[a]]++] = a;
}

}  // namespace

extern "C" {

hl_status hl_route_topk(hl_tensor p, int64_t k, hl_tensor *top, hl_tensor *order, int64_t *loads) {
  HL_TRY({
    RECORD_USER_SCOPE("hl::route_topk");
    const auto &P = hl::T(p);
    if (P.dim() != 2) throw hl::Error(HL_ERR_SHAPE, "route_topk: p must be 2-D [rows, groups]");
    const int64_t R = P.size(0), G = P.size(1);
    if (k < 1 || k > G)
      throw hl::Error(HL_ERR_VALUE, "route_topk: k = " + std::to_string(k) + " outside [1, " + std::to_string(G) + "]");
    if (!at::isFloatingType(P.scalar_type())) throw hl::Error(HL_ERR_DTYPE, "route_topk: p must be floating point");
    if (loads == nullptr) throw hl::Error(HL_ERR_VALUE, "route_topk: no loads buffer");
    // On another device the rows come to the CPU (they are few: R × G) and
    // the indices go back.
    auto pc = P.detach().to(at::kCPU).contiguous();
    if (pc.scalar_type() != at::kFloat && pc.scalar_type() != at::kDouble) pc = pc.to(at::kFloat);
    auto tp = at::empty({R, k}, pc.options().dtype(at::kLong));
    auto op = at::empty({R * k}, pc.options().dtype(at::kLong));
    AT_DISPATCH_FLOATING_TYPES(pc.scalar_type(), "route_topk", [&] {
      route_topk(pc.data_ptr<scalar_t>(), R, G, k, tp.data_ptr<int64_t>(), op.data_ptr<int64_t>(), loads);
    });
    hl::put(top, tp.to(P.device()));
    hl::put(order, op.to(P.device()));
  })
}

}  // extern "C"
