package sae

import "github.com/hiddenlab/hiddenlab/torch"

// InputScale is c, the constant the SAE multiplies its inputs by (1 before
// it is fitted).
func (a *SAE) InputScale() float64 { return a.scaleValue() }

// Latents returns the latents z [N, d_sae] of activations x [N, d_in] in the
// original units: Encode(c·x), the post-activation values (after ReLU, and
// the top-k for topk).
func (a *SAE) Latents(x *torch.Tensor) *torch.Tensor { return a.Encode(x.MulScalar(a.scaleValue())) }
