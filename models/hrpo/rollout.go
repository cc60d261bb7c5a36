package hrpo

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// RolloutOptions control a rollout.
type RolloutOptions struct {
	MaxNew int // completion tokens at most
	// Greedy takes the argmax token (evaluation); the latent still
	// interpolates under p = softmax(top_k(z/τ)), as in the official
	// evaluation (do_sample with is_inference: argmax of the warped p).
	Greedy bool
	// LatentOff feeds plain token embeddings everywhere: the latent-off
	// evaluation of a hybrid policy (a forced to 1, without the 1e-4·i⊙ĥ
	// residue).
	LatentOff bool
}

// Rollout is the buffer of one batched rollout (brief §1.2): what the
// decode fed and sampled, so that one teacher-forced forward reproduces it.
// Its tensors belong to the scope that was open when it was created.
type Rollout struct {
	B, P, N int // rows, padded prompt length, completion steps taken
	// Prompts and Completions are the rows' tokens; a completion runs
	// through its first EOS (or has N tokens when it has none).
	Prompts, Completions [][]int32
	PromptIDs            *torch.Tensor // [B, P] int64, left-padded with PAD
	IDs                  *torch.Tensor // [B, N] int64 completion tokens, PAD after EOS
	// Latent [B, N, d] holds the latent computed with each completion token
	// (ĥ from the distribution it was sampled from, or the hidden state
	// that produced it); nil when nothing latent was fed.
	Latent *torch.Tensor
	// Think [B, N] (bool) marks the tokens fed back with the latent input:
	// think-span tokens (before the first "####" and EOS), except the last
	// generated one, which is never fed.
	Think *torch.Tensor
	// ThinkLen is each row's think-span length in tokens: those sampled
	// while thinking, the last one included.
	ThinkLen []int
	// Mask [B, N] (float32) is the completion mask: 1 through the first EOS.
	Mask      *torch.Tensor
	KeyMask   *torch.Tensor // [B, P+N] bool, false at left padding
	Positions *torch.Tensor // [B, P+N] int64 positions, counted from each row's BOS
	// LogP [B, N] is log p(y_t) under the decode's sampling distribution
	// p = softmax(top_k(z/τ)) ([Model.SampleLogits]), and Entropy [B, N]
	// the entropy of p.
	LogP, Entropy *torch.Tensor
	// EmbedsRatio [B, N−1] is mean_d(a) of each fed-back input, 1 where the
	// input was plain; nil without a gate.
	EmbedsRatio *torch.Tensor
}

// Latents returns the latents of the fed-back positions [B, N−1, d], or
// nil when the rollout fed none.
func (ro *Rollout) Latents() *torch.Tensor {
	if ro.Latent == nil || ro.N < 2 {
		return nil
	}
	return ro.Latent.Narrow(1, 0, ro.N-1)
}

// Rollout generates completions of prompts (one row each, any lengths)
// with the KV cache, feeding think-span tokens through the arm's latent
// input, and buffers everything the teacher-forced forward needs. Each
// decode step (brief §7):
//
//  1. p = softmax(top_k(z/τ)) from the last position's logits z
//     ([Model.SampleLogits]);
//  2. sample x ~ p (argmax when greedy);
//  3. ĥ = pᵀE/‖p‖₂ (or, for RawHidden, the hidden state that gave z);
//  4. thinking &&= x ∉ {####, EOS};
//  5. the next input is E[x], or the latent input where thinking;
//  6. buffer x, the latent, the mask and mean_d(a).
//
// Run it under torch.NoGrad: latents carry no gradient.
func (m *Model) Rollout(prompts [][]int32, o RolloutOptions) (*Rollout, error) {
	B := len(prompts)
	if B == 0 {
		return nil, fmt.Errorf("rollout: no prompts")
	}
	if o.MaxNew < 1 {
		return nil, fmt.Errorf("rollout: max_new %d must be positive", o.MaxNew)
	}
	P := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("rollout: prompt %d is empty", i)
		}
		P = max(P, len(p))
	}
	total := P + o.MaxNew
	if total > m.GPT.Config.Context {
		return nil, fmt.Errorf("rollout: prompt %d + %d new tokens exceeds the context %d", P, o.MaxNew, m.GPT.Config.Context)
	}
	dev := m.E().Device()
	ro := &Rollout{B: B, P: P, Prompts: prompts, Completions: make([][]int32, B), ThinkLen: make([]int, B)}
	pids := make([]int64, B*P)
	keys := make([]bool, B*total)
	pos := make([]int64, B*total)
	for b, p := range prompts {
		pad := P - len(p)
		for j := range P {
			pids[b*P+j] = int64(m.pad())
			if j >= pad {
				pids[b*P+j] = int64(p[j-pad])
			}
		}
		for j := range total {
			keys[b*total+j] = j >= pad
			pos[b*total+j] = int64(max(0, j-pad))
		}
	}
	ro.PromptIDs = torch.FromSlice(pids, []int{B, P}, dev)
	ro.KeyMask = torch.FromSlice(keys, []int{B, total}, dev)
	ro.Positions = torch.FromSlice(pos, []int{B, total}, dev)

	cache := m.GPT.NewKVCache(B, total)
	defer cache.Close()
	h := m.GPT.Hidden(m.GPT.Embed(ro.PromptIDs), &nn.ForwardOptions{
		Cache: cache, KeyMask: ro.KeyMask.Narrow(1, 0, P), Positions: ro.Positions.Narrow(1, 0, P),
	}).Select(1, -1)

	feedLatent := m.Arm.Latent() && !o.LatentOff
	var latents, logps, ents, ratios []*torch.Tensor
	thinking := make([]bool, B)
	done := make([]bool, B)
	for b := range thinking {
		thinking[b] = true
	}
	var ids []int64  // [t][b], completion tokens
	var think []bool // [t][b], fed-back think tokens
	for t := range o.MaxNew {
		s := torch.NewScope()
		z := m.GPT.Logits(h) // [B, V]
		logp := m.SampleLogits(z).LogSoftmax(-1)
		p := logp.Exp()
		var x *torch.Tensor
		if o.Greedy {
			x = z.Argmax(-1, false)
		} else {
			x = p.Multinomial(1, true).Squeeze(-1)
		}
		xs := x.Int64s()
		thinkNow := make([]bool, B)
		alive := false
		for b := range xs {
			if done[b] {
				xs[b] = int64(m.pad())
				continue
			}
			tok := int32(xs[b])
			ro.Completions[b] = append(ro.Completions[b], tok)
			thinking[b] = thinking[b] && !m.thinkEnds(ro.Completions[b], tok)
			thinkNow[b] = thinking[b]
			if thinking[b] {
				ro.ThinkLen[b]++
			}
			done[b] = tok == m.eos()
			alive = alive || !done[b]
		}
		x = torch.FromSlice(xs, []int{B, 1}, dev)
		lp := logp.Gather(-1, x).Squeeze(-1)
		ent := p.Mul(logp.ClampMin(-1e30)).Sum(-1).Neg() // 0·log 0 = 0 past the top k
		var lat *torch.Tensor
		if feedLatent {
			if m.Arm == RawHidden {
				lat = h
			} else {
				lat = Interpolate(p, m.E())
			}
		}
		ids = append(ids, xs...)
		last := !alive || t == o.MaxNew-1
		if last {
			think = append(think, make([]bool, B)...)
		} else {
			think = append(think, thinkNow...)
		}
		logps, ents = append(logps, lp), append(ents, ent)
		if lat != nil {
			latents = append(latents, lat)
		}
		s.Keep(lp, ent, lat)
		if last {
			ro.N = t + 1
			s.Close()
			break
		}
		thinkT := torch.FromSlice(thinkNow, []int{B, 1}, dev)
		var latIn *torch.Tensor
		if lat != nil {
			latIn = lat.Unsqueeze(1)
		}
		in := m.Inputs(x, latIn, thinkT)
		if in.A != nil {
			r := torch.Where(thinkT, in.A.Mean(-1), torch.OnesLike(thinkT).To(torch.Float32)).Squeeze(-1)
			ratios = append(ratios, r)
			s.Keep(r)
		}
		h = m.GPT.Hidden(in.X, &nn.ForwardOptions{
			Cache: cache, KeyMask: ro.KeyMask.Narrow(1, 0, P+t+1), Positions: ro.Positions.Narrow(1, P+t, 1),
		}).Select(1, -1)
		s.Keep(h)
		s.Close()
	}
	N := ro.N
	ro.IDs = torch.FromSlice(transpose(ids, N, B), []int{B, N}, dev)
	ro.Think = torch.FromSlice(transpose(think, N, B), []int{B, N}, dev)
	mask := make([]float32, B*N)
	for b, c := range ro.Completions {
		for t := range m.completionLength(c) {
			mask[b*N+t] = 1
		}
	}
	ro.Mask = torch.FromSlice(mask, []int{B, N}, dev)
	ro.LogP, ro.Entropy = torch.Stack(logps, 1), torch.Stack(ents, 1)
	if len(latents) > 0 {
		ro.Latent = torch.Stack(latents, 1)
	}
	if len(ratios) > 0 {
		ro.EmbedsRatio = torch.Stack(ratios, 1)
	}
	return ro, nil
}

// transpose turns step-major values [n][b] into row-major [b][n].
func transpose[E any](v []E, n, b int) []E {
	out := make([]E, len(v))
	for t := range n {
		for r := range b {
			out[r*n+t] = v[t*b+r]
		}
	}
	return out
}
