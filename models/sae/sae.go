// Package sae is the sparse-autoencoder family: model.family: sae trains an
// SAE on the activations of one hook site of a finished run (any family
// whose model is an nn.Hookable: gpt, codebook, imported Hugging Face
// models, mohd), streamed from the frozen source model batch by batch.
//
// Two architectures (model.kind):
//
//   - topk (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"):
//     z = ReLU(TopK_k(W_enc(x − b_dec) + b_enc)), x̂ = W_dec z + b_dec, loss
//     the normalised MSE ‖x − x̂‖²/‖x − x̄‖² of the batch plus α·AuxK, with
//     AuxK the normalised MSE of the reconstruction of the residual e = x − x̂
//     (detached) by the top aux_k dead latents, α = aux_coef = 1/32 (the
//     paper's) and aux_k = d_in/2 by default (the paper's appendix B.1
//     heuristic, SAELens's default). The ReLU after
//     the top-k follows the paper's code (and SAELens): L0 ≤ k, equal to k
//     unless some of the k largest pre-activations are negative.
//   - relu (Bricken et al. 2023, "Towards Monosemanticity"): z = ReLU(W_enc(x −
//     b_dec) + b_enc), loss ‖x − x̂‖² (summed over dimensions, averaged over
//     tokens, as SAELens) plus l1·Σ_i z_i‖W_dec,i‖. Dead latents are
//     resampled every resample_every steps as in Bricken et al.: each latent
//     that has not fired for dead_tokens tokens gets, for an input x sampled
//     with probability ∝ its squared reconstruction loss, decoder column
//     x/‖x‖, encoder row 0.2·mean‖W_enc alive rows‖·x/‖x‖ and encoder bias 0.
//     Unlike the paper the inputs are drawn from the current step's batch
//     (not a 819,200-token sample), and the optimizer's moments of the
//     resampled rows are not reset (the engine owns the optimizer; a latent
//     dead for the whole window had zero gradients, so its moments have
//     decayed). No ghost grads.
//
// Common to both, as in the papers and SAELens: the pre-encoder bias b_dec
// is subtracted from the input; W_enc starts as W_decᵀ (Gao et al.; SAELens
// init_encoder_as_decoder_transpose) with W_dec's columns random unit
// vectors; b_dec starts at the mean of the first batch (SAELens's "mean"
// initialisation; Gao et al. use the geometric median); decoder columns are
// kept at unit norm. Unit norm: the component of W_dec's gradient parallel
// to each column is removed before the optimizer sees it (SAELens's
// remove_gradient_parallel_to_decoder_directions; Bricken et al.) — here by
// computing the forward with W = sg(W) + Δ − v(v·Δ), Δ = W − sg(W), whose
// value is W and whose gradient is g − v(v·g) per column v — and the columns
// are divided by their norms after every optimizer step (done at the start
// of the next Loss, Eval or Report, since the engine has no post-step hook:
// the last step's columns are renormalised when the run is reopened).
// Inputs are scaled by a constant c fitted on the first batch so that
// E‖c·x‖² = d_in (SAELens's normalize_activations: expected_average_only_in);
// metrics are reported in the original units where it matters (CE splicing
// decodes to c⁻¹·x̂) and are scale-free otherwise.
//
// Activations are streamed: each step runs the frozen source model on that
// step's batch of the source run's training data (train.batch sequences),
// stopping the forward pass at the site, and trains on its B·T tokens; no
// activation store, no shuffling buffer (SAELens shuffles a buffer of
// activations; here tokens of one step come from the same sequences).
package sae

import (
	"fmt"
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Kind is the SAE architecture.
type Kind string

// Architectures.
const (
	TopK Kind = "topk" // Gao et al. 2024
	ReLU Kind = "relu" // Bricken et al. 2023
)

// SAE is a sparse autoencoder of d_in-dimensional activations with d_sae
// latents. Its parameters live in its own store (the source model is not
// trained and not checkpointed with it).
type SAE struct {
	Kind Kind
	K    int           // active latents (topk)
	WEnc *torch.Tensor // [d_sae, d_in]
	BEnc *torch.Tensor // [d_sae]
	WDec *torch.Tensor // [d_in, d_sae]: column i is latent i's unit direction
	BDec *torch.Tensor // [d_in]
	// Scale is c, the input normalisation (a persistent buffer; 0 until fitted).
	Scale *torch.Tensor // [1]
	// SinceFired counts, per latent, the training tokens since it last fired
	// (a persistent buffer, so resumed and reopened runs keep it).
	SinceFired *torch.Tensor // [d_sae]
	store      *nn.Store
}

// NewSAE creates an SAE in a new store: W_dec with random unit columns,
// W_enc = W_decᵀ, zero biases. Seed libtorch first.
func NewSAE(kind Kind, dIn, dSAE, k int) *SAE {
	s := nn.NewStore()
	root := s.Root()
	var dec *torch.Tensor
	torch.WithScope(func() { // the unnormalised draw belongs to the scope
		d := torch.Randn([]int{dIn, dSAE})
		dec = d.Div(d.NormKeep(2, 0)).Retain()
	})
	a := &SAE{Kind: kind, K: k, store: s}
	var enc *torch.Tensor
	torch.WithScope(func() { enc = dec.Detach().T().Contiguous().Retain() }) // a leaf of its own
	a.WDec = root.Param("w_dec", dec)
	a.WEnc = root.Param("w_enc", enc)
	a.BEnc = root.Param("b_enc", torch.Zeros([]int{dSAE}))
	a.BDec = root.Param("b_dec", torch.Zeros([]int{dIn}))
	a.Scale = root.Buffer("scale", torch.Zeros([]int{1}), true)
	a.SinceFired = root.Buffer("since_fired", torch.Zeros([]int{dSAE}), true)
	return a
}

// Store holds the SAE's parameters and buffers.
func (a *SAE) Store() *nn.Store { return a.store }

// Close frees the SAE.
func (a *SAE) Close() { a.store.Close() }

// DIn and DSAE are the input and latent widths.
func (a *SAE) DIn() int  { return a.WDec.Size(0) }
func (a *SAE) DSAE() int { return a.WDec.Size(1) }

// Fitted reports whether the input scale has been set.
func (a *SAE) Fitted() bool {
	var c float64
	torch.WithScope(func() { c = a.Scale.Item() })
	return c > 0
}

// Fit sets the input scale c (E‖c·x‖² = d_in) and b_dec (the mean of c·x)
// from activations x [N, d_in] in the original units.
func (a *SAE) Fit(x *torch.Tensor) {
	torch.NoGrad(func() {
		torch.WithScope(func() {
			ms := x.Square().Sum(-1).Mean().Item()
			c := 1.0
			if ms > 0 {
				c = math.Sqrt(float64(a.DIn()) / ms)
			}
			a.Scale.Fill(c)
			a.BDec.CopyFrom(x.MulScalar(c).Mean(0))
		})
	})
}

// NormalizeDecoder divides W_dec's columns by their norms.
func (a *SAE) NormalizeDecoder() {
	torch.NoGrad(func() {
		torch.WithScope(func() { a.WDec.CopyFrom(a.WDec.Div(a.WDec.NormKeep(2, 0).ClampMin(1e-12))) })
	})
}

// scaleValue is c.
func (a *SAE) scaleValue() float64 {
	var c float64
	torch.WithScope(func() { c = a.Scale.Item() })
	if c == 0 {
		return 1
	}
	return c
}

// PreActs are W_enc(x − b_dec) + b_enc for normalised inputs x [N, d_in].
func (a *SAE) PreActs(x *torch.Tensor) *torch.Tensor {
	return torch.Linear(x.Sub(a.BDec), a.WEnc, a.BEnc)
}

// Activate maps pre-activations to latents: ReLU, after keeping the top k
// for topk.
func (a *SAE) Activate(pre *torch.Tensor) *torch.Tensor {
	if a.Kind != TopK {
		return pre.Relu()
	}
	vals, idx := pre.TopK(a.K, -1)
	return torch.ZerosLike(pre).Scatter(-1, idx, vals.Relu())
}

// Encode returns the latents [N, d_sae] of normalised inputs x [N, d_in].
func (a *SAE) Encode(x *torch.Tensor) *torch.Tensor { return a.Activate(a.PreActs(x)) }

// Decode returns the normalised reconstruction W_dec z + b_dec.
func (a *SAE) Decode(z *torch.Tensor) *torch.Tensor { return torch.Linear(z, a.WDec, a.BDec) }

// Reconstruct maps activations x [N, d_in] in the original units to their
// reconstruction in the original units.
func (a *SAE) Reconstruct(x *torch.Tensor) *torch.Tensor {
	c := a.scaleValue()
	return a.Decode(a.Encode(x.MulScalar(c))).DivScalar(c)
}

// projectedDecoder is W_dec in value, with gradient g − v(v·g) per column.
func (a *SAE) projectedDecoder() *torch.Tensor {
	v := a.WDec.Detach()
	delta := a.WDec.Sub(v)
	return v.Add(delta).Sub(v.Mul(v.Mul(delta).SumKeep(0)))
}

// Loss is one training step's loss on normalised inputs x [N, d_in], its
// parts, and the latents (detached) for dead-latent tracking.
type Loss struct {
	Total  *torch.Tensor
	MSE    float64 // mean over tokens of ‖x − x̂‖²
	NMSE   float64 // ‖x − x̂‖²/‖x − x̄‖² over the batch
	L0     float64 // mean active latents per token
	L1     float64 // mean Σ_i z_i (relu)
	AuxK   float64 // AuxK's normalised MSE (topk, when latents are dead)
	Dead   int     // latents dead at this step
	Latent *torch.Tensor
}

// nmse is Σ‖x − y‖² / Σ‖x − x̄‖² over the rows.
func nmse(x, y *torch.Tensor) *torch.Tensor {
	return x.Sub(y).Square().Sum().Div(x.Sub(x.MeanKeep(0)).Square().Sum().ClampMin(1e-12))
}

// TrainLoss computes the loss of normalised inputs x [N, d_in]; dead marks
// the latents that count as dead (for AuxK).
func (a *SAE) TrainLoss(x *torch.Tensor, dead *torch.Tensor, auxK int, auxCoef, l1 float64) Loss {
	pre := a.PreActs(x)
	z := a.Activate(pre)
	wdec := a.projectedDecoder()
	xhat := torch.Linear(z, wdec, a.BDec)
	sq := x.Sub(xhat).Square().Sum(-1) // [N]
	n := nmse(x, xhat)
	out := Loss{MSE: sq.Mean().Item(), NMSE: n.Item(), Latent: z.Detach()}
	out.L0 = z.Detach().GtScalar(0).To(torch.Float32).Sum(-1).Mean().Item()
	nDead := int(dead.To(torch.Float32).Sum().Item())
	out.Dead = nDead
	switch a.Kind {
	case TopK:
		out.Total = n
		if nDead > 0 && auxK > 0 {
			kk := min(auxK, nDead)
			masked := pre.MaskedFill(dead.LogicalNot(), math.Inf(-1))
			vals, idx := masked.TopK(kk, -1)
			zAux := torch.ZerosLike(pre).Scatter(-1, idx, vals.Relu())
			e := x.Sub(xhat).Detach()
			aux := nmse(e, torch.Linear(zAux, wdec, nil))
			if v := aux.Item(); !math.IsNaN(v) && !math.IsInf(v, 0) {
				out.AuxK = v
				out.Total = out.Total.Add(aux.MulScalar(auxCoef))
			}
		}
	default:
		l1v := z.Mul(wdec.Norm(2, 0)).Sum(-1).Mean()
		out.L1 = l1v.Item()
		out.Total = sq.Mean().Add(l1v.MulScalar(l1))
	}
	return out
}

// Track adds n tokens to every latent's count and resets those that fired
// in z [N, d_sae].
func (a *SAE) Track(z *torch.Tensor) {
	torch.NoGrad(func() {
		torch.WithScope(func() {
			fired := z.GtScalar(0).Any(0)
			next := torch.Where(fired, torch.ZerosLike(a.SinceFired), a.SinceFired.AddScalar(float64(z.Size(0))))
			a.SinceFired.CopyFrom(next)
		})
	})
}

// DeadMask marks the latents that have not fired for window tokens.
func (a *SAE) DeadMask(window int) *torch.Tensor { return a.SinceFired.GeScalar(float64(window)) }

// Resample re-initialises the dead latents (Bricken et al.; see the package
// doc) from normalised inputs x [N, d_in] and returns how many it changed.
func (a *SAE) Resample(x *torch.Tensor, window int) int {
	n := 0
	torch.NoGrad(func() {
		torch.WithScope(func() {
			dead := a.DeadMask(window)
			var ids []int64
			for i, d := range dead.To(torch.CPU).Bools() {
				if d {
					ids = append(ids, int64(i))
				}
			}
			n = len(ids)
			if n == 0 {
				return
			}
			dev := a.WDec.Device()
			idx := torch.FromSlice(ids, []int{n}, dev)
			xhat := a.Decode(a.Encode(x))
			loss := x.Sub(xhat).Square().Sum(-1)
			w := loss.Square().AddScalar(1e-12)
			pick := w.Multinomial(n, n > x.Size(0))
			chosen := x.IndexSelect(0, pick)
			dirs := chosen.Div(chosen.NormKeep(2, -1).ClampMin(1e-12)) // [n, d_in]
			alive := dead.LogicalNot()
			encNorm := 1.0
			if alive.Any().Item() != 0 {
				encNorm = a.WEnc.Norm(2, 1).Index(alive).Mean().Item()
			}
			a.WDec.CopyFrom(a.WDec.IndexPut([]*torch.Tensor{nil, idx}, dirs.T(), false))
			a.WEnc.CopyFrom(a.WEnc.IndexPut([]*torch.Tensor{idx}, dirs.MulScalar(0.2*encNorm), false))
			a.BEnc.CopyFrom(a.BEnc.IndexPut([]*torch.Tensor{idx}, torch.Zeros([]int{n}, dev), false))
			a.SinceFired.CopyFrom(a.SinceFired.IndexPut([]*torch.Tensor{idx}, torch.Zeros([]int{n}, dev), false))
		})
	})
	return n
}

func (k Kind) valid() error {
	if k != TopK && k != ReLU {
		return fmt.Errorf("kind %q: want topk or relu", k)
	}
	return nil
}
