package sae

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Source is the frozen model an SAE reads: a reopened run (weights loaded,
// eval mode) and one of its sites.
type Source struct {
	Run   *rundir.Run
	LM    *lm.Experiment
	Model nn.Hookable
	Site  nn.Site
	// Shape is an activation's shape per token (the site's shape after
	// [B, T]: [C], or [H, Dh] for the per-head sites); DIn its product.
	Shape []int
	DIn   int
}

// OpenSource reopens the run in dir (rundir.Open) and checks that its model
// has site. It runs on the device goroutine.
func OpenSource(dir, site string, device torch.Device) (*Source, error) {
	s, err := nn.ParseSite(site)
	if err != nil {
		return nil, err
	}
	if s.Point.Canonical() == nn.AttnWeights || s.Point == nn.AttnScores {
		return nil, fmt.Errorf("site %s: attention patterns are [B, H, T, S], not one vector per token", site)
	}
	run, err := rundir.Open(dir, rundir.OpenOptions{Device: device})
	if err != nil {
		return nil, err
	}
	src := &Source{Run: run, Site: s}
	o, ok := run.Experiment.(lm.Opened)
	if !ok {
		run.Close()
		return nil, fmt.Errorf("%s: a %s run is not a language model", dir, run.Recipe.Family)
	}
	src.LM = o.LM()
	if src.Model, ok = src.LM.M.(nn.Hookable); !ok {
		run.Close()
		return nil, fmt.Errorf("%s: the %s model has no hook sites", dir, run.Recipe.Family)
	}
	found := false
	var names []string
	for _, x := range src.Model.AllSites() {
		found = found || x.Same(s)
		names = append(names, x.String())
	}
	if !found {
		run.Close()
		return nil, fmt.Errorf("%s: the %s model has no site %s (sites: %v)", dir, run.Recipe.Family, site, names)
	}
	err = torch.Try(func() {
		torch.WithScope(func() {
			ids := torch.Full([]int{1, 2}, float64(src.LM.D.Start()), torch.Int64, device)
			x := src.capture(ids)
			src.Shape = x.Shape()[2:]
		})
	})
	if err != nil {
		run.Close()
		return nil, err
	}
	src.DIn = 1
	for _, d := range src.Shape {
		src.DIn *= d
	}
	return src, nil
}

// Close frees the source model.
func (s *Source) Close() { s.Run.Close() }

// Device is where the source model's tensors live.
func (s *Source) Device() torch.Device { return s.LM.Device }

// stop ends a forward pass once the site has been read.
type stop struct{}

// capture runs the model on ids [B, T] without autograd up to the site and
// returns the site's activation as the model computed it.
func (s *Source) capture(ids *torch.Tensor) *torch.Tensor {
	var x *torch.Tensor
	torch.NoGrad(func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stop); !ok {
					panic(r)
				}
			}
		}()
		read := func(t *torch.Tensor) *torch.Tensor { x = t.Detach(); panic(stop{}) }
		s.Model.ModelHooks().With([]nn.SiteHook{{Site: s.Site, Hook: read}}, func() { s.LM.M.Forward(ids) })
	})
	return x
}

// Acts returns the site's activations of ids [B, T] as rows [B·T, d_in]
// (detached; the forward pass stops at the site).
func (s *Source) Acts(ids *torch.Tensor) *torch.Tensor {
	return s.capture(ids).Reshape(-1, s.DIn)
}

// Forward runs the model on ids with the site's activation x, as rows
// [B·T, d_in], replaced by f(x) (nil: untouched); it also returns x.
func (s *Source) Forward(ids *torch.Tensor, f func(x *torch.Tensor) *torch.Tensor) (logits, x *torch.Tensor) {
	hook := func(t *torch.Tensor) *torch.Tensor {
		x = t.Detach().Reshape(-1, s.DIn)
		if f == nil {
			return t
		}
		return f(x).Reshape(t.Shape()...)
	}
	s.Model.ModelHooks().With([]nn.SiteHook{{Site: s.Site, Hook: hook}}, func() { logits = s.LM.M.Forward(ids) })
	return logits, x
}

// RunWithCache runs any LM model whose model has hook sites (nn.Hookable:
// gpt, codebook, imported Hugging Face models, mohd) on ids [B, T] with the
// activations filter selects cached (see nn.RunWithCache); the caller closes
// the cache.
func RunWithCache(m lm.Model, ids *torch.Tensor, filter nn.SiteFilter) (*torch.Tensor, *nn.ActivationCache, error) {
	h, ok := m.(nn.Hookable)
	if !ok {
		return nil, nil, fmt.Errorf("sae: a %T has no hook sites", m)
	}
	logits, c := nn.RunWithCache(h, filter, func() *torch.Tensor { return m.Forward(ids) })
	return logits, c, nil
}
