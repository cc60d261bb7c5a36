package codebook

import "github.com/hiddenlab/hiddenlab/torch"

// Intervention edits a layer's code selection at inference (paper §1.7, §4;
// official code hook_kwargs and patch_in_codes): disabled codes are never
// chosen (the next most similar take their place), and patches write chosen
// ids into slots.
type Intervention struct {
	// Disable lists codes per codebook (group) that are never selected.
	Disable map[int][]int
	// Patches apply in order after selection.
	Patches []Patch
}

// Patch writes Code into Slot of codebook Group at Positions.
type Patch struct {
	Group int
	// Slot is the slot overwritten: 0 is the most similar code, K−1 the
	// least; AllSlots writes every slot (the paper's "all codes" mode).
	Slot int
	// Code is the id written; Blocked (−1) empties the slot: it contributes
	// a zero vector but still counts in the divisor K.
	Code int
	// Positions are token positions (nil: every position, including each
	// newly generated token).
	Positions []int
}

// Special Patch values.
const (
	AllSlots = -1
	Blocked  = -1
)

// disableMask is a [G, 1, C] bool mask of the disabled codes.
func (iv *Intervention) disableMask(G, C int, dev torch.Device) *torch.Tensor {
	m := make([]bool, G*C)
	for g, codes := range iv.Disable {
		for _, c := range codes {
			if g >= 0 && g < G && c >= 0 && c < C {
				m[g*C+c] = true
			}
		}
	}
	return torch.FromSlice(m, []int{G, 1, C}, dev)
}

// patch applies the patches to ids [N, G, K] of an input of shape [..., T, D].
func (iv *Intervention) patch(ids *torch.Tensor, shape []int) *torch.Tensor {
	if len(iv.Patches) == 0 {
		return ids
	}
	N, G, K := ids.Size(0), ids.Size(1), ids.Size(2)
	T := shape[len(shape)-2]
	v := ids.Int64s()
	for _, p := range iv.Patches {
		if p.Group < 0 || p.Group >= G {
			continue
		}
		slots := []int{p.Slot}
		if p.Slot == AllSlots {
			slots = make([]int, K)
			for i := range slots {
				slots[i] = i
			}
		}
		at := func(n int) {
			for _, s := range slots {
				if s >= 0 && s < K {
					v[(n*G+p.Group)*K+s] = int64(p.Code)
				}
			}
		}
		for n := 0; n < N; n++ {
			if p.Positions == nil {
				at(n)
				continue
			}
			t := n % T
			for _, pos := range p.Positions {
				if pos == t || (pos < 0 && pos+T == t) {
					at(n)
				}
			}
		}
	}
	return torch.FromSlice(v, []int{N, G, K}, ids.Device())
}
