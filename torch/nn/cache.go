package nn

import (
	"fmt"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Hookable is a model with hook sites: nn.GPT (and the families' models
// that embed it: gpt, codebook, imported Hugging Face models) and
// mohd.Model.
type Hookable interface {
	// ModelHooks is the model's hook set, applied by every forward pass.
	ModelHooks() *Hooks
	// AllSites lists the model's sites in forward order.
	AllSites() []Site
}

// SiteFilter selects sites to cache; nil selects every site.
type SiteFilter func(Site) bool

// SiteNames selects the named sites (String or TransformerLens names,
// aliases included: "blocks.1.residual" and "blocks.1.hook_resid_post" are
// the same site). It panics with a *torch.Error on a name ParseSite rejects.
func SiteNames(names ...string) SiteFilter {
	want := map[Site]bool{}
	for _, n := range names {
		s, err := ParseSite(n)
		if err != nil {
			panic(&torch.Error{Op: "site_names", Kind: torch.KindValue, Msg: err.Error()})
		}
		want[s.Canonical()] = true
	}
	return func(s Site) bool { return want[s.Canonical()] }
}

// PointFilter selects every layer's sites of the given points (aliases
// included), as TransformerLens's names_filter on a suffix.
func PointFilter(ps ...Point) SiteFilter {
	want := map[Point]bool{}
	for _, p := range ps {
		want[p.Canonical()] = true
	}
	return func(s Site) bool { return want[s.Point.Canonical()] }
}

// ActivationCache holds the activations of one forward pass, copied to the
// CPU and detached from autograd (TransformerLens's ActivationCache). It
// owns its tensors: Close frees them. Keys are sites, aliases resolved.
type ActivationCache struct {
	sites []Site // as listed by the model, in forward order
	acts  map[Site]*torch.Tensor
}

// Get returns the activation cached at site (or an alias of it), or nil.
// The tensor belongs to the cache.
func (c *ActivationCache) Get(site Site) *torch.Tensor { return c.acts[site.Canonical()] }

// Lookup returns the activation cached under name (a ParseSite name).
func (c *ActivationCache) Lookup(name string) (*torch.Tensor, error) {
	s, err := ParseSite(name)
	if err != nil {
		return nil, err
	}
	t := c.Get(s)
	if t == nil {
		return nil, fmt.Errorf("site %s is not in the cache (cached: %s)", name, strings.Join(c.Names(), ", "))
	}
	return t, nil
}

// Sites lists the cached sites in forward order, under the names the model
// listed them by (TransformerLens's where they exist).
func (c *ActivationCache) Sites() []Site {
	var out []Site
	for _, s := range c.sites {
		if c.acts[s.Canonical()] != nil {
			out = append(out, s)
		}
	}
	return out
}

// Names is Sites as strings.
func (c *ActivationCache) Names() []string {
	var out []string
	for _, s := range c.Sites() {
		out = append(out, s.String())
	}
	return out
}

// Len is the number of cached activations.
func (c *ActivationCache) Len() int { return len(c.acts) }

// Close frees the cached tensors.
func (c *ActivationCache) Close() {
	for _, t := range c.acts {
		t.Free()
	}
	c.acts = nil
}

// RunWithCache runs forward with a caching hook at every site of m that
// filter selects and returns forward's result and the cache
// (TransformerLens's run_with_cache). The caching hooks run after any hooks
// already installed (patches, codebooks), so they record what the rest of
// the model sees, and they are removed when forward returns or panics.
// Each activation is detached and copied to the CPU (TransformerLens keeps
// its cache on the model's device unless asked otherwise; here a cache never
// holds device memory); forward's own tensors stay in the caller's scope. Sites that forward never reaches (attention
// scores of a block that ran fused, say) are absent, but hooking the scores
// or the pattern makes a GPT block run explicit attention.
func RunWithCache(m Hookable, filter SiteFilter, forward func() *torch.Tensor) (*torch.Tensor, *ActivationCache) {
	c := &ActivationCache{acts: map[Site]*torch.Tensor{}}
	var hooks []SiteHook
	for _, s := range m.AllSites() {
		if filter != nil && !filter(s) {
			continue
		}
		c.sites = append(c.sites, s)
		key := s.Canonical()
		hooks = append(hooks, SiteHook{Site: s, Hook: func(x *torch.Tensor) *torch.Tensor {
			if old := c.acts[key]; old != nil { // a site seen twice keeps the last pass
				old.Free()
			}
			c.acts[key] = cpuCopy(x)
			return x
		}})
	}
	var out *torch.Tensor
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	m.ModelHooks().With(hooks, func() { out = forward() })
	ok = true
	return out, c
}

// cpuCopy is a detached contiguous CPU copy of x that no scope owns.
func cpuCopy(x *torch.Tensor) *torch.Tensor {
	var out *torch.Tensor
	torch.WithScope(func() {
		d := x.Detach()
		if d.Device().Type == torch.DeviceCPU {
			out = d.Clone().Contiguous()
		} else {
			out = d.To(torch.CPU).Contiguous()
		}
		out.Retain()
	})
	return out
}

// RunWithCache runs the model on ids [B, T] (int64) with a caching hook at
// every site filter selects (nil: all of AllSites) and returns the logits
// [B, T, V] and the cache, which the caller closes. See the package-level
// RunWithCache.
func (m *GPT) RunWithCache(ids *torch.Tensor, filter SiteFilter) (*torch.Tensor, *ActivationCache) {
	return RunWithCache(m, filter, func() *torch.Tensor { return m.Forward(ids, nil) })
}

// RunWithHooks runs the model on ids with hooks installed for this call only
// (TransformerLens's run_with_hooks): a hook that returns a replacement
// patches its site, and everything downstream sees the patch.
func (m *GPT) RunWithHooks(ids *torch.Tensor, hooks ...SiteHook) *torch.Tensor {
	var out *torch.Tensor
	m.Hooks.With(hooks, func() { out = m.Forward(ids, nil) })
	return out
}

// Patch is a hook that replaces its site's activation by v (same shape,
// broadcastable), as activation patching does.
func Patch(v *torch.Tensor) Hook {
	return func(x *torch.Tensor) *torch.Tensor { return v.To(x.Device(), x.DType()).Expand(x.Shape()...) }
}
