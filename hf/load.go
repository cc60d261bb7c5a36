package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Load reads the Hugging Face model in dir (config.json and model.safetensors
// or a sharded model.safetensors.index.json) into a new nn.GPT on device dev.
// Weights stored as f16, bf16 or f64 are converted to f32. The weights stream
// from the files tensor by tensor in chunks, so loading needs little more
// memory than the f32 model itself.
func Load(dir string, dev torch.Device) (*nn.GPT, error) {
	cfg, _, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	var m *nn.GPT
	if err := torch.Try(func() { m, err = nn.NewGPT(cfg) }); err != nil {
		return nil, fmt.Errorf("hf: %s: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hf: %s: %w", dir, err)
	}
	if dev != torch.CPU {
		if err := m.Store.To(dev); err != nil {
			m.Close()
			return nil, fmt.Errorf("hf: %w", err)
		}
	}
	if err := LoadInto(dir, m.Store); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// LoadInto copies the weights of the Hugging Face model in dir into store,
// which must hold the parameters nn.NewGPT creates for the config ReadConfig
// returns (on any device). Every weight is checked (present, shape, float
// dtype) and every tensor in the files accounted for before anything is
// copied; only an I/O error while copying can leave store partly loaded.
func LoadInto(dir string, store *nn.Store) error {
	cfg, typ, err := ReadConfig(dir)
	if err != nil {
		return err
	}
	w, err := openWeights(dir)
	if err != nil {
		return err
	}
	defer w.Close()
	plan, err := w.plan(typ, cfg, store)
	if err != nil {
		return err
	}
	var ioErr error
	terr := torch.Try(func() {
		torch.NoGrad(func() {
			for _, s := range plan {
				torch.WithScope(func() {
					if s.m.param == "" {
						return
					}
					dst := store.Get(s.m.param).T.Detach()
					if s.m.view != nil {
						dst = s.m.view(dst)
					}
					ioErr = s.r.CopyTo(s.name, dst)
				})
				if ioErr != nil {
					return
				}
			}
		})
	})
	if ioErr != nil {
		return fmt.Errorf("hf: %w", ioErr)
	}
	if terr != nil {
		return fmt.Errorf("hf: %s: %w", dir, terr)
	}
	return nil
}

// weights are the open safetensors files of a model directory.
type weights struct {
	dir     string
	readers []*checkpoint.Reader
	where   map[string]*checkpoint.Reader // tensor → file
}

func (w *weights) Close() {
	for _, r := range w.readers {
		r.Close()
	}
}

// openWeights opens dir/model.safetensors, or every shard that
// dir/model.safetensors.index.json names.
func openWeights(dir string) (*weights, error) {
	w := &weights{dir: dir, where: map[string]*checkpoint.Reader{}}
	single := filepath.Join(dir, WeightsFile)
	index := filepath.Join(dir, IndexFile)
	if _, err := os.Stat(single); err == nil {
		r, err := checkpoint.OpenSafetensors(single)
		if err != nil {
			return nil, fmt.Errorf("hf: %w", err)
		}
		w.readers = append(w.readers, r)
		for _, n := range r.Names() {
			w.where[n] = r
		}
		return w, nil
	}
	js, err := os.ReadFile(index)
	if errors.Is(err, os.ErrNotExist) {
		msg := fmt.Sprintf("hf: %s has neither %s nor %s", dir, WeightsFile, IndexFile)
		if _, err := os.Stat(filepath.Join(dir, "pytorch_model.bin")); err == nil {
			msg += " (pytorch_model.bin is not read: only safetensors weights are supported)"
		}
		return nil, errors.New(msg)
	}
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(js, &idx); err != nil {
		return nil, fmt.Errorf("hf: %s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("hf: %s: empty or missing weight_map", index)
	}
	byFile := map[string][]string{}
	for t, f := range idx.WeightMap {
		byFile[f] = append(byFile[f], t)
	}
	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	sort.Strings(files)
	fail := func(err error) (*weights, error) {
		w.Close()
		return nil, err
	}
	for _, f := range files {
		ts := byFile[f]
		sort.Strings(ts)
		if f != filepath.Base(f) {
			return fail(fmt.Errorf("hf: %s: shard %q (for tensor %s) is not a file name in %s", index, f, ts[0], dir))
		}
		path := filepath.Join(dir, f)
		if _, err := os.Stat(path); err != nil {
			return fail(fmt.Errorf("hf: %s names shard %s (for %d tensors, e.g. %s), which is missing: %w", index, f, len(ts), ts[0], err))
		}
		r, err := checkpoint.OpenSafetensors(path)
		if err != nil {
			return fail(fmt.Errorf("hf: %w", err))
		}
		w.readers = append(w.readers, r)
		for _, t := range ts {
			if _, ok := r.Info(t); !ok {
				return fail(fmt.Errorf("hf: %s places tensor %s in %s, which does not hold it", index, t, path))
			}
		}
		for _, n := range r.Names() {
			if prev, dup := w.where[n]; dup {
				return fail(fmt.Errorf("hf: tensor %s is in both %s and %s", n, prev.Path, path))
			}
			w.where[n] = r
		}
	}
	return w, nil
}

// step is one weight to copy: the HF tensor name as stored, its file and map.
type step struct {
	name string
	r    *checkpoint.Reader
	m    tensorMap
}

// plan matches the files' tensors to the model's parameters and checks
// names, shapes and dtypes, reporting every problem at once.
func (w *weights) plan(typ ModelType, cfg nn.GPTConfig, store *nn.Store) ([]step, error) {
	a := archs[typ]
	maps := hfTensors(typ, cfg)
	var problems []string
	var plan []step
	used := map[string]bool{}
	covered := map[string]bool{}
	for _, m := range maps {
		if m.param != "" {
			covered[m.param] = true
		}
		name := m.hf
		r, ok := w.where[name]
		if !ok && strings.HasPrefix(name, a.prefix) { // saved from the base model, without the prefix
			if r2, ok2 := w.where[strings.TrimPrefix(name, a.prefix)]; ok2 {
				name, r, ok = strings.TrimPrefix(name, a.prefix), r2, true
			}
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("missing tensor %s %v", m.hf, m.shape))
			continue
		}
		used[name] = true
		ti, _ := r.Info(name)
		if !slices.Equal(ti.Shape, m.shape) {
			problems = append(problems, fmt.Sprintf("%s: tensor %s has shape %v, config.json implies %v", r.Path, name, ti.Shape, m.shape))
			continue
		}
		if !ti.DType.IsFloat() {
			problems = append(problems, fmt.Sprintf("%s: tensor %s has dtype %v, want a float type", r.Path, name, ti.DType))
			continue
		}
		if m.param != "" {
			p := store.Get(m.param)
			if p == nil {
				problems = append(problems, fmt.Sprintf("the model has no parameter %s for %s", m.param, name))
				continue
			}
			if !fits(p.T, m) {
				problems = append(problems, fmt.Sprintf("parameter %s %v does not fit %s %v", m.param, p.T.Shape(), name, m.shape))
				continue
			}
		}
		plan = append(plan, step{name: name, r: r, m: m})
	}
	var extra []string
	for n := range w.where {
		if !used[n] && !a.ignorable(n, cfg) {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	for _, n := range extra {
		problems = append(problems, fmt.Sprintf("%s: unexpected tensor %s (not part of a %s model with this config.json)", w.where[n].Path, n, typ))
	}
	for _, p := range store.StateDict() {
		if !covered[p.Name] {
			problems = append(problems, fmt.Sprintf("parameter %s has no %s weight", p.Name, typ))
		}
	}
	if len(problems) > 0 {
		const most = 12
		n := len(problems)
		if n > most {
			problems = append(problems[:most], fmt.Sprintf("… and %d more", n-most))
		}
		plural := "s"
		if n == 1 {
			plural = ""
		}
		return nil, fmt.Errorf("hf: %s: the weights do not match the %s config (%d problem%s): %s", w.dir, typ, n, plural, strings.Join(problems, "; "))
	}
	return plan, nil
}

// fits reports whether m's view of parameter t has the HF tensor's number of
// elements.
func fits(t *torch.Tensor, m tensorMap) bool {
	want := 1
	for _, s := range m.shape {
		want *= s
	}
	numel := -1
	torch.Try(func() {
		torch.WithScope(func() {
			v := t.Detach()
			if m.view != nil {
				v = m.view(v)
			}
			numel = v.Numel()
		})
	})
	return numel == want
}
