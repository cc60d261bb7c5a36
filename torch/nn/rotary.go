package nn

import (
	"math"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Rotary applies rotary position embeddings (Su et al. 2021) to the first
// Dims features of each head, GPT-NeoX style: the rotated block is split in
// halves (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin).
type Rotary struct {
	Dims     int
	Cos, Sin *torch.Tensor // [maxLen, Dims/2] buffers
}

// NewRotary precomputes the tables for positions [0, maxLen) with the given
// base (10000 in most models).
func NewRotary(p Path, dims, maxLen int, base float64) *Rotary {
	half := dims / 2
	cos := make([]float32, maxLen*half)
	sin := make([]float32, maxLen*half)
	for pos := 0; pos < maxLen; pos++ {
		for i := 0; i < half; i++ {
			angle := float64(pos) * math.Pow(base, -2*float64(i)/float64(dims))
			cos[pos*half+i] = float32(math.Cos(angle))
			sin[pos*half+i] = float32(math.Sin(angle))
		}
	}
	return &Rotary{
		Dims: dims,
		Cos:  p.Buffer("cos", torch.FromSlice(cos, []int{maxLen, half}), false),
		Sin:  p.Buffer("sin", torch.FromSlice(sin, []int{maxLen, half}), false),
	}
}

// Apply rotates x [B, H, L, headDim]. Positions are offset..offset+L−1, or
// per row when positions [B, L] (int64) is given.
func (r *Rotary) Apply(x *torch.Tensor, offset int, positions *torch.Tensor) *torch.Tensor {
	var cos, sin *torch.Tensor
	L := x.Size(2)
	if positions != nil {
		cos = torch.Embedding(r.Cos, positions).Unsqueeze(1) // [B, 1, L, half]
		sin = torch.Embedding(r.Sin, positions).Unsqueeze(1)
	} else {
		cos = r.Cos.Narrow(0, offset, L) // [L, half]
		sin = r.Sin.Narrow(0, offset, L)
	}
	half := r.Dims / 2
	hd := x.Size(-1)
	x1 := x.Narrow(-1, 0, half)
	x2 := x.Narrow(-1, half, half)
	rot := []*torch.Tensor{
		x1.Mul(cos).Sub(x2.Mul(sin)),
		x2.Mul(cos).Add(x1.Mul(sin)),
	}
	if r.Dims < hd {
		rot = append(rot, x.Narrow(-1, r.Dims, hd-r.Dims))
	}
	return torch.Cat(rot, -1)
}
