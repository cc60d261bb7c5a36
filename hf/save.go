package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// SaveOptions tune Save.
type SaveOptions struct {
	// DType of the saved weights: torch.Float32 (the zero value),
	// torch.BFloat16 or torch.Float16.
	DType torch.DType
	// Tokens, when set, go into config.json and generation_config.json.
	Tokens *Tokens
	// MaxShardBytes > 0 splits the weights into shards of at most this many
	// bytes (model-00001-of-0000N.safetensors and model.safetensors.index.json,
	// as save_pretrained does); a single tensor larger than this gets a shard
	// of its own. 0: one model.safetensors.
	MaxShardBytes int64
}

// TypeFor picks the Hugging Face architecture that expresses cfg exactly:
// learned positions → gpt2 (gpt_neo with local windows or unscaled
// attention), rotary with LayerNorm → gpt_neox, rotary with RMSNorm and a
// gated MLP → llama (qwen2 with biases on q, k, v only).
func TypeFor(cfg nn.GPTConfig) (ModelType, error) {
	c := cfg.WithDefaults()
	var typ ModelType
	switch {
	case c.Positions == "learned" && (hasWindows(c) || c.AttnScale == 1 && !c.HasBias(c.QKVBias)):
		typ = GPTNeo
	case c.Positions == "learned":
		typ = GPT2
	case c.Norm != "rmsnorm":
		typ = GPTNeoX
	case c.HasBias(c.QKVBias) && !c.HasBias(c.OutBias) && !c.HasBias(c.MLPBias) || hasWindows(c):
		typ = Qwen2
	default:
		typ = Llama
	}
	if _, err := archs[typ].config(c); err != nil {
		return "", fmt.Errorf("hf: no supported architecture expresses this model: %w", err)
	}
	return typ, nil
}

// Save writes the model with config cfg and parameters store as a Hugging
// Face model directory dir of type typ: config.json, generation_config.json
// and the weights under HF's names and layouts, so that
// AutoModelForCausalLM.from_pretrained(dir) loads it. Weights hiddenlab lacks
// but the HF architecture has (biases of layers without bias, LayerNorm
// biases with layernorm_nobias) are written as zeros; a model the
// architecture cannot express is refused (TypeFor picks one that can).
//
// The directory is built under a temporary name beside dir and renamed into
// place when complete, so a failed Save leaves nothing behind. dir must not
// exist or be empty.
func Save(dir string, typ ModelType, cfg nn.GPTConfig, store *nn.Store, o SaveOptions) error {
	a, ok := archs[typ]
	if !ok {
		return fmt.Errorf("hf: unknown model type %q (supported: %s)", typ, typeList())
	}
	c := cfg.WithDefaults()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	fields, err := a.config(c)
	if err != nil {
		return fmt.Errorf("hf: cannot save as %s: %w", typ, err)
	}
	dt := o.DType
	dtypeName := map[torch.DType]string{torch.Float32: "float32", torch.BFloat16: "bfloat16", torch.Float16: "float16"}[dt]
	if dtypeName == "" {
		return fmt.Errorf("hf: save dtype %v: want float32, bfloat16 or float16", dt)
	}
	fields["model_type"] = string(typ)
	fields["architectures"] = []string{a.class}
	fields["tie_word_embeddings"] = c.TiedHead
	fields["torch_dtype"] = dtypeName
	fields["use_cache"] = true
	gen := map[string]any{"_from_model_config": true}
	if t := o.Tokens; t != nil {
		for _, m := range []map[string]any{fields, gen} {
			if t.BOS >= 0 {
				m["bos_token_id"] = t.BOS
			}
			switch len(t.EOS) {
			case 0:
			case 1:
				m["eos_token_id"] = t.EOS[0]
			default:
				m["eos_token_id"] = t.EOS
			}
			if t.Pad >= 0 {
				m["pad_token_id"] = t.Pad
			}
		}
	}

	// Every parameter must have a place in the HF model, and fit it.
	maps := hfTensors(typ, c)
	placed := map[string]bool{}
	for _, m := range maps {
		if m.param == "" {
			continue
		}
		p := store.Get(m.param)
		if p == nil {
			return fmt.Errorf("hf: cannot save as %s: the model has no parameter %s (for %s)", typ, m.param, m.hf)
		}
		if !fits(p.T, m) {
			return fmt.Errorf("hf: cannot save as %s: parameter %s %v does not fit %s %v", typ, m.param, p.T.Shape(), m.hf, m.shape)
		}
		placed[m.param] = true
	}
	for _, p := range store.StateDict() {
		if !placed[p.Name] {
			return fmt.Errorf("hf: cannot save as %s: parameter %s %v has no place in the architecture", typ, p.Name, p.T.Shape())
		}
	}

	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("hf: %s exists and is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hf: %w", err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up on failure
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	for name, m := range map[string]map[string]any{ConfigFile: fields, GenerationConfigFile: gen} {
		js, err := hfJSON(m)
		if err != nil {
			return fmt.Errorf("hf: %s: %w", name, err)
		}
		if err := atomicio.WriteFile(filepath.Join(tmp, name), js, 0o644); err != nil {
			return fmt.Errorf("hf: %w", err)
		}
	}
	if err := writeWeights(tmp, maps, store, dt, o.MaxShardBytes); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	os.Remove(dir) // an empty directory in the way
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	return nil
}

// beforeWrite, when set (by tests), runs before each weights file is written
// and may fail the save.
var beforeWrite func(file string) error

// writeWeights writes the HF tensors into dir, one tensor's bytes in memory
// at a time.
func writeWeights(dir string, maps []tensorMap, store *nn.Store, dt torch.DType, maxShard int64) error {
	var shards [][]checkpoint.StreamTensor
	var cur []checkpoint.StreamTensor
	var curBytes, total int64
	for _, m := range maps {
		m := m
		n := int64(dt.Size())
		for _, s := range m.shape {
			n *= int64(s)
		}
		total += n
		st := checkpoint.StreamTensor{Name: m.hf, DType: dt, Shape: m.shape, Write: func(w io.Writer) error {
			if m.param == "" {
				_, err := w.Write(make([]byte, n))
				return err
			}
			var b []byte
			err := torch.Try(func() {
				torch.NoGrad(func() {
					torch.WithScope(func() {
						v := store.Get(m.param).T.Detach()
						if m.view != nil {
							v = m.view(v)
						}
						b = v.Contiguous().To(dt, torch.CPU).Bytes()
					})
				})
			})
			if err != nil {
				return fmt.Errorf("from parameter %s: %w", m.param, err)
			}
			_, err = w.Write(b)
			return err
		}}
		if maxShard > 0 && len(cur) > 0 && curBytes+n > maxShard {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, st)
		curBytes += n
	}
	shards = append(shards, cur)
	meta := map[string]string{"format": "pt"} // from_pretrained requires it
	write := func(name string, ts []checkpoint.StreamTensor) error {
		if beforeWrite != nil {
			if err := beforeWrite(name); err != nil {
				return err
			}
		}
		return checkpoint.WriteSafetensorsStream(filepath.Join(dir, name), ts, meta)
	}
	if maxShard <= 0 {
		return write(WeightsFile, shards[0])
	}
	weightMap := map[string]string{}
	for i, sh := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := write(name, sh); err != nil {
			return err
		}
		for _, t := range sh {
			weightMap[t.Name] = name
		}
	}
	js, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(filepath.Join(dir, IndexFile), append(js, '\n'), 0o644)
}
