// monarch.cc: models/mohd's group fusion F(y) = Pᵀ·BD₂·P·BD₁·y as one
// custom autograd node.
//
// Composed from libtorch ops, the two batched products read y and the
// intermediate through transposed views, and bmm copies every batch of a
// non-contiguous operand separately (16 copies of [BT, g] and 8 of [BT, N]
// per use at D = 128, in the forward and again in the backward, where the
// gradients arrive permuted). Here each operand is made contiguous once, in
// the layout its product wants, forward and backward.
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/record_function.h>

#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Monarch : public torch::autograd::Function<Monarch> {
  // y [BT, D] in N groups of g; bd1 [N, g, g], bd2 [g, N, N].
  static variable_list forward(AutogradContext *ctx, const at::Tensor &y, const at::Tensor &bd1,
                               const at::Tensor &bd2) {
    RECORD_USER_SCOPE("hl::monarch");
    const int64_t BT = y.size(0), D = y.size(1), N = bd1.size(0), g = bd1.size(1);
    auto yt = y.reshape({BT, N, g}).transpose(0, 1).contiguous();  // [N, BT, g]: group n's rows
    auto a = at::bmm(yt, bd1);                                      // BD₁ within each group
    auto at_ = a.permute({2, 1, 0}).contiguous();                   // P: [g, BT, N]
    auto b = at::bmm(at_, bd2);                                     // BD₂ across groups
    ctx->save_for_backward({yt, at_, bd1, bd2});
    return {b.permute({1, 2, 0}).reshape({BT, D})};  // Pᵀ
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RECORD_USER_SCOPE("hl::monarch_backward");
    const auto s = ctx->get_saved_variables();
    const at::Tensor &yt = s[0], &at_ = s[1], &bd1 = s[2], &bd2 = s[3];
    const int64_t N = bd1.size(0), g = bd1.size(1), BT = yt.size(1);
    auto gb = grads[0].reshape({BT, N, g}).permute({2, 0, 1}).contiguous();  // [g, BT, N]
    auto gbd2 = at::bmm(at_.transpose(1, 2), gb);
    auto ga = at::bmm(gb, bd2.transpose(1, 2)).permute({2, 1, 0}).contiguous();  // [N, BT, g]
    auto gbd1 = at::bmm(yt.transpose(1, 2), ga);
    auto gy = at::bmm(ga, bd1.transpose(1, 2)).transpose(0, 1).reshape({BT, N * g});
    return {gy, gbd1, gbd2};
  }
};

}  // namespace

extern "C" {

hl_status hl_monarch(hl_tensor y, hl_tensor bd1, hl_tensor bd2, hl_tensor *out) {
  HL_TRY({
    const auto &Y = hl::T(y);
    const auto &B1 = hl::T(bd1);
    const auto &B2 = hl::T(bd2);
    if (Y.dim() != 2 || B1.dim() != 3 || B2.dim() != 3)
      throw hl::Error(HL_ERR_SHAPE, "monarch: need y [BT, D], bd1 [N, g, g] and bd2 [g, N, N]");
    const int64_t N = B1.size(0), g = B1.size(1);
    if (B1.size(2) != g || B2.size(0) != g || B2.size(1) != N || B2.size(2) != N || Y.size(1) != N * g)
      throw hl::Error(HL_ERR_SHAPE, "monarch: y [" + std::to_string(Y.size(0)) + ", " + std::to_string(Y.size(1)) +
                                        "] does not fit bd1 [N, g, g] and bd2 [g, N, N] with N = " +
                                        std::to_string(N) + ", g = " + std::to_string(g));
    if (Y.scalar_type() != B1.scalar_type() || Y.scalar_type() != B2.scalar_type())
      throw hl::Error(HL_ERR_DTYPE, "monarch: y, bd1 and bd2 differ in dtype");
    hl::put(out, Monarch::apply(Y, B1, B2)[0]);
  })
}

}  // extern "C"
