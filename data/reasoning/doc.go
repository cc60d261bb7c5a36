// Package reasoning generates the synthetic reasoning tasks of the HRPO
// small-scale study (shared/research/hrpo.md §8) and scores completions with
// the HRPO rewards (§3.2), for the toy tasks and for GSM8K.
//
// # Tasks
//
// ModChain (§8.1) is a chain of K mod-10 operations on a start digit s:
//
//	prompt  BOS s ; op1 k1 ; … ; opK kK ?        3K+3 tokens
//	target  v1 … vK #### vK EOS                   K+3 tokens (full trace)
//
// with op ∈ {+, -, *}, k ∈ 0..9 for + and -, k ∈ 1..9 for *, and
// v_j = (v_{j-1} op k_j) mod 10, v_0 = s.
//
// HopChain (§8.2) is in-context pointer chasing over the 12 symbols A..L.
// The map f is a uniformly random cyclic permutation (a single 12-cycle,
// Sattolo's algorithm), listed in alphabetical order:
//
//	prompt  BOS A f(A) ; B f(B) ; … ; L f(L) ; start X hops K ?   41+len(K) tokens
//	target  f(X) f²(X) … f^K(X) #### f^K(X) EOS                     K+3 tokens
//
// K is written in decimal digits (one token for K ≤ 9). A single cycle has
// no fixed points or short cycles, so for K ≤ 11 the K visited symbols are
// all distinct and differ from X: the answer cannot be guessed from the
// cycle structure and every think token names one hop.
//
// Both tasks share one vocabulary ([Vocab], 33 tokens) so one model and one
// SFT checkpoint handle the mix. Sequence lengths (prompt + full target):
// ModChain 4K+6 (38 at K=8, 46 at K=10); HopChain K+44+len(K) (53 at K=8,
// 56 at K=10). See [Task.MaxLen].
//
// # Traces
//
// The think span is everything before ####. Three trace styles exist
// (§8.1): [TraceFull] writes v1 … vK; [TraceSkip] writes every second value
// ending with vK, that is v_j for j ≡ K (mod 2), ⌈K/2⌉ tokens; [TraceDirect]
// writes nothing. Every non-empty think span therefore ends with the answer.
//
// # Reward
//
// [Reward] implements the HRPO rule on token ids: the completion is cut at
// its first EOS (or its end); the cut part must contain exactly one ####,
// followed by exactly one token, equal to the answer. See [FormatOK].
//
// On GSM8K text, [GSM8KReward] follows the official HRPO code by default
// ([OfficialParser]: its process_gsm8k_answer, quirks included — "$1,234"
// gives "234", "1,000,000" gives "0", "1/2" gives "0.5"), comparing against
// the raw gold text ([GSM8KItem].Gold) normalised the same way;
// [NumberParser] is hiddenlab's earlier comma-aware rule, by name.
//
// # Text
//
// For a policy with a text tokenizer's vocabulary (a pretrained, imported
// model) [TextCodec] writes problems as text ("3 ; + 4 ; * 2 ?", target
// " 7 4 #### 4" and the tokenizer's end of text), builds SFT batches in the
// tokenizer's ids, and parses completions back to task tokens from their
// decoded text, so the rules above judge the text.
//
// # Held-out split
//
// A fixed hash of the prompt tokens puts one prompt in eight into the
// held-out partition ([HeldOut]). Evaluation sets ([EvalSet]) draw only
// held-out prompts; SFT batches and RL prompts never do. Train and eval
// prompts are therefore disjoint by construction, which matters for small
// K: there are only 8,410 distinct ModChain prompts with K = 2.
//
// All generators use math/rand/v2 PCG streams derived from a seed and are
// deterministic. The package is pure Go and does not depend on torch.
package reasoning
