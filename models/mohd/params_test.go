package mohd

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Brief §7's configurations (L = 4, head_dim 32, character vocabulary 64).
func briefConfig(width, heads, ffn, groups, shared, topk int, vanilla bool) Config {
	c := DefaultConfig()
	c.Vocab, c.Context, c.Layers, c.HeadDim = 64, 16, 4, 32
	c.Width, c.Heads, c.FFN, c.Groups, c.Shared, c.TopK, c.Vanilla = width, heads, ffn, groups, shared, topk, vanilla
	return c
}

// TestParamFormulaMatchesCounter: §2.3's formula equals the count over the
// module tree, total and activated per token, and reproduces the brief's
// table (non-embedding, routers and fusion included).
func TestParamFormulaMatchesCounter(t *testing.T) {
	lockThread(t)
	layer := func(c Config) Config { c.Router = string(RouterLayer); return c }
	noFusion := func(c Config) Config { c.Fusion = string(FusionOff); return c }
	c50 := briefConfig(128, 4, 352, 16, 6, 2, false)
	for _, c := range []struct {
		name          string
		cfg           Config
		total, active int // from the brief's table; 0: not in it
	}{
		{"V128", briefConfig(128, 4, 352, 0, 0, 0, true), 802_816, 802_816},
		{"V96m", briefConfig(96, 3, 256, 0, 0, 0, true), 442_368, 442_368},
		{"C50", c50, 837_632, 436_224},
		{"V128m", briefConfig(128, 4, 408, 0, 0, 0, true), 888_832, 888_832},
		{"X2", briefConfig(256, 4, 352, 16, 6, 2, false), 1_691_648, 888_832},
		{"C50-shared (N_s = 0, K = 8)", briefConfig(128, 4, 352, 16, 0, 8, false), 0, 0},
		{"C50 router per layer", layer(c50), 0, 0},
		{"C50-fusion", noFusion(c50), 0, 0},
		{"X3 (N = 24, g = 64)", briefConfig(1536, 16, 1408, 24, 9, 3, false), 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, c.cfg, 1)
			total, active, err := CountParams(m.Store(), m.Config)
			require.NoError(t, err)
			require.Equal(t, c.cfg.TotalParams(), total, "total")
			require.Equal(t, c.cfg.ActiveParams(), active, "activated")
			require.Equal(t, m.Store().NumParams(nil), total.NonEmbedding()+total.Norm+total.Embedding, "every parameter counted")
			if c.total > 0 {
				require.Equal(t, c.total, total.NonEmbedding())
				require.Equal(t, c.active, active.NonEmbedding())
			}
			t.Logf("%s: total %d, activated %d (non-embedding; formula = counter)", c.name, total.NonEmbedding(), active.NonEmbedding())
		})
	}
}
