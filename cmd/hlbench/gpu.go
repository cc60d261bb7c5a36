package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// The GPU suite: a GPT-2-small-shaped model (width 768, 12 layers, 12 heads,
// context 1024, batch 16, bf16 autocast) in Go and in PyTorch eager side by
// side, with MFU against the card's peak; and a codebook model at the
// paper's TokFSM scale (4 layers, width 128, C = 10k per codebook, k = 1,
// batch 1024). It needs a CUDA build of the shim (LD_LIBRARY_PATH=build/cuda).

var gpt2Small = gptSize{Name: "gpt2-small", Width: 768, Layers: 12, Heads: 12, Context: 1024, Batch: 16, Warmup: 5, Steps: 20}

// bf16 dense peak FLOP/s by device name (vendor data sheets).
var peaks = []struct {
	match string
	flops float64
}{{"H200", 989e12}, {"H100", 989e12}, {"A100", 312e12}, {"L40S", 362e12}, {"A10", 125e12}, {"4090", 165e12}}

func peakOf(name string) float64 {
	for _, p := range peaks {
		if strings.Contains(name, p.match) {
			return p.flops
		}
	}
	return 0
}

type gpuResult struct {
	StepS   float64 `json:"step_s"`
	PeakGPU int64   `json:"peak_gpu"`
	Loss    float64 `json:"loss"`
}

func runGPU(cfg config) error {
	if torch.CUDADeviceCount() == 0 {
		fmt.Println("skipped: no CUDA device (run with a CUDA build of the shim: LD_LIBRARY_PATH=build/cuda; see scripts/gpu-check.sh)")
		return nil
	}
	info, err := torch.CUDADeviceInfo(0)
	if err != nil {
		return err
	}
	peak := peakOf(info.Name)
	fmt.Printf("device: %s (%.0f GiB); bf16 dense peak %.0f TFLOP/s\n", info.Name, float64(info.TotalMemory)/(1<<30), peak/1e12)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	g := gpt2Small
	g.fill()
	g.Vocab = 50304
	var goS, pyS []float64
	var goR, pyR gpuResult
	js, _ := json.Marshal(struct {
		gptSize
		Device    string `json:"device"`
		Precision string `json:"precision"`
	}{g, "cuda", "bf16"})
	for r := 0; r < cfg.rounds; r++ {
		out, err := exec.Command(self, "-child", "gpu:gpt", "-threads", strconv.Itoa(cfg.threads)).Output()
		if err != nil {
			return fmt.Errorf("go gpt2-small: %w", err)
		}
		if err := json.Unmarshal(out, &goR); err != nil {
			return fmt.Errorf("go gpt2-small: %w (%s)", err, out)
		}
		goS = append(goS, goR.StepS)
		var ref struct {
			gpuResult
			Torch     string `json:"torch"`
			Optimizer string `json:"optimizer"`
		}
		if err := pytorch(cfg, "benchmarks/gpt_train.py", []string{string(js), strconv.Itoa(cfg.threads), strconv.Itoa(g.Warmup), strconv.Itoa(g.Steps)}, &ref); err != nil {
			return err
		}
		pyR = ref.gpuResult
		pyS = append(pyS, ref.StepS)
		if r == 0 {
			fmt.Printf("PyTorch %s eager, AdamW %s, autocast bf16, TF32 on\n", ref.Torch, ref.Optimizer)
		}
	}
	tokens := float64(g.Batch * g.Context)
	gs, ps := median(goS), median(pyS)
	flops := g.flopsPerStep()
	mfu := func(s float64) string {
		if peak == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%%", 100*flops/s/peak)
	}
	fmt.Printf("%-12s %12s %12s %8s %8s %8s %10s %10s\n", "model", "Go tok/s", "PyT tok/s", "Go/PyT", "Go MFU", "PyT MFU", "Go mem", "PyT mem")
	fmt.Printf("%-12s %12.0f %12.0f %7.2fx %8s %8s %9.1fG %9.1fG\n", g.Name, tokens/gs, tokens/ps, ps/gs, mfu(gs), mfu(ps),
		float64(goR.PeakGPU)/(1<<30), float64(pyR.PeakGPU)/(1<<30))

	out, err := exec.Command(self, "-child", "gpu:codebook", "-threads", strconv.Itoa(cfg.threads)).Output()
	if err != nil {
		return fmt.Errorf("go codebook: %w", err)
	}
	var cb gpuResult
	if err := json.Unmarshal(out, &cb); err != nil {
		return fmt.Errorf("go codebook: %w (%s)", err, out)
	}
	fmt.Printf("codebook, paper TokFSM scale (4 layers, width 128, attn_preproj ×4 + mlp, C = 10000, k = 1, batch 1024 × 128): %.2f steps/s, peak GPU memory %.1f GiB\n",
		1/cb.StepS, float64(cb.PeakGPU)/(1<<30))
	return nil
}

// gpuChild runs one GPU measurement in this process.
func gpuChild(cfg config, name string) error {
	var res gpuResult
	var err error
	torch.RunLocked(func() {
		err = torch.Try(func() {
			if e := torch.SetTF32(true); e != nil {
				panic(e)
			}
			switch name {
			case "gpt":
				g := gpt2Small
				g.fill()
				g.Vocab = 50304
				res = gpuTrain(g.config(), g.Batch, g.Context, g.Warmup, g.Steps, nil)
			case "codebook":
				c := nn.GPTConfig{Vocab: 11, Context: 128, Width: 128, Layers: 4, Heads: 4, Positions: "rotary", RotaryDims: 8, ParallelResidual: true}
				s := codebook.Settings{At: []string{"attn_preproj", "mlp"}, Codes: 10000, K: 1, ModelLRFactor: 1}
				res = gpuTrain(c, 1024, 128, 3, 10, &s)
			default:
				panic(fmt.Errorf("unknown gpu measurement %q", name))
			}
		})
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// gpuTrain times train steps of a GPT (with codebooks when s is set) on
// cuda:0 under bf16 autocast.
func gpuTrain(c nn.GPTConfig, batch, T, warmup, steps int, s *codebook.Settings) gpuResult {
	torch.ManualSeed(0)
	dev := torch.CUDA(0)
	g, err := nn.NewGPT(c)
	if err != nil {
		panic(err)
	}
	forward := func(x *torch.Tensor) *torch.Tensor { return g.Forward(x, nil) }
	var aux func() *torch.Tensor
	if s != nil {
		m, err := codebook.NewModel(g, *s)
		if err != nil {
			panic(err)
		}
		aux = func() *torch.Tensor { l, _ := m.AuxLoss(); return l }
	}
	defer g.Close()
	if err := g.Store.To(dev); err != nil {
		panic(err)
	}
	opt, err := optim.NewAdamW(&optim.Group{Params: g.Store.Params(), LR: 3e-4, WeightDecay: 0.1})
	if err != nil {
		panic(err)
	}
	defer opt.Close()
	ids := torch.RandInt(0, c.Vocab, []int{batch, T}, dev).Retain()
	defer ids.Free()
	var last *torch.Tensor
	step := func() {
		sc := torch.NewScope()
		var loss *torch.Tensor
		torch.Autocast(torch.DeviceCUDA, torch.BFloat16, func() {
			loss = nn.LMLoss(forward(ids), ids, -100)
			if aux != nil {
				loss = loss.Add(aux())
			}
		})
		g.Store.ZeroGrad(true)
		loss.Backward()
		opt.Step(1)
		last.Free()
		last = loss.Detach().Retain()
		sc.Close()
	}
	for i := 0; i < warmup; i++ {
		step()
	}
	torch.Synchronize(dev)
	torch.CUDAResetPeak(0)
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		step()
	}
	loss := last.Item() // waits for the GPU
	elapsed := time.Since(t0).Seconds()
	last.Free()
	mem, _ := torch.CUDAMemory(0)
	return gpuResult{StepS: elapsed / float64(steps), PeakGPU: mem.PeakAllocated, Loss: loss}
}
