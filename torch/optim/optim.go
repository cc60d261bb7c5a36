// Package optim trains parameters: AdamW and SGD with parameter groups,
// global gradient-norm clipping, learning-rate schedules, and optimizer state
// that saves and loads with checkpoints.
//
// Each step is one call into the shim per parameter group, using libtorch's
// multi-tensor kernels in the order torch.optim uses, so results match
// PyTorch's optimizers.
package optim

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Group is a set of parameters sharing hyperparameters.
type Group struct {
	Name        string      // for logs and state names, e.g. "decay", "codebook"
	Params      []*nn.Param // the parameters (names key the optimizer state)
	LR          float64     // peak learning rate; the schedule scales it
	WeightDecay float64
	// AdamW only (0 means the default: 0.9, 0.999, 1e-8).
	Beta1, Beta2, Eps float64
	// SGD only.
	Momentum, Dampening float64
	Nesterov            bool
}

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update with every group's LR multiplied by scale (the
	// schedule's factor) and advances the step counter.
	Step(scale float64)
	// Steps reports how many steps were taken.
	Steps() int64
	// Groups returns the parameter groups.
	Groups() []*Group
	// State lists the optimizer's tensors by name, for checkpoints.
	State() map[string]*torch.Tensor
	// LoadState restores State and the step count; names, shapes and dtypes
	// must match.
	LoadState(state map[string]*torch.Tensor, steps int64) error
	// Close frees the optimizer's state.
	Close()
}

// AdamW is torch.optim.AdamW (decoupled weight decay, Loshchilov & Hutter).
// A step is one shim call per group: float32 CPU parameters in one pass
// each (p, g and the moments read once, the operations in PyTorch's order,
// each rounded to float32), others with libtorch's _foreach ops.
type AdamW struct {
	groups []*Group
	m, v   [][]*torch.Tensor // first and second moments per group, per parameter
	steps  int64
}

// NewAdamW creates AdamW over groups; moment buffers start at zero.
func NewAdamW(groups ...*Group) (*AdamW, error) {
	if err := checkGroups(groups); err != nil {
		return nil, err
	}
	o := &AdamW{groups: groups}
	for _, g := range groups {
		if g.Beta1 == 0 {
			g.Beta1 = 0.9
		}
		if g.Beta2 == 0 {
			g.Beta2 = 0.999
		}
		if g.Eps == 0 {
			g.Eps = 1e-8
		}
		var m, v []*torch.Tensor
		for _, p := range g.Params {
			m = append(m, torch.ZerosLike(p.T).Retain())
			v = append(v, torch.ZerosLike(p.T).Retain())
		}
		o.m, o.v = append(o.m, m), append(o.v, v)
	}
	return o, nil
}

func checkGroups(groups []*Group) error {
	seen := map[string]string{}
	for _, g := range groups {
		if g.LR < 0 || g.WeightDecay < 0 {
			return fmt.Errorf("optimizer group %q: negative lr or weight decay", g.Name)
		}
		for _, p := range g.Params {
			if other, dup := seen[p.Name]; dup {
				return fmt.Errorf("parameter %s is in optimizer groups %q and %q", p.Name, other, g.Name)
			}
			seen[p.Name] = g.Name
		}
	}
	return nil
}

// Step applies one AdamW update.
func (o *AdamW) Step(scale float64) {
	o.steps++
	for i, g := range o.groups {
		torch.AdamWStep(nn.Tensors(g.Params), o.m[i], o.v[i], o.steps, g.LR*scale, g.Beta1, g.Beta2, g.Eps, g.WeightDecay)
	}
}

// Steps reports the number of steps taken.
func (o *AdamW) Steps() int64 { return o.steps }

// Groups returns the parameter groups.
func (o *AdamW) Groups() []*Group { return o.groups }

// State names each moment "<param>.exp_avg" / "<param>.exp_avg_sq".
func (o *AdamW) State() map[string]*torch.Tensor {
	out := map[string]*torch.Tensor{}
	for i, g := range o.groups {
		for j, p := range g.Params {
			out[p.Name+".exp_avg"] = o.m[i][j]
			out[p.Name+".exp_avg_sq"] = o.v[i][j]
		}
	}
	return out
}

// LoadState restores the moments and the step count.
func (o *AdamW) LoadState(state map[string]*torch.Tensor, steps int64) error {
	if err := loadInto(o.State(), state); err != nil {
		return fmt.Errorf("adamw state: %w", err)
	}
	o.steps = steps
	return nil
}

// Close frees the moment buffers.
func (o *AdamW) Close() { freeAll(o.m, o.v) }

// SGD is torch.optim.SGD with momentum, dampening, Nesterov and L2 weight decay.
type SGD struct {
	groups []*Group
	buf    [][]*torch.Tensor
	steps  int64
}

// NewSGD creates SGD over groups.
func NewSGD(groups ...*Group) (*SGD, error) {
	if err := checkGroups(groups); err != nil {
		return nil, err
	}
	o := &SGD{groups: groups}
	for _, g := range groups {
		var b []*torch.Tensor
		if g.Momentum != 0 {
			for _, p := range g.Params {
				b = append(b, torch.ZerosLike(p.T).Retain())
			}
		}
		o.buf = append(o.buf, b)
	}
	return o, nil
}

// Step applies one SGD update.
func (o *SGD) Step(scale float64) {
	o.steps++
	for i, g := range o.groups {
		var buf []*torch.Tensor
		if g.Momentum != 0 {
			buf = o.buf[i]
		}
		torch.SGDStep(nn.Tensors(g.Params), buf, o.steps, g.LR*scale, g.Momentum, g.Dampening, g.WeightDecay, g.Nesterov)
	}
}

// Steps reports the number of steps taken.
func (o *SGD) Steps() int64 { return o.steps }

// Groups returns the parameter groups.
func (o *SGD) Groups() []*Group { return o.groups }

// State names each momentum buffer "<param>.momentum".
func (o *SGD) State() map[string]*torch.Tensor {
	out := map[string]*torch.Tensor{}
	for i, g := range o.groups {
		for j, p := range g.Params {
			if g.Momentum != 0 {
				out[p.Name+".momentum"] = o.buf[i][j]
			}
		}
	}
	return out
}

// LoadState restores the momentum buffers and the step count.
func (o *SGD) LoadState(state map[string]*torch.Tensor, steps int64) error {
	if err := loadInto(o.State(), state); err != nil {
		return fmt.Errorf("sgd state: %w", err)
	}
	o.steps = steps
	return nil
}

// Close frees the momentum buffers.
func (o *SGD) Close() { freeAll(o.buf) }

func loadInto(dst, src map[string]*torch.Tensor) error {
	for name, t := range dst {
		s, ok := src[name]
		if !ok {
			return fmt.Errorf("missing %s", name)
		}
		if fmt.Sprint(s.Shape()) != fmt.Sprint(t.Shape()) || s.DType() != t.DType() {
			return fmt.Errorf("%s: %v %v, optimizer has %v %v", name, s.Shape(), s.DType(), t.Shape(), t.DType())
		}
	}
	for name := range src {
		if _, ok := dst[name]; !ok {
			return fmt.Errorf("unexpected %s", name)
		}
	}
	for name, t := range dst {
		t.CopyFrom(src[name])
	}
	return nil
}

func freeAll(lists ...[][]*torch.Tensor) {
	for _, l := range lists {
		for _, g := range l {
			for _, t := range g {
				t.Free()
			}
		}
	}
}

// ClipGradNorm scales the gradients of params so that their global 2-norm is
// at most maxNorm (as torch.nn.utils.clip_grad_norm_) and returns the norm
// before clipping. maxNorm <= 0 only measures.
func ClipGradNorm(params []*nn.Param, maxNorm float64) float64 {
	return torch.ClipGradNorm(nn.Tensors(params), maxNorm)
}
