// Package codebook implements codebook features (Tamkin, Taufeeque & Goodman
// 2023): vector-quantisation bottlenecks inside a Transformer that replace an
// activation by the mean of its k most similar learned codes, trained with a
// straight-through gradient and a reconstruction loss, so that a model's
// hidden state becomes a small set of discrete, searchable and steerable codes.
//
// # Official code
//
// Compared against the official code (github.com/taufeeque9/codebook-features
// at commit 9bcbcf4: codebook_features/models.py, code_search_utils.py,
// fsm_utils.py, train_fsm_model.py and tutorials/tokfsm.ipynb), point by
// point. Each option below is a key of the recipe's eval.analysis section
// (see [Analysis], [DefaultAnalysis]) whose default is the official
// definition.
//
//   - The layer ([Layer]): the official code. Selected ids, outputs and the
//     input and code gradients match it (k = 1, 8; groups 1, 4). The mean of
//     the k codes, not the paper's sum; the LayerNorm of vanilla codebooks
//     at mlp trains only where the official module registers it.
//   - Reconstruction (MSE) gradient: the official code in effect. Its aeloss
//     backward adds ∂/∂codes mean_tokens ‖y − a‖² to the code gradient
//     directly, so it does not scale with the loss; hiddenlab adds the same
//     term to the loss with weight 1 ([Model.AuxLoss]), which gives the same
//     gradient because the runner never rescales the loss (no gradient
//     accumulation, no fp16 loss scaling). Where a runner did, the two would
//     part. The logged loss includes it (ce is logged apart), the official
//     logs the LM loss. Pinned by TestGradients.
//   - Code counts ([Layer].Counts): the official code, one count per training
//     forward for each code selected at least once (update_metrics:
//     counts[unique ids] += 1), not one per selection as before. Dead codes
//     (count 0), the only use, are the same either way. Blocked slots (−1)
//     count nothing (the official code would count them on the last code).
//     Pinned by TestCountsPerForward.
//   - Dead-code replacement ([Layer.ReplaceDead]): the official code, inputs
//     drawn without replacement (a random permutation, repeated when more
//     codes are dead than inputs), not with replacement as before. It uses
//     the previous step's recorded inputs, the official the current batch's.
//     Pinned by TestRandomPermutation.
//   - Best-neuron baseline (eval.analysis.neuron_baseline): official by
//     default, the threshold at the ⌊r·M⌋-th largest matched activation and
//     precision ⌊r·M⌋ / fires (get_neuron_precision_and_recall);
//     matched_recall is hiddenlab's earlier ⌈r·M⌉ with the actual hits, ties
//     included. Pinned by interp.TestBestNeuronOfficial.
//   - Interventions (eval.analysis.intervention_target): official by default,
//     the tutorial's experiment — for every pair of states, patch b's
//     final-position codes into a's input and compare with the model's own
//     output on b's input; JSD summed over a / (N − 1), averaged over b,
//     normalised by the largest condition, "none" included
//     (officialInterventions; the tutorial's prefix_random_states_len = 0,
//     not the paper's 62). true_distribution is hiddenlab's earlier
//     experiment: random transitions with random prefixes, against the FSM's
//     true next-token distribution, normalised by the unpatched JSD. Pinned
//     by TestOfficialInterventions.
//   - Exact first-transition accuracy (eval.analysis.first_transition_ties):
//     official by default, a hard top k (torch.topk) with exact ties given
//     to the lower state, since torch leaves their order unspecified
//     ([FirstTransitionOfficial]); shared credits ties fractionally (the
//     expectation over a random tie-break, tokfsm's FirstTransitionAccuracy).
//     They differ only on exact ties. Pinned by TestTopK and
//     TestFirstTransitionOfficial.
//   - Sampling for the transition accuracy (eval.analysis.sample_bos):
//     blocked by default, as the official generate call (min_length =
//     max_length with EOS = BOS bans BOS at every step); allowed is
//     hiddenlab's earlier sampling. Pinned by TestSampleBOSBlocked.
//   - Code purity: the official definition, per codebook (pure codes over
//     active codes of one codebook on the probes); a site with several
//     codebooks (attn_preproj) also reports a pooled row with summed counts,
//     so the comment and the code now say the same. Pinned by
//     TestPurityPerCodebook.
//   - K-means initialisation: neither. Lloyd's algorithm on the normalised
//     inputs seeded from random inputs, where the official code uses
//     scikit-learn's MiniBatchKMeans (and skips group codebooks).
//   - Model and data: the paper's TokFSM shapes in
//     experiments/codebook-paper-fsm.yaml; the small FSM of recipes/codebook.yaml
//     is ours, for CPU budgets.
package codebook
