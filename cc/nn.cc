// nn.cc: activations with a dim, losses, normalisation, embedding, attention.
#include "internal.h"

using hl::T;

namespace {

int64_t reduction(int32_t r) {
  switch (r) {
    case HL_REDUCTION_NONE: return at::Reduction::None;
    case HL_REDUCTION_MEAN: return at::Reduction::Mean;
    case HL_REDUCTION_SUM: return at::Reduction::Sum;
  }
  throw hl::Error(HL_ERR_VALUE, "unknown reduction " + std::to_string(r));
}

}  // namespace

extern "C" {

hl_status hl_softmax(hl_tensor t, int64_t dim, hl_tensor *out) { HL_TRY(hl::put(out, hl::softmax(T(t), dim))) }
hl_status hl_log_softmax(hl_tensor t, int64_t dim, hl_tensor *out) { HL_TRY(hl::put(out, T(t).log_softmax(dim))) }

hl_status hl_dropout(hl_tensor t, double p, int32_t train, hl_tensor *out) {
  HL_TRY({
    if (p < 0 || p > 1) throw hl::Error(HL_ERR_VALUE, "dropout probability must be in [0, 1], got " + std::to_string(p));
    hl::put(out, at::dropout(T(t), p, train != 0));
  })
}

hl_status hl_embedding(hl_tensor weight, hl_tensor indices, hl_tensor *out) {
  HL_TRY(hl::put(out, at::embedding(T(weight), T(indices))))
}

hl_status hl_layer_norm(hl_tensor x, int32_t nnorm, hl_tensor weight, hl_tensor bias, double eps, hl_tensor *out) {
  HL_TRY({
    const auto &in = T(x);
    if (nnorm < 1 || nnorm > in.dim())
      throw hl::Error(HL_ERR_SHAPE, "layer_norm over " + std::to_string(nnorm) + " trailing dims of a " +
                                        std::to_string(in.dim()) + "-d tensor");
    auto shape = in.sizes().slice(in.dim() - nnorm);
    if (nnorm == 1 && weight != nullptr && bias != nullptr && T(weight).dim() == 2) {
      // A gain and bias per group: x [..., G, d], weight and bias [G, d].
      const auto &w = T(weight), &b = T(bias);
      if (in.dim() < 2 || w.sizes() != in.sizes().slice(in.dim() - 2) || b.sizes() != w.sizes())
        throw hl::Error(HL_ERR_SHAPE, "layer_norm: a per-group weight " + c10::str(w.sizes()) + " and bias " +
                                          c10::str(b.sizes()) + " must be the input's last two dims (input " +
                                          c10::str(in.sizes()) + ")");
      hl::put(out, hl::group_layer_norm(in.contiguous(), w, b, eps));
    } else {
      hl::put(out, at::layer_norm(in, shape, hl::opt(weight), hl::opt(bias), eps));
    }
  })
}

hl_status hl_cross_entropy(hl_tensor logits, hl_tensor target, hl_tensor weight, int32_t red, int64_t ignore_index,
                           double label_smoothing, hl_tensor *out) {
  HL_TRY(hl::put(out, at::cross_entropy_loss(T(logits), T(target), hl::opt(weight), reduction(red), ignore_index,
                                             label_smoothing)))
}

hl_status hl_mse_loss(hl_tensor a, hl_tensor b, int32_t red, hl_tensor *out) {
  HL_TRY(hl::put(out, at::mse_loss(T(a), T(b), reduction(red))))
}

hl_status hl_kl_div(hl_tensor input, hl_tensor target, int32_t red, int32_t log_target, hl_tensor *out) {
  HL_TRY(hl::put(out, at::kl_div(T(input), T(target), reduction(red), log_target != 0)))
}

hl_status hl_attention(hl_tensor q, hl_tensor k, hl_tensor v, hl_tensor mask, double dropout_p, int32_t is_causal,
                       hl_tensor *out) {
  HL_TRY({
    if (is_causal && mask != nullptr) throw hl::Error(HL_ERR_VALUE, "attention takes a mask or is_causal, not both");
    hl::put(out, hl::attention(T(q), T(k), T(v), hl::opt(mask), dropout_p, is_causal != 0));
  })
}

}  // extern "C"
