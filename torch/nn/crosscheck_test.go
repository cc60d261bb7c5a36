package nn_test

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
	"github.com/stretchr/testify/require"
)

// pythonTorch is Debian's interpreter that has torch (python3-torch).
const pythonTorch = "/usr/bin/python3"

func requirePyTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command(pythonTorch, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch reference unavailable: %s cannot import torch (install python3-torch; make setup does): %v", pythonTorch, err)
	}
}

// TestCrossCheckPyTorch runs the same GPT, initialised in Go, in PyTorch eager
// and compares logits, loss and the parameters after one AdamW step.
func TestCrossCheckPyTorch(t *testing.T) {
	requirePyTorch(t)
	cases := []struct {
		name string
		cfg  nn.GPTConfig
	}{
		{"gpt2 style", nn.GPTConfig{Vocab: 64, Context: 16, Width: 32, Layers: 2, Heads: 4, TiedHead: true}},
		{"neox style", nn.GPTConfig{Vocab: 48, Context: 16, Width: 32, Layers: 2, Heads: 2, Positions: "rotary",
			RotaryDims: 8, ParallelResidual: true, Activation: nn.GELUTanh}},
		{"llama style", nn.GPTConfig{Vocab: 40, Context: 12, Width: 24, Layers: 2, Heads: 3, Positions: "rotary",
			Norm: "rmsnorm", NoBias: true, Activation: nn.SiLU, MLPRatio: 2.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { crossCheck(t, c.cfg) })
	}
}

func crossCheck(t *testing.T, cfg nn.GPTConfig) {
	const lr, wd = 1e-3, 0.1
	dir := t.TempDir()
	torch.ManualSeed(3)
	m, err := nn.NewGPT(cfg)
	require.NoError(t, err)
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()

	// Export the Go-initialised weights, the batch and the config.
	weights := map[string]*torch.Tensor{}
	for _, p := range m.Store.StateDict() {
		weights[p.Name] = p.T
	}
	require.NoError(t, checkpoint.WriteSafetensors(filepath.Join(dir, "weights.safetensors"), weights, nil))
	B, T := 3, cfg.Context
	ids := torch.RandInt(0, cfg.Vocab, []int{B, T})
	targets := torch.RandInt(0, cfg.Vocab, []int{B, T})
	require.NoError(t, checkpoint.WriteSafetensors(filepath.Join(dir, "batch.safetensors"),
		map[string]*torch.Tensor{"ids": ids, "targets": targets}, nil))
	c := m.Config // defaults filled in
	js, _ := json.Marshal(map[string]any{
		"vocab": c.Vocab, "context": c.Context, "width": c.Width, "layers": c.Layers, "heads": c.Heads,
		"mlp_ratio": c.MLPRatio, "activation": c.Activation, "tied_head": c.TiedHead, "positions": c.Positions,
		"rotary_dims": c.RotaryDims, "rotary_base": c.RotaryBase, "parallel_residual": c.ParallelResidual,
		"norm": c.Norm, "norm_eps": c.NormEps, "no_bias": c.NoBias, "lr": lr, "weight_decay": wd,
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644))

	// Go: forward, loss, backward, one AdamW step.
	logits := m.Forward(ids, nil)
	loss := nn.LMLoss(logits, targets, -100)
	loss.Backward()
	opt, err := optim.NewAdamW(&optim.Group{Params: m.Store.Params(), LR: lr, WeightDecay: wd})
	require.NoError(t, err)
	defer opt.Close()
	opt.Step(1)

	out, err := exec.Command(pythonTorch, "testdata/gpt_reference.py", dir).CombinedOutput()
	require.NoError(t, err, "reference: %s", out)
	ref, err := checkpoint.ReadSafetensors(filepath.Join(dir, "reference.safetensors"))
	require.NoError(t, err)
	defer ref.Close()

	dLogits := maxAbsDiff(logits.Float64s(), ref.Tensors["logits"].Float64s())
	dLoss := math.Abs(loss.Item() - ref.Tensors["loss"].Item())
	var dParams float64
	for _, p := range m.Store.Params() {
		r, ok := ref.Tensors["after."+p.Name]
		require.True(t, ok, "reference has no parameter %s", p.Name)
		dParams = math.Max(dParams, maxAbsDiff(p.T.Float64s(), r.Float64s()))
	}
	t.Logf("max |Δlogits| %.2e, |Δloss| %.2e (loss %.6f), max |Δparam| after one AdamW step %.2e", dLogits, dLoss, loss.Item(), dParams)
	require.Less(t, dLogits, 1e-4)
	require.Less(t, dLoss, 1e-5)
	// One AdamW step moves every parameter by about lr = 1e-3. Elements whose
	// exact gradient is zero (the key bias: softmax ignores a shift of a score
	// row) carry ~1e-12 rounding noise in both frameworks, which Adam
	// normalises to steps of up to lr·|g|/(|g|+eps) ≈ 1e-7…1e-6; the bound is
	// 0.2% of one step.
	require.Less(t, dParams, 2e-6)
}

func maxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}
