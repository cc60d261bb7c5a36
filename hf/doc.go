// Package hf reads and writes Hugging Face model directories (config.json,
// model.safetensors or a sharded model.safetensors.index.json,
// generation_config.json) as torch/nn GPTs, for five architectures:
// gpt2, gpt_neox (Pythia), gpt_neo, llama and qwen2.
//
//	cfg, typ, err := hf.ReadConfig(dir)    // config.json → nn.GPTConfig
//	m, err := hf.Load(dir, torch.CPU)      // a new nn.GPT with the weights
//	err = hf.LoadInto(dir, m.Store)        // or into an existing store
//	typ, err = hf.TypeFor(m.Config)        // the architecture that expresses a model
//	err = hf.Save(out, typ, m.Config, m.Store, hf.SaveOptions{})
//
// Each architecture is a set of nn.GPTConfig options, not a separate model:
// GPT-2 is learned positions, LayerNorm and a tanh-GELU MLP; GPT-NeoX adds
// ParallelResidual and partial rotary (RotaryDims); GPT-Neo is GPT-2 with
// AttnScale 1 (GPT-Neo does not divide scores by √d), no q/k/v bias
// (QKVBias off) and Windows for its local layers; Llama is rotary over whole
// heads, RMSNorm, a gated SiLU MLP (GatedMLP) and grouped-query attention
// (KVHeads); Qwen2 is Llama with biases on q, k and v only (QKVBias on) and
// optional sliding windows.
//
// # Layouts
//
// HF names and layouts are mapped onto hiddenlab's parameters by views, on
// import and export alike:
//
//   - GPT-2's Conv1D layers store weights [in, out]; hiddenlab's Linear
//     [out, in] is transposed.
//   - GPT-NeoX's query_key_value interleaves its outputs per head
//     ([heads, 3, head_dim]). hiddenlab keeps its own [3, heads, head_dim]
//     layout, so that the attention code and the insertion points are the
//     same for every architecture: import de-interleaves, export
//     interleaves again.
//   - Separate q_proj, k_proj, v_proj (GPT-Neo, Llama, Qwen2) fill the rows
//     of hiddenlab's fused qkv projection: [3·heads] head-dim blocks, or with
//     grouped-query attention [heads + 2·kv_heads] (queries, keys, values).
//   - Llama's gate_proj, up_proj, down_proj are the gated MLP's gate, fc and
//     proj.
//   - HF's rotary embedding rotates halves (rotate_half), on the first
//     rotary_ndims features of each head: hiddenlab's Rotary as is.
//
// # Loading
//
// All weights become float32 (f16, bf16 and f64 files are converted).
// Tensors stream from the files in chunks of at most 16 MiB
// (checkpoint.Reader) straight into the parameters, so a load needs the f32 model plus a few
// tens of megabytes: a 1188 MiB (f32) Llama-shaped model peaked at 1.23× its
// f32 size in RSS, process baseline included, from an f32 or a bf16 file
// (TestPeakRSS, on a 2-core x86-64 machine). Before anything is copied, every tensor is checked: present,
// the shape config.json implies, a float dtype, and no unexpected tensors;
// the error lists every problem with its file. Buffers old checkpoints carry
// (causal masks, masked_bias, rotary inv_freq) and the copy of a tied head
// some checkpoints keep are skipped. Weight names saved from a base model
// (without "transformer.", "gpt_neox." or "model.") are accepted.
//
// # Saving
//
// Save writes config.json (HF's field names, including architectures and
// torch_dtype), generation_config.json and the weights under HF names with
// the metadata {"format": "pt"} that from_pretrained requires; the untied
// head as lm_head.weight (embed_out.weight for GPT-NeoX), nothing for a tied
// one. Weights the HF architecture has but the hiddenlab model lacks (biases
// of layers without bias, LayerNorm biases with layernorm_nobias) are
// written as zeros, which computes the same function; a model the
// architecture cannot express is refused with the reason. The directory is
// assembled under a temporary name and renamed into place, so a failed Save
// leaves nothing. Weights stream out one tensor at a time.
//
// # Where hiddenlab differs from HF
//
//   - Rotary tables are computed in float64 and rounded to float32; HF
//     computes the inverse frequencies and angles in float32. The two agree
//     to ~1e-6 at short positions; HF's angle error grows with the position
//     (about position × 6e-8 rad), hiddenlab's does not.
//   - GPT-Neo's unscaled attention runs through the fused kernel with q
//     multiplied by √head_dim, which the kernel divides out again (a rounding
//     difference of an ulp).
//   - Masked scores are −∞ (boolean masks) where HF adds finfo.min: the same
//     softmax, as no causal row is fully masked.
//   - Dropout settings are not imported (0): imported models are for
//     inference and fine-tuning. Export writes the model's Dropout.
//   - A local window counts the query itself: window w sees positions
//     i−w+1 … i, as GPT-Neo's mask (bias ^ tril(bias, −w)) and Qwen2's
//     sliding window (kv_idx > q_idx − w) do. Qwen2 windows apply only with
//     use_sliding_window, on the layers layer_types marks sliding_attention,
//     or else from max_window_layers on, as in current transformers.
//
// Not supported (a clear error on import): rope_scaling / rope types other
// than default, partial rotary in llama/qwen2, a head_dim other than
// hidden_size/num_attention_heads, GPT-2's scale_attn_by_inverse_layer_idx
// and cross-attention, activations other than gelu, gelu_new,
// gelu_pytorch_tanh, gelu_fast, silu and relu, and pytorch_model.bin weights.
// Tokenizer files are not read or written here (data/tokenize does that);
// ReadTokens returns the special token ids of config.json and
// generation_config.json, and SaveOptions.Tokens writes them.
package hf
