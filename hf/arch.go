package hf

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// arch is what hf knows of one model type.
type arch struct {
	class  string // the HF class AutoModelForCausalLM builds
	prefix string // base model prefix of the weight names ("transformer.")
	// parse maps config.json to a GPTConfig.
	parse func(f *fields) nn.GPTConfig
	// config maps a (defaulted) GPTConfig to config.json fields, or says why
	// the architecture cannot express it.
	config func(c nn.GPTConfig) (map[string]any, error)
	// tensors lists the HF weights of a model with config c.
	tensors func(c nn.GPTConfig) []tensorMap
	// ignore names HF buffers that old checkpoints carry (causal masks,
	// rotary inverse frequencies): skipped on import.
	ignore []string
}

// tensorMap ties one HF weight to a hiddenlab parameter.
type tensorMap struct {
	hf    string // HF name
	shape []int  // HF shape
	// param is the hiddenlab parameter; "" for a weight hiddenlab does not
	// have (a bias of a layer without bias), exported as zeros.
	param string
	// view maps the (detached) parameter to a view with the HF tensor's
	// elements in HF's row-major order (same number of elements; its shape
	// may split HF's dimensions). nil: the parameter as it is.
	view func(p *torch.Tensor) *torch.Tensor
}

var archs = map[ModelType]*arch{
	GPT2:    {class: "GPT2LMHeadModel", prefix: "transformer.", parse: parseGPT2, config: configGPT2, tensors: tensorsGPT2, ignore: []string{".attn.bias", ".attn.masked_bias"}},
	GPTNeo:  {class: "GPTNeoForCausalLM", prefix: "transformer.", parse: parseGPTNeo, config: configGPTNeo, tensors: tensorsGPTNeo, ignore: []string{".attn.attention.bias", ".attn.attention.masked_bias"}},
	GPTNeoX: {class: "GPTNeoXForCausalLM", prefix: "gpt_neox.", parse: parseGPTNeoX, config: configGPTNeoX, tensors: tensorsGPTNeoX, ignore: []string{".attention.bias", ".attention.masked_bias", ".attention.rotary_emb.inv_freq"}},
	Llama:   {class: "LlamaForCausalLM", prefix: "model.", parse: parseLlama(Llama), config: configLlama(Llama), tensors: tensorsLlama(Llama), ignore: []string{".self_attn.rotary_emb.inv_freq"}},
	Qwen2:   {class: "Qwen2ForCausalLM", prefix: "model.", parse: parseLlama(Qwen2), config: configLlama(Qwen2), tensors: tensorsLlama(Qwen2), ignore: []string{".self_attn.rotary_emb.inv_freq"}},
}

func onOff(b bool) nn.Bias {
	if b {
		return nn.BiasOn
	}
	return nn.BiasOff
}

// maxLayers bounds layer counts read from config.json before validation.
const maxLayers = 1 << 16

// ---- views ----

func transposed(p *torch.Tensor) *torch.Tensor { return p.T() }

func rows(off, n int) func(*torch.Tensor) *torch.Tensor {
	return func(p *torch.Tensor) *torch.Tensor { return p.Narrow(0, off, n) }
}

// ---- builders shared by the architectures ----

type mapper struct {
	c   nn.GPTConfig
	out []tensorMap
}

func (m *mapper) add(hf string, shape []int, param string, view func(*torch.Tensor) *torch.Tensor) {
	m.out = append(m.out, tensorMap{hf: hf, shape: shape, param: param, view: view})
}

// bias adds an HF bias that hiddenlab has when has is set (zeros otherwise).
func (m *mapper) bias(hf string, n int, has bool, param string, view func(*torch.Tensor) *torch.Tensor) {
	if !has {
		param, view = "", nil
	}
	m.add(hf, []int{n}, param, view)
}

// layerNorm adds a LayerNorm's weight and bias (zeros for layernorm_nobias).
func (m *mapper) layerNorm(hf, param string) {
	C := m.c.Width
	m.add(hf+".weight", []int{C}, param+".weight", nil)
	m.bias(hf+".bias", C, m.c.Norm != "layernorm_nobias", param+".bias", nil)
}

// head adds the untied output head.
func (m *mapper) head(hf string) {
	if !m.c.TiedHead {
		m.add(hf, []int{m.c.Vocab, m.c.Width}, "head.weight", nil)
	}
}

// ---- GPT-2 ----

func parseGPT2(f *fields) nn.GPTConfig {
	C := f.int("n_embd", 768)
	c := nn.GPTConfig{
		Vocab:      f.int("vocab_size", 50257),
		Context:    f.int("n_positions", f.int("n_ctx", 1024)),
		Width:      C,
		Layers:     f.int("n_layer", 12),
		Heads:      f.int("n_head", 12),
		MLPWidth:   f.int("n_inner", 4*C),
		Activation: f.activation("activation_function", "gelu_new"),
		NormEps:    f.float("layer_norm_epsilon", 1e-5),
		TiedHead:   f.bool("tie_word_embeddings", true),
		Positions:  "learned",
		Norm:       "layernorm",
		InitStd:    f.float("initializer_range", 0.02),
	}
	if !f.bool("scale_attn_weights", true) {
		c.AttnScale = 1
	}
	if f.bool("scale_attn_by_inverse_layer_idx", false) {
		f.fail("field scale_attn_by_inverse_layer_idx: true is not supported")
	}
	if f.bool("add_cross_attention", false) {
		f.fail("field add_cross_attention: true is not supported (decoder-only models)")
	}
	return c
}

// learnedChecks refuses what GPT-2 and GPT-Neo blocks cannot express.
func learnedChecks(typ ModelType, c nn.GPTConfig) error {
	switch {
	case c.Positions != "learned":
		return fmt.Errorf("%s has learned positions, the model has %s", typ, c.Positions)
	case c.Norm == "rmsnorm":
		return fmt.Errorf("%s has LayerNorm, the model has RMSNorm", typ)
	case c.GatedMLP:
		return fmt.Errorf("%s has no gated MLP", typ)
	case c.ParallelResidual:
		return fmt.Errorf("%s has sequential residual blocks, the model parallel ones", typ)
	case c.KVHeadCount() != c.Heads:
		return fmt.Errorf("%s has no grouped-query attention (the model has %d key/value heads for %d heads)", typ, c.KVHeadCount(), c.Heads)
	}
	return nil
}

func configGPT2(c nn.GPTConfig) (map[string]any, error) {
	if err := learnedChecks(GPT2, c); err != nil {
		return nil, err
	}
	if hasWindows(c) {
		return nil, fmt.Errorf("gpt2 has no local attention windows (gpt_neo has)")
	}
	scale := true
	switch {
	case c.AttnScale == 1:
		scale = false
	case c.AttnScale != 0 && c.AttnScale != 1/math.Sqrt(float64(c.HeadDim())):
		return nil, fmt.Errorf("gpt2 scales attention scores by 1/sqrt(head dim) or 1, the model by %v", c.AttnScale)
	}
	return map[string]any{
		"vocab_size": c.Vocab, "n_positions": c.Context, "n_embd": c.Width, "n_layer": c.Layers, "n_head": c.Heads,
		"n_inner": c.MLPHidden(), "activation_function": hfActivation(c.Activation), "layer_norm_epsilon": pyFloat(c.NormEps),
		"scale_attn_weights": scale, "scale_attn_by_inverse_layer_idx": false, "reorder_and_upcast_attn": false,
		"resid_pdrop": pyFloat(c.Dropout), "embd_pdrop": pyFloat(c.Dropout), "attn_pdrop": pyFloat(c.Dropout), "initializer_range": pyFloat(c.InitStd),
	}, nil
}

// tensorsGPT2: GPT-2's Conv1D layers store weights [in, out], the transpose of
// hiddenlab's (and nn.Linear's) [out, in]. c_attn's outputs are q, k, v, each
// heads × head_dim, as in hiddenlab's fused QKV.
func tensorsGPT2(c nn.GPTConfig) []tensorMap {
	m := &mapper{c: c}
	C, F, V := c.Width, c.MLPHidden(), c.Vocab
	m.add("transformer.wte.weight", []int{V, C}, "wte.weight", nil)
	m.add("transformer.wpe.weight", []int{c.Context, C}, "wpe.weight", nil)
	qkv, out, mlp := c.HasBias(c.QKVBias), c.HasBias(c.OutBias), c.HasBias(c.MLPBias)
	for i := 0; i < c.Layers; i++ {
		h, b := fmt.Sprintf("transformer.h.%d.", i), fmt.Sprintf("blocks.%d.", i)
		m.layerNorm(h+"ln_1", b+"ln_1")
		m.add(h+"attn.c_attn.weight", []int{C, 3 * C}, b+"attn.qkv.weight", transposed)
		m.bias(h+"attn.c_attn.bias", 3*C, qkv, b+"attn.qkv.bias", nil)
		m.add(h+"attn.c_proj.weight", []int{C, C}, b+"attn.proj.weight", transposed)
		m.bias(h+"attn.c_proj.bias", C, out, b+"attn.proj.bias", nil)
		m.layerNorm(h+"ln_2", b+"ln_2")
		m.add(h+"mlp.c_fc.weight", []int{C, F}, b+"mlp.fc.weight", transposed)
		m.bias(h+"mlp.c_fc.bias", F, mlp, b+"mlp.fc.bias", nil)
		m.add(h+"mlp.c_proj.weight", []int{F, C}, b+"mlp.proj.weight", transposed)
		m.bias(h+"mlp.c_proj.bias", C, mlp, b+"mlp.proj.bias", nil)
	}
	m.layerNorm("transformer.ln_f", "ln_f")
	m.head("lm_head.weight")
	return m.out
}

// ---- GPT-Neo ----

func parseGPTNeo(f *fields) nn.GPTConfig {
	C := f.int("hidden_size", 2048)
	L := f.int("num_layers", 24)
	c := nn.GPTConfig{
		Vocab:      f.int("vocab_size", 50257),
		Context:    f.int("max_position_embeddings", 2048),
		Width:      C,
		Layers:     L,
		Heads:      f.int("num_heads", 16),
		MLPWidth:   f.int("intermediate_size", 4*C),
		Activation: f.activation("activation_function", "gelu_new"),
		NormEps:    f.float("layer_norm_epsilon", 1e-5),
		TiedHead:   f.bool("tie_word_embeddings", true),
		Positions:  "learned",
		Norm:       "layernorm",
		InitStd:    f.float("initializer_range", 0.02),
		// GPT-Neo does not scale the attention scores, and its q, k and v
		// projections have no bias.
		AttnScale: 1,
		QKVBias:   nn.BiasOff,
	}
	// HF expands attention_types ([[["global", "local"], 12]]) into
	// attention_layers; a saved attention_layers wins, as in HF.
	var layers []string
	if !f.get("attention_layers", &layers, "a list of \"global\" or \"local\"") {
		var types [][]any
		if !f.get("attention_types", &types, `a list of [["global", "local"], count]`) {
			types = [][]any{{[]any{"global", "local"}, float64(12)}}
		}
		for _, t := range types {
			var kinds []any
			var n float64
			ok := len(t) == 2
			if ok {
				kinds, ok = t[0].([]any)
			}
			if ok {
				n, ok = t[1].(float64)
			}
			if !ok || n < 0 || n > maxLayers {
				f.fail("field attention_types: want a list of [[kinds...], count], got %v", t)
				break
			}
			for j := 0; j < int(n); j++ {
				for _, k := range kinds {
					s, _ := k.(string)
					layers = append(layers, s)
				}
			}
		}
	}
	if len(layers) != L && f.err == nil {
		f.fail("field attention_layers: %d entries for %d layers", len(layers), L)
		return c
	}
	w := f.int("window_size", 256)
	if !slices.Contains(layers, "local") {
		return c
	}
	for i, kind := range layers {
		switch kind {
		case "global":
			c.Windows = append(c.Windows, 0)
		case "local":
			c.Windows = append(c.Windows, w)
		default:
			f.fail("field attention_layers: layer %d has attention %q (want global or local)", i, kind)
		}
	}
	return c
}

func configGPTNeo(c nn.GPTConfig) (map[string]any, error) {
	if err := learnedChecks(GPTNeo, c); err != nil {
		return nil, err
	}
	w, ok := sameWindows(c)
	switch {
	case c.AttnScale != 1:
		return nil, fmt.Errorf("gpt_neo does not scale attention scores (AttnScale 1), the model does")
	case c.HasBias(c.QKVBias):
		return nil, fmt.Errorf("gpt_neo has no bias on q, k and v, the model has")
	case !ok:
		return nil, fmt.Errorf("gpt_neo has one local window size, the model several (%v)", c.Windows)
	}
	var types []any
	for i := 0; i < c.Layers; i++ {
		kind := "global"
		if c.Window(i) != 0 {
			kind = "local"
		}
		types = append(types, []any{[]string{kind}, 1})
	}
	if w == 0 {
		w = 256
	}
	return map[string]any{
		"vocab_size": c.Vocab, "max_position_embeddings": c.Context, "hidden_size": c.Width, "num_layers": c.Layers,
		"num_heads": c.Heads, "intermediate_size": c.MLPHidden(), "activation_function": hfActivation(c.Activation),
		"layer_norm_epsilon": pyFloat(c.NormEps), "attention_types": types, "window_size": w,
		"resid_dropout": pyFloat(c.Dropout), "embed_dropout": pyFloat(c.Dropout), "attention_dropout": pyFloat(c.Dropout), "initializer_range": pyFloat(c.InitStd),
	}, nil
}

// tensorsGPT-Neo: separate q, k, v projections (nn.Linear, [out, in]) fill
// the rows of hiddenlab's fused QKV.
func tensorsGPTNeo(c nn.GPTConfig) []tensorMap {
	m := &mapper{c: c}
	C, F, V := c.Width, c.MLPHidden(), c.Vocab
	m.add("transformer.wte.weight", []int{V, C}, "wte.weight", nil)
	m.add("transformer.wpe.weight", []int{c.Context, C}, "wpe.weight", nil)
	out, mlp := c.HasBias(c.OutBias), c.HasBias(c.MLPBias)
	for i := 0; i < c.Layers; i++ {
		h, b := fmt.Sprintf("transformer.h.%d.", i), fmt.Sprintf("blocks.%d.", i)
		m.layerNorm(h+"ln_1", b+"ln_1")
		for j, n := range []string{"q_proj", "k_proj", "v_proj"} {
			m.add(h+"attn.attention."+n+".weight", []int{C, C}, b+"attn.qkv.weight", rows(j*C, C))
		}
		m.add(h+"attn.attention.out_proj.weight", []int{C, C}, b+"attn.proj.weight", nil)
		m.bias(h+"attn.attention.out_proj.bias", C, out, b+"attn.proj.bias", nil)
		m.layerNorm(h+"ln_2", b+"ln_2")
		m.add(h+"mlp.c_fc.weight", []int{F, C}, b+"mlp.fc.weight", nil)
		m.bias(h+"mlp.c_fc.bias", F, mlp, b+"mlp.fc.bias", nil)
		m.add(h+"mlp.c_proj.weight", []int{C, F}, b+"mlp.proj.weight", nil)
		m.bias(h+"mlp.c_proj.bias", C, mlp, b+"mlp.proj.bias", nil)
	}
	m.layerNorm("transformer.ln_f", "ln_f")
	m.head("lm_head.weight")
	return m.out
}

// ---- GPT-NeoX ----

func parseGPTNeoX(f *fields) nn.GPTConfig {
	C := f.int("hidden_size", 6144)
	H := f.int("num_attention_heads", 64)
	base := f.float("rotary_emb_base", 10000)
	base, pct := f.rope("rope_theta", base, 0.25, "rotary_pct")
	attnBias := f.bool("attention_bias", true)
	c := nn.GPTConfig{
		Vocab:            f.int("vocab_size", 50432),
		Context:          f.int("max_position_embeddings", 2048),
		Width:            C,
		Layers:           f.int("num_hidden_layers", 44),
		Heads:            H,
		MLPWidth:         f.int("intermediate_size", 24576),
		Activation:       f.activation("hidden_act", "gelu"),
		NormEps:          f.float("layer_norm_eps", 1e-5),
		TiedHead:         f.bool("tie_word_embeddings", false),
		ParallelResidual: f.bool("use_parallel_residual", true),
		Positions:        "rotary",
		RotaryBase:       base,
		Norm:             "layernorm",
		InitStd:          f.float("initializer_range", 0.02),
		QKVBias:          onOff(attnBias),
		OutBias:          onOff(attnBias),
	}
	if H > 0 && C%H == 0 {
		// HF: rotary_ndims = int(head_size * rotary_pct).
		c.RotaryDims = int(float64(C/H) * pct)
		if c.RotaryDims <= 0 || c.RotaryDims%2 != 0 {
			f.fail("field rotary_pct: %v of head size %d gives %d rotary dims (want even and positive)", pct, C/H, c.RotaryDims)
		}
	}
	return c
}

// rotaryPct finds the rotary_pct for which HF's int(headDim·pct) is dims.
func rotaryPct(dims, headDim int) float64 {
	pct := float64(dims) / float64(headDim)
	for int(float64(headDim)*pct) < dims {
		pct = math.Nextafter(pct, 2)
	}
	return pct
}

func configGPTNeoX(c nn.GPTConfig) (map[string]any, error) {
	switch {
	case c.Positions != "rotary":
		return nil, fmt.Errorf("gpt_neox has rotary positions, the model %s", c.Positions)
	case c.Norm == "rmsnorm":
		return nil, fmt.Errorf("gpt_neox has LayerNorm, the model RMSNorm")
	case c.GatedMLP:
		return nil, fmt.Errorf("gpt_neox has no gated MLP")
	case c.KVHeadCount() != c.Heads:
		return nil, fmt.Errorf("gpt_neox has no grouped-query attention")
	case hasWindows(c):
		return nil, fmt.Errorf("gpt_neox has no local attention windows")
	case c.AttnScale != 0 && c.AttnScale != 1/math.Sqrt(float64(c.HeadDim())):
		return nil, fmt.Errorf("gpt_neox scales attention scores by 1/sqrt(head dim), the model by %v", c.AttnScale)
	}
	dims := c.RotaryDims
	if dims == 0 {
		dims = c.HeadDim()
	}
	return map[string]any{
		"vocab_size": c.Vocab, "max_position_embeddings": c.Context, "hidden_size": c.Width,
		"num_hidden_layers": c.Layers, "num_attention_heads": c.Heads, "intermediate_size": c.MLPHidden(),
		"hidden_act": hfActivation(c.Activation), "layer_norm_eps": pyFloat(c.NormEps),
		"rotary_pct": pyFloat(rotaryPct(dims, c.HeadDim())), "rotary_emb_base": pyFloat(c.RotaryBase), "rope_scaling": nil,
		"use_parallel_residual": c.ParallelResidual,
		"attention_bias":        c.HasBias(c.QKVBias) || c.HasBias(c.OutBias),
		"hidden_dropout":        pyFloat(c.Dropout), "attention_dropout": pyFloat(c.Dropout), "initializer_range": pyFloat(c.InitStd),
	}, nil
}

// tensorsGPTNeoX: query_key_value's outputs are interleaved per head
// ([heads, 3, head_dim]: q, k, v of head 0, then of head 1, …) where
// hiddenlab's fused QKV is [3, heads, head_dim]; the view permutes the
// parameter into HF's order, so import de-interleaves and export interleaves.
// HF's rotate-half rotary on the first rotary_ndims features of each head is
// hiddenlab's Rotary.
func tensorsGPTNeoX(c nn.GPTConfig) []tensorMap {
	m := &mapper{c: c}
	C, F, V, H, hd := c.Width, c.MLPHidden(), c.Vocab, c.Heads, c.HeadDim()
	attnBias := c.HasBias(c.QKVBias) || c.HasBias(c.OutBias)
	mlp := c.HasBias(c.MLPBias)
	qkvW := func(p *torch.Tensor) *torch.Tensor { return p.View(3, H, hd, C).Permute(1, 0, 2, 3) }
	qkvB := func(p *torch.Tensor) *torch.Tensor { return p.View(3, H, hd).Permute(1, 0, 2) }
	m.add("gpt_neox.embed_in.weight", []int{V, C}, "wte.weight", nil)
	for i := 0; i < c.Layers; i++ {
		h, b := fmt.Sprintf("gpt_neox.layers.%d.", i), fmt.Sprintf("blocks.%d.", i)
		m.layerNorm(h+"input_layernorm", b+"ln_1")
		m.layerNorm(h+"post_attention_layernorm", b+"ln_2")
		m.add(h+"attention.query_key_value.weight", []int{3 * C, C}, b+"attn.qkv.weight", qkvW)
		if attnBias {
			m.bias(h+"attention.query_key_value.bias", 3*C, c.HasBias(c.QKVBias), b+"attn.qkv.bias", qkvB)
		}
		m.add(h+"attention.dense.weight", []int{C, C}, b+"attn.proj.weight", nil)
		if attnBias {
			m.bias(h+"attention.dense.bias", C, c.HasBias(c.OutBias), b+"attn.proj.bias", nil)
		}
		m.add(h+"mlp.dense_h_to_4h.weight", []int{F, C}, b+"mlp.fc.weight", nil)
		m.bias(h+"mlp.dense_h_to_4h.bias", F, mlp, b+"mlp.fc.bias", nil)
		m.add(h+"mlp.dense_4h_to_h.weight", []int{C, F}, b+"mlp.proj.weight", nil)
		m.bias(h+"mlp.dense_4h_to_h.bias", C, mlp, b+"mlp.proj.bias", nil)
	}
	m.layerNorm("gpt_neox.final_layer_norm", "ln_f")
	m.head("embed_out.weight")
	return m.out
}

// ---- Llama and Qwen2 ----

func parseLlama(typ ModelType) func(f *fields) nn.GPTConfig {
	return func(f *fields) nn.GPTConfig {
		def := map[string]int{"vocab": 32000, "inter": 11008, "ctx": 2048}
		if typ == Qwen2 {
			def = map[string]int{"vocab": 151936, "inter": 22016, "ctx": 32768}
		}
		C := f.int("hidden_size", 4096)
		H := f.int("num_attention_heads", 32)
		L := f.int("num_hidden_layers", 32)
		base, pct := f.rope("rope_theta", 10000, 1, "partial_rotary_factor")
		c := nn.GPTConfig{
			Vocab:      f.int("vocab_size", def["vocab"]),
			Context:    f.int("max_position_embeddings", def["ctx"]),
			Width:      C,
			Layers:     L,
			Heads:      H,
			KVHeads:    f.int("num_key_value_heads", H),
			MLPWidth:   f.int("intermediate_size", def["inter"]),
			GatedMLP:   true,
			Activation: f.activation("hidden_act", "silu"),
			NormEps:    f.float("rms_norm_eps", 1e-6),
			Norm:       "rmsnorm",
			TiedHead:   f.bool("tie_word_embeddings", false),
			Positions:  "rotary",
			RotaryBase: base,
			InitStd:    f.float("initializer_range", 0.02),
			NoBias:     true,
		}
		if pct != 1 {
			f.fail("partial rotary (factor %v) is not supported for %s", pct, typ)
		}
		if H > 0 && C%H == 0 {
			if hd := f.int("head_dim", C/H); hd != C/H {
				f.fail("field head_dim: %d differs from hidden_size/num_attention_heads = %d, which hiddenlab's GPT assumes", hd, C/H)
			}
		}
		if typ == Qwen2 {
			// Qwen2: q, k, v have biases, o_proj and the MLP none.
			c.QKVBias = nn.BiasOn
			if f.bool("use_sliding_window", false) && !f.null("sliding_window") && L > 0 && L <= maxLayers {
				w := f.int("sliding_window", 4096)
				first := f.int("max_window_layers", 28)
				var types []string
				f.get("layer_types", &types, "a list of layer types")
				windows := make([]int, L)
				for i := range windows {
					slide := i >= first
					if types != nil && i < len(types) {
						slide = types[i] == "sliding_attention"
					}
					if slide {
						windows[i] = w
					}
				}
				if slices.ContainsFunc(windows, func(x int) bool { return x != 0 }) {
					c.Windows = windows
				}
			}
		} else {
			ab := f.bool("attention_bias", false)
			c.QKVBias, c.OutBias, c.MLPBias = onOff(ab), onOff(ab), onOff(f.bool("mlp_bias", false))
		}
		return c
	}
}

func configLlama(typ ModelType) func(c nn.GPTConfig) (map[string]any, error) {
	return func(c nn.GPTConfig) (map[string]any, error) {
		switch {
		case c.Positions != "rotary" || c.RotaryDims != 0 && c.RotaryDims != c.HeadDim():
			return nil, fmt.Errorf("%s has rotary positions over whole heads", typ)
		case c.Norm != "rmsnorm":
			return nil, fmt.Errorf("%s has RMSNorm, the model %s", typ, c.Norm)
		case !c.GatedMLP:
			return nil, fmt.Errorf("%s has a gated MLP, the model does not", typ)
		case c.ParallelResidual:
			return nil, fmt.Errorf("%s has sequential residual blocks", typ)
		case c.AttnScale != 0 && c.AttnScale != 1/math.Sqrt(float64(c.HeadDim())):
			return nil, fmt.Errorf("%s scales attention scores by 1/sqrt(head dim), the model by %v", typ, c.AttnScale)
		}
		m := map[string]any{
			"vocab_size": c.Vocab, "max_position_embeddings": c.Context, "hidden_size": c.Width,
			"num_hidden_layers": c.Layers, "num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeadCount(),
			"head_dim": c.HeadDim(), "intermediate_size": c.MLPHidden(), "hidden_act": hfActivation(c.Activation),
			"rms_norm_eps": pyFloat(c.NormEps), "rope_theta": pyFloat(c.RotaryBase), "rope_scaling": nil,
			"attention_dropout": pyFloat(c.Dropout), "initializer_range": pyFloat(c.InitStd),
		}
		if typ == Llama {
			if hasWindows(c) {
				return nil, fmt.Errorf("llama has no local attention windows (qwen2 has)")
			}
			m["attention_bias"] = c.HasBias(c.QKVBias) || c.HasBias(c.OutBias)
			m["mlp_bias"] = c.HasBias(c.MLPBias)
			m["pretraining_tp"] = 1
			return m, nil
		}
		switch {
		case c.HasBias(c.OutBias):
			return nil, fmt.Errorf("qwen2 has no bias on o_proj, the model has")
		case c.HasBias(c.MLPBias):
			return nil, fmt.Errorf("qwen2 has no MLP biases, the model has")
		}
		w, ok := sameWindows(c)
		first := c.Layers
		for i := c.Layers - 1; i >= 0 && c.Window(i) != 0; i-- {
			first = i
		}
		for i := 0; i < first; i++ {
			if c.Window(i) != 0 {
				ok = false
			}
		}
		if !ok {
			return nil, fmt.Errorf("qwen2 windows one size on the last layers only, the model has %v", c.Windows)
		}
		m["use_sliding_window"] = w != 0
		m["sliding_window"] = nil
		m["max_window_layers"] = first
		if w != 0 {
			m["sliding_window"] = w
			var types []string
			for i := 0; i < c.Layers; i++ {
				types = append(types, map[bool]string{true: "sliding_attention", false: "full_attention"}[c.Window(i) != 0])
			}
			m["layer_types"] = types
		}
		return m, nil
	}
}

// tensorsLlama: q_proj, k_proj and v_proj fill the rows of hiddenlab's fused
// QKV ([heads + 2·kv_heads, head_dim] outputs), gate_proj/up_proj/down_proj
// are the gated MLP's gate/fc/proj. Llama and Qwen2 checkpoints store the
// rotary-permuted q and k HF's conversion scripts produce, so their
// rotate-half convention is hiddenlab's Rotary as is. Biases: llama's
// attention_bias puts them on q, k, v and o, mlp_bias on the MLP; qwen2 has
// them on q, k and v only (zeros where the hiddenlab model has none).
func tensorsLlama(typ ModelType) func(c nn.GPTConfig) []tensorMap {
	return func(c nn.GPTConfig) []tensorMap {
		m := &mapper{c: c}
		C, F, V, H, KV, hd := c.Width, c.MLPHidden(), c.Vocab, c.Heads, c.KVHeadCount(), c.HeadDim()
		qkv, o, mlp := c.HasBias(c.QKVBias), c.HasBias(c.OutBias), c.HasBias(c.MLPBias)
		attnBias, oBias := qkv || o, typ == Llama // llama: attention_bias covers q, k, v and o
		if typ == Qwen2 {
			attnBias, mlp = true, false
		}
		m.add("model.embed_tokens.weight", []int{V, C}, "wte.weight", nil)
		for i := 0; i < c.Layers; i++ {
			h, b := fmt.Sprintf("model.layers.%d.", i), fmt.Sprintf("blocks.%d.", i)
			m.add(h+"input_layernorm.weight", []int{C}, b+"ln_1.weight", nil)
			parts := []struct {
				name     string
				off, len int
			}{{"q_proj", 0, H * hd}, {"k_proj", H * hd, KV * hd}, {"v_proj", (H + KV) * hd, KV * hd}}
			for _, p := range parts {
				m.add(h+"self_attn."+p.name+".weight", []int{p.len, C}, b+"attn.qkv.weight", rows(p.off, p.len))
				if attnBias {
					m.bias(h+"self_attn."+p.name+".bias", p.len, qkv, b+"attn.qkv.bias", rows(p.off, p.len))
				}
			}
			m.add(h+"self_attn.o_proj.weight", []int{C, C}, b+"attn.proj.weight", nil)
			if attnBias && oBias {
				m.bias(h+"self_attn.o_proj.bias", C, o, b+"attn.proj.bias", nil)
			}
			m.add(h+"post_attention_layernorm.weight", []int{C}, b+"ln_2.weight", nil)
			for _, p := range []struct{ hf, param string }{{"gate_proj", "gate"}, {"up_proj", "fc"}, {"down_proj", "proj"}} {
				shape := []int{F, C}
				if p.hf == "down_proj" {
					shape = []int{C, F}
				}
				m.add(h+"mlp."+p.hf+".weight", shape, b+"mlp."+p.param+".weight", nil)
				if mlp {
					m.bias(h+"mlp."+p.hf+".bias", shape[0], true, b+"mlp."+p.param+".bias", nil)
				}
			}
		}
		m.add("model.norm.weight", []int{C}, "ln_f.weight", nil)
		m.head("lm_head.weight")
		return m.out
	}
}

// hfTensors lists the HF weights of a model of type typ with config c.
func hfTensors(typ ModelType, c nn.GPTConfig) []tensorMap { return archs[typ].tensors(c) }

// ignorable reports whether an HF tensor name is a buffer old checkpoints
// carry, or a copy of the tied head.
func (a *arch) ignorable(name string, c nn.GPTConfig) bool {
	for _, suffix := range a.ignore {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	if c.TiedHead && (name == "lm_head.weight" || name == "embed_out.weight") {
		return true
	}
	return false
}
