package hrpo

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/stats"
	"github.com/hiddenlab/hiddenlab/torch"
)

// AdvantageEps is added to the group's standard deviation (TRL's GRPO
// trainer, which HRPO's code builds on).
const AdvantageEps = 1e-4

// Advantages standardises binary rewards within each group of G
// consecutive completions of one prompt (paper Eq. 5, as coded):
//
//	Â_i = (r_i − mean_G) / (std_G + 1e-4)
//
// with the unbiased standard deviation (torch's default). A group whose
// rewards are all equal gets Â = 0: it carries no signal.
func Advantages(rewards []float64, G int) ([]float64, error) {
	if G < 2 {
		return nil, fmt.Errorf("advantages: group size G = %d, need at least 2", G)
	}
	if len(rewards)%G != 0 {
		return nil, fmt.Errorf("advantages: %d rewards are not whole groups of G = %d", len(rewards), G)
	}
	adv := make([]float64, len(rewards))
	for g := 0; g < len(rewards); g += G {
		group := rewards[g : g+G]
		mean, std := stats.MeanStd(group)
		for i, r := range group {
			adv[g+i] = (r - mean) / (std + AdvantageEps)
		}
	}
	return adv, nil
}

// Rewards scores completions of problems (completion i answers
// problems[i]) with the binary HRPO reward: 1 iff the answer is correct and
// there is exactly one "####" ([reasoning.Reward]).
func Rewards(completions [][]int32, problems []reasoning.Problem) []float64 {
	out := make([]float64, len(completions))
	for i, c := range completions {
		out[i] = reasoning.Reward(c, problems[i].Answer)
	}
	return out
}

// GSM8KRewards scores text completions against GSM8K gold answers with the
// same rule on text, parsed as the official code does
// ([reasoning.GSM8KReward]; golds are raw gold texts, [reasoning.GSM8KItem]
// Gold): the normalised last number after the only "####" must equal the
// gold's. It is the reward path for real problems; the advantages follow as
// for token completions.
func GSM8KRewards(completions, golds []string) []float64 {
	out := make([]float64, len(completions))
	for i, c := range completions {
		out[i] = reasoning.GSM8KReward(c, golds[i])
	}
	return out
}

// SurrogateRatio is exp(l − sg(l)): 1 in value, with the gradient of l. It
// turns the REINFORCE estimator into a loss whose gradient is Â∇log π
// without a likelihood ratio (strictly on-policy, one update per batch).
func SurrogateRatio(logp *torch.Tensor) *torch.Tensor {
	return logp.Sub(logp.Detach()).Exp()
}

// KL3 is the k3 estimator of KL[π_θ ‖ π_ref] per token (Schulman):
// exp(ref − logp) − (ref − logp) − 1, non-negative, with the gradient of
// the KL in expectation.
func KL3(logp, refLogp *torch.Tensor) *torch.Tensor {
	d := refLogp.Sub(logp)
	return d.Exp().Sub(d).SubScalar(1)
}

// PolicyLoss is HRPO's loss as coded (brief §3.1): per token
//
//	ℓ_t = −( exp(logp_t − sg(logp_t)) · Â_i − β · k3_t )
//
// averaged over each completion's masked tokens, then over completions.
// logp, refLogp and mask are [B, N]; adv is [B]. refLogp may be nil (β
// unused). It returns the loss and the logged KL (nil without a
// reference), a detached scalar: the k3 averaged like the loss, over each
// completion's tokens and then over completions, as the official code logs
// it (mean_kl of its grpo_compute_loss). [TokenKL] is the mean over all
// tokens instead.
func PolicyLoss(logp, refLogp, adv, mask *torch.Tensor, beta float64) (loss, kl *torch.Tensor) {
	per := SurrogateRatio(logp).Mul(adv.Unsqueeze(1))
	tokens := mask.Sum(1).ClampMin(1)
	if refLogp != nil {
		k3 := KL3(logp, refLogp)
		if beta != 0 {
			per = per.Sub(k3.MulScalar(beta))
		}
		kl = k3.Detach().Mul(mask).Sum(1).Div(tokens).Mean()
	}
	loss = per.Neg().Mul(mask).Sum(1).Div(tokens).Mean()
	return loss, kl
}

// TokenKL is the k3 of logp against refLogp ([B, N]) averaged over all
// masked tokens of the batch at once (hiddenlab's earlier logged KL, now
// logged as kl_tokens): long completions weigh more than in the official
// per-completion mean of [PolicyLoss].
func TokenKL(logp, refLogp, mask *torch.Tensor) *torch.Tensor {
	return KL3(logp.Detach(), refLogp.Detach()).Mul(mask).Sum().Div(mask.Sum().ClampMin(1))
}
