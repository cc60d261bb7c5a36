package main

import (
	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// auxLosser is a model with an auxiliary loss (codebook MSE, MoHD balance)
// that training adds to the language-model loss.
type auxLosser interface {
	AuxLoss() (*torch.Tensor, experiment.Logs)
}

// fixedBatch is one random batch of token ids [batch, context] in
// [0, vocab) and its targets, kept for the whole measurement so that every
// step does the same work.
type fixedBatch struct{ ids, targets *torch.Tensor }

func newFixedBatch(vocab, batch, context int) fixedBatch {
	return fixedBatch{
		ids:     torch.RandInt(0, vocab, []int{batch, context}).Retain(),
		targets: torch.RandInt(0, vocab, []int{batch, context}).Retain(),
	}
}

func (b fixedBatch) Free() { b.ids.Free(); b.targets.Free() }

// trainStep is one benchmark training step on b: forward, LM loss (plus
// aux's loss when aux is not nil), zeroed gradients, backward and an AdamW
// step; it returns the loss.
func (b fixedBatch) trainStep(forward func(ids *torch.Tensor) *torch.Tensor, aux auxLosser, store *nn.Store, opt *optim.AdamW) float64 {
	s := torch.NewScope()
	defer s.Close()
	l := nn.LMLoss(forward(b.ids), b.targets, -100)
	if aux != nil {
		if a, _ := aux.AuxLoss(); a != nil {
			l = l.Add(a)
		}
	}
	store.ZeroGrad(true)
	l.Backward()
	opt.Step(1)
	return l.Item()
}
