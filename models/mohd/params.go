package mohd

import (
	"fmt"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Params is a parameter count split into the terms of brief §2.3. Attn,
// FFN, Router and Fusion are the non-embedding parameters the formula
// counts; the RMSNorm gains and the embedding and head are kept apart.
type Params struct {
	Attn, FFN, Router, Fusion int
	Norm                      int // RMSNorm gains: 2·D per layer + D (outside §2.3)
	Embedding                 int // token embedding and LM head: 2·V·D
}

// NonEmbedding is the §2.3 count: Attn + FFN + Router + Fusion.
func (p Params) NonEmbedding() int { return p.Attn + p.FFN + p.Router + p.Fusion }

// TotalParams is §2.3's total per model: per layer 4·D·d_a + 3·D·d_ff
// (attention, FFN), D·N_r per router, 2·D·(g + N) for the two fusions.
func (c Config) TotalParams() Params {
	c.resolve()
	L, D := c.Layers, c.Width
	p := Params{
		Attn: L * 4 * D * c.AttnWidth(), FFN: L * 3 * D * c.FFN,
		Router: L * c.routers() * D * c.Routed(), Norm: (2*L + 1) * D, Embedding: 2 * c.Vocab * D,
	}
	if Fusion(c.Fusion) == FusionMonarch {
		p.Fusion = L * 2 * D * (c.G() + c.Groups)
	}
	return p
}

// ActiveParams is §2.3's activated count per token: δ of the attention and
// FFN matrices (the rows of the active groups), the routers and fusions whole.
func (c Config) ActiveParams() Params {
	c.resolve()
	p := c.TotalParams()
	dAct, L := c.ActiveWidth(), c.Layers
	p.Attn = L * 4 * dAct * c.AttnWidth()
	p.FFN = L * 3 * dAct * c.FFN
	return p
}

// CountParams counts the parameters of a model's store by walking its
// names and shapes: the counter the §2.3 formula is checked against. The
// activated count takes, of each attention and FFN matrix, the rows of the
// d_act active dimensions of its D rows.
func CountParams(s *nn.Store, c Config) (total, active Params, err error) {
	c.resolve()
	dAct := c.ActiveWidth()
	for _, p := range s.Params() {
		n := p.T.Numel()
		name := p.Name
		var dst *int
		sparse := false
		switch {
		case name == "embed.weight" || name == "head.weight":
			total.Embedding += n
			active.Embedding += n
			continue
		case strings.HasSuffix(name, ".router.weight"):
			total.Router += n
			active.Router += n
			continue
		case strings.Contains(name, ".fusion."):
			total.Fusion += n
			active.Fusion += n
			continue
		case strings.HasSuffix(name, "norm.weight"):
			total.Norm += n
			active.Norm += n
			continue
		case strings.HasSuffix(name, ".attn.wqkv") || strings.HasSuffix(name, ".attn.wo"):
			dst, sparse = &total.Attn, true
		case strings.HasSuffix(name, ".ffn.w13") || strings.HasSuffix(name, ".ffn.w2"):
			dst, sparse = &total.FFN, true
		default:
			return total, active, fmt.Errorf("count params: unexpected parameter %s", name)
		}
		rows := p.T.Size(0)
		if sparse && rows != c.Width {
			return total, active, fmt.Errorf("count params: %s has %d rows, want D = %d", name, rows, c.Width)
		}
		*dst += n
		per := n / rows * dAct
		if dst == &total.Attn {
			active.Attn += per
		} else {
			active.FFN += per
		}
	}
	return total, active, nil
}
