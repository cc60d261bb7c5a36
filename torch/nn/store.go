// Package nn holds the building blocks of hiddenlab's models: a parameter
// Store with hierarchical names, layers (Linear, Embedding, LayerNorm,
// RMSNorm, Dropout, MLP, SwiGLU, causal self-attention, Block), a GPT with
// named insertion points (Hooks) and a KV cache, and sampling.
//
// Modules are plain structs holding *torch.Tensor parameters. Parameters are
// created through a Path, which registers them in the Store under dotted names
// ("blocks.0.attn.qkv.weight"); the Store owns them (Close frees them all),
// lists them for optimizers, counts them, saves and loads them, and carries
// the train/eval mode. No reflection is involved.
package nn

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Param is a named tensor owned by a Store.
type Param struct {
	Name   string
	T      *torch.Tensor
	Buffer bool // not trained (e.g. rotary tables); saved only if persistent
	// Persistent buffers are part of the state dict.
	Persistent bool
}

// Store owns a model's parameters and buffers.
type Store struct {
	params   []*Param
	byName   map[string]*Param
	training bool
}

// NewStore returns an empty store in training mode.
func NewStore() *Store { return &Store{byName: map[string]*Param{}, training: true} }

// Root is the path with no prefix.
func (s *Store) Root() Path { return Path{store: s} }

// Train sets training mode (dropout on) or eval mode.
func (s *Store) Train(on bool) { s.training = on }

// Training reports whether the store is in training mode.
func (s *Store) Training() bool { return s.training }

// Params lists the trainable parameters in registration order.
func (s *Store) Params() []*Param {
	var out []*Param
	for _, p := range s.params {
		if !p.Buffer {
			out = append(out, p)
		}
	}
	return out
}

// Tensors lists the tensors of ps.
func Tensors(ps []*Param) []*torch.Tensor {
	out := make([]*torch.Tensor, len(ps))
	for i, p := range ps {
		out[i] = p.T
	}
	return out
}

// Get returns the parameter or buffer with the given name, or nil.
func (s *Store) Get(name string) *Param { return s.byName[name] }

// NumParams counts the elements of the trainable parameters whose names
// satisfy keep (all when keep is nil).
func (s *Store) NumParams(keep func(name string) bool) int {
	n := 0
	for _, p := range s.Params() {
		if keep == nil || keep(p.Name) {
			n += p.T.Numel()
		}
	}
	return n
}

// StateDict lists the parameters and persistent buffers, in registration order.
func (s *Store) StateDict() []*Param {
	var out []*Param
	for _, p := range s.params {
		if !p.Buffer || p.Persistent {
			out = append(out, p)
		}
	}
	return out
}

// ZeroGrad drops (setToNone) or zeroes every parameter's gradient.
func (s *Store) ZeroGrad(setToNone bool) { torch.ZeroGrad(Tensors(s.Params()), setToNone) }

// Freeze stops gradient recording for the parameters whose names satisfy
// match (all when match is nil).
func (s *Store) Freeze(match func(name string) bool) {
	for _, p := range s.Params() {
		if match == nil || match(p.Name) {
			p.T.SetRequiresGrad(false)
		}
	}
}

// To moves every parameter and buffer to device d (in place: modules keep
// their tensors).
func (s *Store) To(d torch.Device) error {
	return torch.Try(func() {
		for _, p := range s.params {
			if p.T.Device() == d {
				continue
			}
			torch.WithScope(func() { p.T.SetData(p.T.Detach().To(d)) })
		}
	})
}

// Close frees every parameter and buffer.
func (s *Store) Close() {
	for _, p := range s.params {
		p.T.Free()
	}
	s.params, s.byName = nil, map[string]*Param{}
}

func (s *Store) add(p *Param) {
	if _, dup := s.byName[p.Name]; dup {
		panic(fmt.Sprintf("nn: parameter %q registered twice", p.Name))
	}
	p.T.Retain()
	s.params = append(s.params, p)
	s.byName[p.Name] = p
}

// LoadOptions relax LoadStateDict's checks.
type LoadOptions struct {
	// AllowMissing accepts store entries absent from the source (e.g. codebooks
	// inserted into a pretrained GPT keep their initialisation).
	AllowMissing func(name string) bool
	// AllowUnexpected accepts source entries the store does not have.
	AllowUnexpected func(name string) bool
}

// LoadStateDict copies src's tensors into the store's parameters and
// persistent buffers. Names, shapes and dtypes must match; the error lists
// every difference. Nothing is copied unless everything matches.
func (s *Store) LoadStateDict(src map[string]*torch.Tensor, o LoadOptions) error {
	var problems []string
	want := s.StateDict()
	seen := map[string]bool{}
	for _, p := range want {
		seen[p.Name] = true
		t, ok := src[p.Name]
		if !ok {
			if o.AllowMissing == nil || !o.AllowMissing(p.Name) {
				problems = append(problems, fmt.Sprintf("missing %s %v %v", p.Name, p.T.Shape(), p.T.DType()))
			}
			continue
		}
		if !slices.Equal(t.Shape(), p.T.Shape()) {
			problems = append(problems, fmt.Sprintf("%s: shape %v, model has %v", p.Name, t.Shape(), p.T.Shape()))
		}
		if t.DType() != p.T.DType() {
			problems = append(problems, fmt.Sprintf("%s: dtype %v, model has %v", p.Name, t.DType(), p.T.DType()))
		}
	}
	var extra []string
	for name := range src {
		if !seen[name] && (o.AllowUnexpected == nil || !o.AllowUnexpected(name)) {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		problems = append(problems, "unexpected "+name)
	}
	if len(problems) > 0 {
		return fmt.Errorf("state dict does not match the model (%d differences): %s", len(problems), strings.Join(problems, "; "))
	}
	for _, p := range want {
		if t, ok := src[p.Name]; ok {
			p.T.CopyFrom(t)
		}
	}
	return nil
}

// Path names a position in the parameter tree.
type Path struct {
	store  *Store
	prefix string
}

// Store returns the store the path registers into.
func (p Path) Store() *Store { return p.store }

// Sub is the child path p.name.
func (p Path) Sub(name string) Path { return Path{store: p.store, prefix: p.join(name)} }

// Index is the child path p.i (for lists of modules: "blocks.0").
func (p Path) Index(i int) Path { return p.Sub(strconv.Itoa(i)) }

// Name is the full name of a child called name.
func (p Path) Name(name string) string { return p.join(name) }

func (p Path) join(name string) string {
	if p.prefix == "" {
		return name
	}
	return p.prefix + "." + name
}

// Param registers t as a trainable parameter p.name and returns it. The store
// takes ownership (t leaves its scope) and t records gradients.
func (p Path) Param(name string, t *torch.Tensor) *torch.Tensor {
	t.SetRequiresGrad(true)
	p.store.add(&Param{Name: p.join(name), T: t})
	return t
}

// Buffer registers t as a non-trained tensor p.name; persistent buffers are
// saved with the state dict.
func (p Path) Buffer(name string, t *torch.Tensor, persistent bool) *torch.Tensor {
	p.store.add(&Param{Name: p.join(name), T: t, Buffer: true, Persistent: persistent})
	return t
}
