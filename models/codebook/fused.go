package codebook

import "github.com/hiddenlab/hiddenlab/torch"

// fused reports whether Quantize takes the fused path: float32 inputs and
// codes, no intervention (interventions patch the ids between selection and
// lookup, which the fused op does not expose) and Reference unset.
func (l *Layer) fused(a *torch.Tensor) bool {
	return !l.Reference && l.Intervention == nil && a.DType() == torch.Float32 && l.Codes.DType() == torch.Float32
}

// quantizeFused is Quantize in one shim call (torch.CodebookQuantize): the
// same ids, the same output and loss to rounding (the reference builds the
// autograd graph of the lookup, the MSE and the straight-through; the fused
// op records one node with a hand-written backward, see cc/codebook.cc), and
// the score blocks sized from the L2 cache, at most ChunkElems scores. The whole call runs outside
// autocast, as Select does: scores in float32 keep near-equal codes apart.
func (l *Layer) quantizeFused(a *torch.Tensor) (out, ids, mse *torch.Tensor) {
	torch.WithoutAutocast(a.Device().Type, func() { out, ids, mse = torch.CodebookQuantize(a, l.Codes, l.K, max(1, l.ChunkElems/(l.G*l.C))) })
	if l.store.Training() {
		l.count(ids)
	}
	return out, ids, mse
}
