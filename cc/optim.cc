// optim.cc: optimizer steps and gradient clipping over parameter lists, each
// one call with libtorch's multi-tensor (_foreach) kernels.
#include <cmath>

#include <ATen/record_function.h>

#include "internal.h"

namespace {

// Parameters that have a gradient, with the state tensors at the same index.
struct Active {
  std::vector<at::Tensor> params, grads, s1, s2;
};

Active active(const hl_tensor *params, const hl_tensor *state1, const hl_tensor *state2, int64_t n) {
  if (n < 0 || (n > 0 && params == nullptr)) throw hl::Error(HL_ERR_VALUE, "bad parameter list");
  Active a;
  for (int64_t i = 0; i < n; i++) {
    const at::Tensor &p = hl::T(params[i]);
    const at::Tensor &g = p.grad();
    if (!g.defined()) continue;
    if (g.sizes() != p.sizes()) throw hl::Error(HL_ERR_SHAPE, "gradient shape differs from parameter " + std::to_string(i));
    a.params.push_back(p);
    a.grads.push_back(g);
    if (state1 != nullptr) a.s1.push_back(hl::T(state1[i]));
    if (state2 != nullptr) a.s2.push_back(hl::T(state2[i]));
  }
  return a;
}

}  // namespace

extern "C" {

hl_status hl_adamw_step(const hl_tensor *params, const hl_tensor *exp_avg, const hl_tensor *exp_avg_sq, int64_t n,
                        int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay) {
  HL_TRY({
    RECORD_USER_SCOPE("hl::adamw_step");
    if (n > 0 && (exp_avg == nullptr || exp_avg_sq == nullptr)) throw hl::Error(HL_ERR_VALUE, "adamw needs both moment lists");
    if (step < 1) throw hl::Error(HL_ERR_VALUE, "adamw step counts from 1, got " + std::to_string(step));
    Active a = active(params, exp_avg, exp_avg_sq, n);
    if (a.params.empty()) return nullptr;
    at::NoGradGuard g;
    // The order of operations is torch.optim.AdamW's (single-tensor path).
    if (weight_decay != 0) at::_foreach_mul_(a.params, 1 - lr * weight_decay);
    at::_foreach_mul_(a.s1, beta1);
    at::_foreach_add_(a.s1, a.grads, 1 - beta1);
    at::_foreach_mul_(a.s2, beta2);
    at::_foreach_addcmul_(a.s2, a.grads, a.grads, 1 - beta2);
    const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
    // The denominator one tensor at a time: a foreach sqrt would hold a
    // temporary the size of the whole group at once (82 MB for the
    // codebooks at C = 10,000 in hlbench -suite codebook-memory); one at a
    // time the extra peak is the largest tensor. Same ops in the same order.
    for (size_t i = 0; i < a.params.size(); i++) {
      auto denom = a.s2[i].sqrt();
      denom.div_(std::sqrt(bc2));
      denom.add_(eps);
      a.params[i].addcdiv_(a.s1[i], denom, -lr / bc1);
    }
  })
}

hl_status hl_sgd_step(const hl_tensor *params, const hl_tensor *momentum_buf, int64_t n, int64_t step, double lr,
                      double momentum, double dampening, double weight_decay, int32_t nesterov) {
  HL_TRY({
    if (n > 0 && momentum != 0 && momentum_buf == nullptr) throw hl::Error(HL_ERR_VALUE, "sgd with momentum needs buffers");
    Active a = active(params, momentum != 0 ? momentum_buf : nullptr, nullptr, n);
    if (a.params.empty()) return nullptr;
    at::NoGradGuard g;
    // torch.optim.SGD: d = g + wd·p; buf = d on the first step, else
    // momentum·buf + (1-dampening)·d; d = d + momentum·buf (nesterov) or buf.
    std::vector<at::Tensor> d = a.grads;
    if (weight_decay != 0) d = at::_foreach_add(a.grads, a.params, weight_decay);
    if (momentum != 0) {
      if (step <= 1) {
        for (size_t i = 0; i < d.size(); i++) a.s1[i].copy_(d[i]);
      } else {
        at::_foreach_mul_(a.s1, momentum);
        at::_foreach_add_(a.s1, d, 1 - dampening);
      }
      if (nesterov) d = at::_foreach_add(d, a.s1, momentum);
      else d = a.s1;
    }
    at::_foreach_add_(a.params, d, -lr);
  })
}

hl_status hl_clip_grad_norm(const hl_tensor *params, int64_t n, double max_norm, double *total_norm) {
  HL_TRY({
    Active a = active(params, nullptr, nullptr, n);
    if (a.params.empty()) {
      *total_norm = 0;
      return nullptr;
    }
    at::NoGradGuard g;
    // torch.nn.utils.clip_grad_norm_: the 2-norm of the per-tensor 2-norms.
    auto norms = at::_foreach_norm(a.grads, 2);
    at::Tensor total = at::stack(norms).norm(2);
    *total_norm = total.item<double>();
    if (max_norm > 0) {
      at::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
      for (auto &grad : a.grads) grad.mul_(coef);
    }
  })
}

}  // extern "C"
