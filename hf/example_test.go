package hf_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hiddenlab/hiddenlab/hf"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Export a hiddenlab model as a Hugging Face Llama (grouped-query attention,
// SwiGLU) and import it back.
func Example() {
	torch.ManualSeed(1)
	cfg := nn.GPTConfig{Vocab: 64, Context: 32, Width: 32, Layers: 2, Heads: 4, KVHeads: 2,
		Positions: "rotary", Norm: "rmsnorm", GatedMLP: true, Activation: nn.SiLU, NoBias: true, MLPWidth: 48}
	m, err := nn.NewGPT(cfg)
	if err != nil {
		panic(err)
	}
	defer m.Close()

	typ, err := hf.TypeFor(cfg)
	if err != nil {
		panic(err)
	}
	tmp, err := os.MkdirTemp("", "hf-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "tiny-llama")
	if err := hf.Save(dir, typ, m.Config, m.Store, hf.SaveOptions{DType: torch.BFloat16}); err != nil {
		panic(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}

	back, t, err := hf.ReadConfig(dir)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d layers, %d heads, %d key/value heads, MLP %d\n", t, back.Layers, back.Heads, back.KVHeads, back.MLPHidden())
	loaded, err := hf.Load(dir, torch.CPU)
	if err != nil {
		panic(err)
	}
	defer loaded.Close()
	out, err := loaded.Generate([][]int64{{1, 2, 3}}, nn.GenerateOptions{MaxNew: 4, Stop: -1})
	if err != nil {
		panic(err)
	}
	fmt.Println("generated", len(out[0]), "tokens")
	// Output:
	// config.json
	// generation_config.json
	// model.safetensors
	// llama: 2 layers, 4 heads, 2 key/value heads, MLP 48
	// generated 4 tokens
}
