// Package hrpo is the HRPO family (model.family: hrpo): hybrid latent
// reasoning via reinforcement learning (Yue et al. 2025, arXiv 2505.18454),
// re-implemented at small scale after shared/research/hrpo.md, against its
// GRPO baseline and the ablations of the brief's §8.4.
//
// # Method
//
// A policy samples completions "think span #### answer EOS". On every
// generated token x_j before the delimiter, the next input is not E[x_j]
// but the hybrid
//
//	input_j = a_j ⊙ ê_j + √(1 − a_j² + 1e-8) ⊙ (i_j ⊙ ĥ_j)
//
// where ê_j = E[x_j]; ĥ_j = p_jᵀE / ‖p_j‖₂ interpolates the input
// embeddings under the distribution p_j = softmax(z_j/τ) that x_j was
// sampled from; the gates r_j = σ(W_r ê_j + b_r), i_j = σ(W_i ê_j + b_i)
// read the sampled embedding only; and a_j = σ(Λ)^(c·r_j) with c = 8 and Λ
// initialised so that a starts in [r_min, 0.999] ([Gate]). Prompt,
// delimiter and answer tokens use plain embeddings.
//
// Rollouts decode all G×prompts completions in one batched KV-cache pass
// ([Model.Rollout]) without gradient and buffer the latents; the loss is
// one teacher-forced forward over the buffered inputs ([Model.Forward]),
// so no gradient flows through the latent chain and the log-probabilities
// equal the rollout's. The RL objective is the official code's
// ([PolicyLoss]): group-standardised advantages ([Advantages]), REINFORCE
// through exp(logp − sg(logp)), and a k3 KL penalty (β) to a frozen
// reference model fed token ids only; the reward is binary (correct answer
// and exactly one "####"). The policy, the gate linears and Λ are separate
// optimizer groups with their own learning rates and weight decay.
//
// # Recipes
//
// data.phase: sft trains the warm-up on the §8.1 mix and produces the
// starting checkpoint; data.phase: rl runs one arm (model.arm: grpo, hrpo,
// interp, hidden, frozen) from it, logging the §8.5 metrics every step and
// evaluating greedily by chain length K, with the latent on and off.
// recipes/hrpo.yaml runs both stages; experiments/hrpo.yaml is the study
// (every arm, three seeds, one SFT checkpoint), and [Study] adds the
// paired tests over prompts.
package hrpo
