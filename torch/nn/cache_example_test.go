package nn_test

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// ExampleGPT_RunWithCache caches a few activations under TransformerLens's
// names, then patches one: zeroing every head's output of layer 1 (hook_z)
// leaves that block's attention output equal to the projection's bias.
func ExampleGPT_RunWithCache() {
	torch.RunLocked(func() {
		torch.ManualSeed(1)
		m, err := nn.NewGPT(nn.GPTConfig{Vocab: 16, Context: 8, Width: 8, Layers: 2, Heads: 2})
		if err != nil {
			panic(err)
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		ids := torch.FromSlice([]int64{1, 2, 3, 4, 5, 6}, []int{2, 3})

		logits, cache := m.RunWithCache(ids, nn.SiteNames(
			"hook_embed", "blocks.0.attn.hook_q", "blocks.1.attn.hook_pattern", "blocks.1.hook_resid_post"))
		defer cache.Close() // frees the cached (CPU) tensors
		fmt.Println("logits:", logits.Shape())
		for _, site := range cache.Sites() {
			fmt.Println(site, cache.Get(site).Shape())
		}

		zero := func(x *torch.Tensor) *torch.Tensor { return torch.ZerosLike(x) }
		var attnOut *torch.Tensor
		read := func(x *torch.Tensor) *torch.Tensor { attnOut = x; return x }
		m.RunWithHooks(ids,
			nn.SiteHook{Site: nn.Site{Layer: 1, Point: nn.AttnZ}, Hook: zero},
			nn.SiteHook{Site: nn.Site{Layer: 1, Point: nn.HookAttnOut}, Hook: read})
		bias := m.Blocks[1].Attn.Proj.Bias
		fmt.Println("attn_out = bias:", attnOut.Sub(bias).Abs().Amax().Item() == 0)
	})
	// Output:
	// logits: [2 3 16]
	// hook_embed [2 3 8]
	// blocks.0.attn.hook_q [2 3 2 4]
	// blocks.1.attn.hook_pattern [2 2 3 3]
	// blocks.1.hook_resid_post [2 3 8]
	// attn_out = bias: true
}
