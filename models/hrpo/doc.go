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
// embeddings under the distribution p_j = softmax(top_k(z_j/τ)) that x_j
// was sampled from; the gates r_j = σ(W_r ê_j + b_r), i_j = σ(W_i ê_j + b_i)
// read the sampled embedding only; and a_j = σ(Λ)^(c·r_j) with c = 8 and Λ
// initialised so that a starts in [r_min, 0.999] ([Gate]). Prompt,
// delimiter and answer tokens use plain embeddings.
//
// Rollouts decode all G×prompts completions in one batched KV-cache pass
// ([Model.Rollout]) without gradient and buffer the latents; the loss is
// one teacher-forced forward over the buffered inputs ([Model.Forward]),
// so no gradient flows through the latent chain and the logits equal the
// rollout's; the loss takes their log-probabilities at temperature 1
// ([Model.LogProbs]). The RL objective is the official code's
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
//
// # Pretrained models
//
// The model section embeds gpt's (gpt.Config, converted by gpt's own
// GPTConfig), so every architecture `hiddenlab import hf` produces —
// Qwen2's grouped-query attention, q/k/v bias, SwiGLU and RMSNorm among
// them — is an hrpo model; recipes/hrpo-hf.yaml composes an imported run's
// base.yaml (architecture and tokenizer) and starts from its weights
// (train.init_from: the run directory, or hf:<dir>). With a tokenizer named
// (data.tokenizer_file, or the base's data.text.tokenizer_file) the tasks
// are written as text in that tokenizer's ids ([reasoning.TextCodec]):
// completions end at its end-of-text id, the think span ends where the
// decoded completion first contains "####", ĥ interpolates the model's own
// embeddings over its whole vocabulary (top-k truncated: here top_k: 50
// matters), and rewards and metrics are judged on the decoded text, split
// into the task's words; data.task: gsm8k (text tokenizers only) trains
// and evaluates on GSM8K with the official reward on the decoded text.
// Unlike the paper's Qwen2.5-1.5B/3B-Instruct runs (LoRA, GSM8K/MATH/QA, a
// chat template and system prompt): any imported size with full-parameter
// updates, the toy tasks or GSM8K as plain text, and an SFT warm-up on the
// format. See text.go.
//
// # Official code
//
// Compared against the official code (github.com/skywalker-hub/HRPO, the
// authors' first commits of 2025-05-26: hrpo_gsm8k.py, utils.py, and the
// patched transformers, trl and unsloth it ships), point by point:
//
//   - Gate, hybrid input, advantages, surrogate and k3 KL: the official
//     code (they match it to float32 precision).
//   - Log-probabilities in the loss: the official code, temperature 1 for
//     the policy and the reference (unsloth's grpo_compute_loss takes
//     log_softmax of the raw logits; τ only enters sampling).
//     model.loss_temperature (default 1) names the alternative; hiddenlab
//     used τ before (the log-probabilities of the distribution sampled
//     from), which at τ = 0.5 changes
//     the loss 5× on the same logits. Pinned by TestLossTemperature.
//   - Sampling and the latent: the official code, top-50 truncation after
//     the temperature before sampling and before forming ĥ, in rollouts and
//     greedy evaluation alike (the trainer's GenerationConfig keeps
//     transformers' default top_k = 50; the paper does not mention it).
//     model.top_k (default 50; 0 = off). With the toy vocabulary of 33 tokens
//     it keeps every token, so it changes nothing on ModChain/HopChain.
//     Pinned by TestSampleLogitsTopK and TestRolloutTopK.
//   - Gate linears: the official code, weights N(0, 0.02²) and zero biases
//     (transformers' _init_weights, initializer_range 0.02), not the paper's
//     App. A U(±1/√d), hiddenlab's earlier default; model.gate.init: normal
//     (default) or uniform. Either way r ≈ i ≈ 0.5 at the start. Pinned by
//     TestGateInitKinds.
//   - Logged KL: the official code, the mean over completions of each
//     completion's mean k3 (its mean_kl); the mean over all tokens is logged
//     as kl_tokens (hiddenlab's earlier kl). Pinned by TestLoggedKL.
//   - GSM8K answers: the official parser (process_gsm8k_answer), quirks
//     included ("$1,234" gives "234", "1,000,000" gives "0", "1/2" gives
//     "0.5"), against the raw gold text; reasoning.NumberParser is
//     hiddenlab's earlier comma-aware rule, by name. Pinned by
//     reasoning.TestExtractAnswer and reasoning.TestGSM8KReward (checked
//     against the official Python on the same strings).
//   - Precision: neither. The official model runs in bf16 with the gate
//     linears in bf16 and Λ in fp32; hiddenlab keeps every parameter,
//     Λ included, in the model's dtype (float32 on the CPU; under a bf16
//     autocast the linears compute in bf16 from fp32 weights). It only
//     matters under bf16, where a = σ(Λ)^(c·r) close to 1 would round: we
//     run the toy study in float32, so the choice is moot there.
//   - Model, data and scale: neither, by design (brief §8): a 3-layer GPT
//     trained from scratch with full-parameter updates instead of LoRA on
//     Qwen2.5, synthetic tasks with token-level rewards instead of text, one
//     on-policy update per batch, a KV-cache rollout instead of transformers'
//     generate (the same computation, checked by
//     TestRolloutMatchesTeacherForced), and think-span detection on token
//     ids instead of decoding the text each step.
package hrpo
