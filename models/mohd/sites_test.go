package mohd

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// TestSites: MoHD's blocks expose TransformerLens's residual and sublayer
// output sites; caching them leaves the logits bit-identical, the residual
// stream adds up, and patching the last resid_post with another input's
// gives that input's logits.
func TestSites(t *testing.T) {
	lockThread(t)
	for _, vanilla := range []bool{false, true} {
		c := small()
		c.Vanilla = vanilla
		m := newModel(t, c, 3)
		m.store.Train(false)
		torch.WithScope(func() {
			ids, other := randomIDs(c, 2, 7), randomIDs(c, 2, 7)
			plain := m.Forward(ids)
			var _ nn.Hookable = m
			logits, cache := nn.RunWithCache(m, nil, func() *torch.Tensor { return m.Forward(ids) })
			defer cache.Close()
			require.Equal(t, 0.0, maxDiff(plain, logits))
			require.Equal(t, len(m.AllSites()), cache.Len(), cache.Names())
			get := func(name string) *torch.Tensor {
				x, err := cache.Lookup(name)
				require.NoError(t, err)
				return x
			}
			for _, l := range []string{"0", "1"} {
				b := "blocks." + l + "."
				require.Less(t, maxDiff(get(b+"hook_resid_pre").Add(get(b+"hook_attn_out")), get(b+"hook_resid_mid")), 1e-6)
				require.Less(t, maxDiff(get(b+"hook_resid_mid").Add(get(b+"hook_mlp_out")), get(b+"hook_resid_post")), 1e-6)
			}
			_, oc := nn.RunWithCache(m, nn.SiteNames("blocks.1.hook_resid_post"), func() *torch.Tensor { return m.Forward(other) })
			defer oc.Close()
			var patched *torch.Tensor
			m.Hooks.With([]nn.SiteHook{{Site: nn.Site{Layer: 1, Point: nn.ResidPost}, Hook: nn.Patch(oc.Get(nn.Site{Layer: 1, Point: nn.ResidPost}))}},
				func() { patched = m.Forward(ids) })
			require.Less(t, maxDiff(patched, m.Forward(other)), 1e-6)
		})
	}
}
