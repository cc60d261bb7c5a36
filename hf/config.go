package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// ModelType is a Hugging Face config.json model_type.
type ModelType string

// The supported architectures.
const (
	GPT2    ModelType = "gpt2"     // GPT2LMHeadModel
	GPTNeoX ModelType = "gpt_neox" // GPTNeoXForCausalLM (Pythia)
	GPTNeo  ModelType = "gpt_neo"  // GPTNeoForCausalLM
	Llama   ModelType = "llama"    // LlamaForCausalLM
	Qwen2   ModelType = "qwen2"    // Qwen2ForCausalLM
)

// Types lists the supported model types.
var Types = []ModelType{GPT2, GPTNeoX, GPTNeo, Llama, Qwen2}

// File names in a Hugging Face model directory.
const (
	ConfigFile           = "config.json"
	GenerationConfigFile = "generation_config.json"
	WeightsFile          = "model.safetensors"
	IndexFile            = "model.safetensors.index.json"
)

// Tokens are the special token ids a model directory records (config.json,
// generation_config.json).
type Tokens struct {
	BOS int64   // -1: none
	EOS []int64 // none when empty; HF allows several
	Pad int64   // -1: none
}

// ReadConfig reads dir/config.json and returns the nn.GPTConfig of the model
// (defaults filled in) and its type. Dropout is 0: imported models are for
// inference and fine-tuning, and HF's dropout settings are not carried over.
func ReadConfig(dir string) (nn.GPTConfig, ModelType, error) {
	path := filepath.Join(dir, ConfigFile)
	js, err := os.ReadFile(path)
	if err != nil {
		return nn.GPTConfig{}, "", fmt.Errorf("hf: %w", err)
	}
	cfg, typ, err := ParseConfig(js)
	if err != nil {
		return nn.GPTConfig{}, "", fmt.Errorf("hf: %s: %w", path, err)
	}
	return cfg, typ, nil
}

// ParseConfig is ReadConfig on the contents of a config.json.
func ParseConfig(js []byte) (nn.GPTConfig, ModelType, error) {
	f, err := newFields(js)
	if err != nil {
		return nn.GPTConfig{}, "", err
	}
	typ := ModelType(f.str("model_type", ""))
	if f.err != nil {
		return nn.GPTConfig{}, "", f.err
	}
	a, ok := archs[typ]
	if !ok {
		if typ == "" {
			return nn.GPTConfig{}, "", fmt.Errorf("no model_type field (want one of %s)", typeList())
		}
		return nn.GPTConfig{}, "", fmt.Errorf("unknown model_type %q (supported: %s)", typ, typeList())
	}
	cfg := a.parse(f)
	if f.err != nil {
		return nn.GPTConfig{}, "", fmt.Errorf("%s: %w", typ, f.err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nn.GPTConfig{}, "", fmt.Errorf("%s: %w", typ, err)
	}
	return cfg, typ, nil
}

// ReadTokens reads the special token ids of the model in dir from
// generation_config.json, falling back to config.json field by field.
func ReadTokens(dir string) (Tokens, error) {
	tok := Tokens{BOS: -1, Pad: -1}
	var bos, pad []int64
	for _, name := range []string{GenerationConfigFile, ConfigFile} {
		js, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name == GenerationConfigFile {
			continue
		}
		if err != nil {
			return tok, fmt.Errorf("hf: %w", err)
		}
		f, err := newFields(js)
		if err != nil {
			return tok, fmt.Errorf("hf: %s: %w", filepath.Join(dir, name), err)
		}
		if bos == nil {
			bos = f.ids("bos_token_id")
		}
		if tok.EOS == nil {
			tok.EOS = f.ids("eos_token_id")
		}
		if pad == nil {
			pad = f.ids("pad_token_id")
		}
		if f.err != nil {
			return tok, fmt.Errorf("hf: %s: %w", filepath.Join(dir, name), f.err)
		}
	}
	if len(bos) > 0 {
		tok.BOS = bos[0]
	}
	if len(pad) > 0 {
		tok.Pad = pad[0]
	}
	return tok, nil
}

func typeList() string {
	var s []string
	for _, t := range Types {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

// fields reads typed values out of a config.json, keeping the first error.
type fields struct {
	m   map[string]json.RawMessage
	err error
}

func newFields(js []byte) (*fields, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return &fields{m: m}, nil
}

// null reports whether name is absent or null.
func (f *fields) null(name string) bool {
	raw, ok := f.m[name]
	return !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func (f *fields) get(name string, v any, want string) bool {
	if f.null(name) {
		return false
	}
	if err := json.Unmarshal(f.m[name], v); err != nil && f.err == nil {
		f.err = fmt.Errorf("field %s: want %s, got %s", name, want, f.m[name])
	}
	return true
}

func (f *fields) int(name string, def int) int {
	var x float64
	if !f.get(name, &x, "an integer") {
		return def
	}
	if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		if f.err == nil {
			f.err = fmt.Errorf("field %s: want an integer, got %s", name, f.m[name])
		}
		return def
	}
	return int(x)
}

func (f *fields) float(name string, def float64) float64 {
	x := def
	f.get(name, &x, "a number")
	return x
}

func (f *fields) bool(name string, def bool) bool {
	x := def
	f.get(name, &x, "true or false")
	return x
}

func (f *fields) str(name, def string) string {
	x := def
	f.get(name, &x, "a string")
	return x
}

// ids reads a token id or a list of them.
func (f *fields) ids(name string) []int64 {
	if f.null(name) {
		return nil
	}
	var one int64
	if err := json.Unmarshal(f.m[name], &one); err == nil {
		return []int64{one}
	}
	var many []int64
	if !f.get(name, &many, "a token id or a list of them") {
		return nil
	}
	return many
}

// sub reads a nested object (nil when absent or null).
func (f *fields) sub(name string) *fields {
	if f.null(name) {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(f.m[name], &m); err != nil {
		if f.err == nil {
			f.err = fmt.Errorf("field %s: want an object, got %s", name, f.m[name])
		}
		return nil
	}
	return &fields{m: m}
}

func (f *fields) fail(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf(format, args...)
	}
}

// activation maps HF's hidden_act / activation_function names (ACT2FN).
func (f *fields) activation(name, def string) nn.Activation {
	s := f.str(name, def)
	switch s {
	case "gelu", "gelu_python":
		return nn.GELU
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		// The tanh approximation; gelu_fast writes √(2/π) to 10 digits.
		return nn.GELUTanh
	case "silu", "swish":
		return nn.SiLU
	case "relu":
		return nn.ReLU
	}
	f.fail("field %s: activation %q is not supported (want gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu or relu)", name, s)
	return nn.GELU
}

// hfActivation names a hiddenlab activation for config.json.
func hfActivation(a nn.Activation) string {
	switch a {
	case nn.GELUTanh:
		return "gelu_new"
	case nn.SiLU:
		return "silu"
	case nn.ReLU:
		return "relu"
	}
	return "gelu"
}

// rope reads the rotary base and the rotated fraction of each head from the
// old (rope_theta / rotary_emb_base, rotary_pct, rope_scaling) and new
// (rope_parameters) forms; scaled variants are refused.
func (f *fields) rope(baseField string, defBase, defPct float64, pctField string) (base, pct float64) {
	base, pct = defBase, defPct
	base = f.float(baseField, base)
	if pctField != "" {
		pct = f.float(pctField, pct)
	}
	if rp := f.sub("rope_parameters"); rp != nil {
		base = rp.float("rope_theta", base)
		pct = rp.float("partial_rotary_factor", pct)
		if t := rp.str("rope_type", "default"); t != "default" {
			f.fail("field rope_parameters: rope_type %q is not supported (only default rotary embeddings)", t)
		}
		if rp.err != nil {
			f.fail("field rope_parameters: %v", rp.err)
		}
	}
	if rs := f.sub("rope_scaling"); rs != nil {
		t := rs.str("rope_type", rs.str("type", ""))
		if t != "default" {
			f.fail("field rope_scaling: %q scaling is not supported (only default rotary embeddings)", t)
		}
	}
	return base, pct
}

// pyFloat is a config.json number that stays a float (10000.0, not 10000),
// as Python writes it: HF's typed config fields may check.
type pyFloat float64

// MarshalJSON writes f with a decimal point or an exponent.
func (f pyFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil, fmt.Errorf("%v is not a JSON number", x)
	}
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return []byte(s), nil
}

// hfJSON renders a config map as indented JSON with sorted keys.
func hfJSON(m map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, k := range keys {
		v, err := json.Marshal(m[k])
		if err != nil {
			return nil, fmt.Errorf("config field %s: %w", k, err)
		}
		kj, _ := json.Marshal(k)
		fmt.Fprintf(&b, "  %s: %s", kj, v)
		if i < len(keys)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// sameWindows returns the one window size of the windowed layers (0 when
// none) and whether they share it.
func sameWindows(cfg nn.GPTConfig) (int, bool) {
	w := 0
	for _, x := range cfg.Windows {
		if x == 0 {
			continue
		}
		if w != 0 && x != w {
			return 0, false
		}
		w = x
	}
	return w, true
}

func hasWindows(cfg nn.GPTConfig) bool {
	return slices.ContainsFunc(cfg.Windows, func(w int) bool { return w != 0 })
}
