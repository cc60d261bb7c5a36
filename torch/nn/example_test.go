package nn_test

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// ExampleNewGPT builds a tiny GPT-2-style model, counts its parameters and
// runs a forward pass over a batch of token ids.
func ExampleNewGPT() {
	torch.RunLocked(func() {
		torch.ManualSeed(1)
		m, err := nn.NewGPT(nn.GPTConfig{Vocab: 16, Context: 8, Width: 8, Layers: 1, Heads: 2})
		if err != nil {
			panic(err)
		}
		defer m.Close() // frees the parameters (the store)

		// Token and position embeddings 16·8 + 8·8, one block (two layer
		// norms 2·16, attention 8·24+24 + 8·8+8, MLP 8·32+32 + 32·8+8), the
		// final norm 16 and the head 8·16 (no bias): 1208.
		fmt.Println("parameters:", m.Store.NumParams(nil))

		s := torch.NewScope()
		defer s.Close()
		ids := torch.FromSlice([]int64{1, 2, 3, 4, 5, 6}, []int{2, 3}) // [B, T]
		logits := m.Forward(ids, nil)
		fmt.Println("logits:", logits.Shape(), logits.DType()) // [B, T, V]
	})
	// Output:
	// parameters: 1208
	// logits: [2 3 16] float32
}

// ExampleStore shows the parameter tree: modules register named parameters
// in a Store, which owns and frees them.
func ExampleStore() {
	s := nn.NewStore()
	defer s.Close()
	nn.NewLinear(s.Root().Sub("proj"), 3, 2, true, 0.02) // weight N(0, 0.02²), zero bias
	for _, p := range s.Params() {
		fmt.Println(p.Name, p.T.Shape())
	}
	fmt.Println(s.NumParams(nil))
	// Output:
	// proj.weight [2 3]
	// proj.bias [2]
	// 8
}
