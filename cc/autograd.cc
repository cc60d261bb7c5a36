// autograd.cc: requires_grad, backward, gradients.
#include "internal.h"

using hl::T;

extern "C" {

hl_status hl_set_requires_grad(hl_tensor t, int32_t requires_grad) { HL_TRY(T(t).set_requires_grad(requires_grad != 0)) }

hl_status hl_backward(hl_tensor t, hl_tensor grad, int32_t retain_graph, int32_t create_graph) {
  HL_TRY({
    at::Tensor g;
    if (grad != nullptr) g = T(grad);
    c10::optional<bool> retain;
    if (retain_graph) retain = true;
    T(t).backward(g, retain, create_graph != 0);
  })
}

hl_status hl_grad(hl_tensor t, hl_tensor *out) {
  HL_TRY({
    const at::Tensor &g = T(t).grad();
    *out = g.defined() ? hl::wrap(g) : nullptr;
  })
}

hl_status hl_set_grad(hl_tensor t, hl_tensor grad) {
  HL_TRY({
    if (grad == nullptr) T(t).mutable_grad().reset();
    else T(t).mutable_grad() = T(grad);
  })
}

hl_status hl_set_data(hl_tensor t, hl_tensor src) { HL_TRY(T(t).set_data(T(src))) }

hl_status hl_zero_grads(const hl_tensor *ts, int64_t n, int32_t set_to_none) {
  HL_TRY({
    for (int64_t i = 0; i < n; i++) {
      at::Tensor &g = T(ts[i]).mutable_grad();
      if (!g.defined()) continue;
      if (set_to_none) g.reset();
      else {
        if (g.grad_fn()) g = g.detach();
        else g.requires_grad_(false);
        g.zero_();
      }
    }
  })
}

}  // extern "C"
