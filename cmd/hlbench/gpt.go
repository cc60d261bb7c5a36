package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// gptSize is one benchmark configuration; the JSON keys are those of the
// PyTorch reference (torch/nn/testdata/gpt_reference.py).
type gptSize struct {
	Name             string  `json:"name"`
	Vocab            int     `json:"vocab"`
	Width            int     `json:"width"`
	Layers           int     `json:"layers"`
	Heads            int     `json:"heads"`
	Context          int     `json:"context"`
	Batch            int     `json:"batch"`
	MLPRatio         float64 `json:"mlp_ratio"`
	Activation       string  `json:"activation"`
	TiedHead         bool    `json:"tied_head"`
	Positions        string  `json:"positions"`
	RotaryDims       int     `json:"rotary_dims"`
	RotaryBase       float64 `json:"rotary_base"`
	ParallelResidual bool    `json:"parallel_residual"`
	Norm             string  `json:"norm"`
	NormEps          float64 `json:"norm_eps"`
	NoBias           bool    `json:"no_bias"`
	Warmup           int     `json:"-"`
	Steps            int     `json:"-"`
}

// The three sizes of the nn/optim issue: pre-LayerNorm, learned positions,
// GELU MLP 4x, tied head, no dropout, AdamW(lr 3e-4, wd 0.1), fp32.
var gptSizes = []gptSize{
	{Name: "small", Width: 128, Layers: 2, Heads: 2, Context: 64, Batch: 16, Warmup: 10, Steps: 60},
	{Name: "benchmark", Width: 256, Layers: 4, Heads: 4, Context: 128, Batch: 16, Warmup: 3, Steps: 12},
	{Name: "large", Width: 512, Layers: 6, Heads: 8, Context: 256, Batch: 8, Warmup: 1, Steps: 3},
}

func (g *gptSize) fill() {
	g.Vocab, g.MLPRatio, g.Activation, g.TiedHead, g.Positions = 256, 4, "gelu", true, "learned"
	g.RotaryBase, g.Norm, g.NormEps = 10000, "layernorm", 1e-5
}

func (g gptSize) config() nn.GPTConfig {
	return nn.GPTConfig{Vocab: g.Vocab, Context: g.Context, Width: g.Width, Layers: g.Layers, Heads: g.Heads, TiedHead: true}
}

// flopsPerStep is 6·N·tokens for the weights (N without the position table;
// the tied head counts once) plus 12·L·C·T per token for attention.
func (g gptSize) flopsPerStep() float64 {
	C, L, T := float64(g.Width), float64(g.Layers), float64(g.Context)
	n := float64(g.Vocab)*C + L*(12*C*C+13*C) + 2*C
	tokens := float64(g.Batch) * T
	return 6*n*tokens + 12*L*C*T*tokens
}

type stepResult struct {
	StepS   float64 `json:"step_s"`
	PeakRSS int64   `json:"peak_rss"`
	Loss    float64 `json:"loss"`
	Threads int     `json:"threads"`
	Torch   string  `json:"torch"`
}

// gptChild trains one size in this process and prints a stepResult.
func gptChild(cfg config, name string) error {
	var g gptSize
	for _, s := range gptSizes {
		if s.Name == name {
			g = s
		}
	}
	if g.Name == "" {
		return fmt.Errorf("unknown gpt size %q", name)
	}
	g.fill()
	var res stepResult
	var err error
	torch.RunLocked(func() {
		err = torch.Try(func() { res = gptTrain(g) })
	})
	if err != nil {
		return err
	}
	res.PeakRSS, res.Threads, res.Torch = peakRSS(), torch.NumThreads(), torch.Version()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func gptTrain(g gptSize) stepResult {
	torch.ManualSeed(0)
	m, err := nn.NewGPT(g.config())
	if err != nil {
		panic(err)
	}
	defer m.Close()
	opt, err := optim.NewAdamW(&optim.Group{Params: m.Store.Params(), LR: 3e-4, WeightDecay: 0.1})
	if err != nil {
		panic(err)
	}
	defer opt.Close()
	b := newFixedBatch(g.Vocab, g.Batch, g.Context)
	defer b.Free()
	forward := func(ids *torch.Tensor) *torch.Tensor { return m.Forward(ids, nil) }
	var loss float64
	step := func() { loss = b.trainStep(forward, nil, m.Store, opt) }
	wall, _, err := timeSteps(step, g.Warmup, g.Steps)
	if err != nil {
		panic(err)
	}
	return stepResult{StepS: wall, Loss: loss}
}

// peakRSS reads VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// measuredPeak is matmulPeak, measured once per run (every suite's %peak
// column divides by the same number); blasPeak and ownPeak are its two parts.
var measuredPeak, blasPeak, ownPeak float64

func matmulPeakOnce() float64 {
	if measuredPeak == 0 {
		blasPeak, ownPeak = matmulPeak()
		measuredPeak = max(blasPeak, ownPeak)
	}
	return measuredPeak
}

// peakLine says what the peak is made of, for the suites' headers.
func peakLine() string {
	return fmt.Sprintf("fp32 matmul peak (1024³, best of 5): %.1f GFLOP/s at %d thread(s), the faster of libtorch's BLAS (bmm: %.1f) and torch.Linear (%s: %.1f)",
		matmulPeakOnce(), torch.NumThreads(), blasPeak, linearKernel(), ownPeak)
}

// linearKernel names what runs torch.Linear's float32 products on this CPU.
func linearKernel() string {
	if torch.AVX512() {
		return "the shim's own AVX-512 GEMM"
	}
	return "libtorch's"
}

// matmulPeak measures fp32 GFLOP/s of a 1024³ product at the current thread
// count two ways: a batched product of one (Bmm, which libtorch hands to its
// BLAS; Matmul by a matrix is the shim's GEMM where Linear is) and
// torch.Linear(a, b, nil), which on AVX-512 CPUs is the shim's own GEMM (the
// kernel every nn.Linear of the models runs on). Where the BLAS runs AVX2
// kernels on an AVX-512 CPU, as here, the second is the machine's peak.
func matmulPeak() (blas, own float64) {
	torch.RunLocked(func() {
		s := torch.NewScope()
		defer s.Close()
		a, b := torch.Randn([]int{1, 1024, 1024}), torch.Randn([]int{1, 1024, 1024})
		best := func(f func()) float64 {
			for i := 0; i < 3; i++ {
				f()
			}
			g := 0.0
			for r := 0; r < 5; r++ {
				t0 := time.Now()
				for i := 0; i < 5; i++ {
					f()
				}
				g = max(g, 5*2*1024*1024*1024/time.Since(t0).Seconds()/1e9)
			}
			return g
		}
		blas = best(func() { a.Bmm(b).Free() })
		own = best(func() { torch.Linear(a.Squeeze(0), b.Squeeze(0), nil).Free() })
	})
	return blas, own
}

func runGPT(cfg config) error {
	peak := matmulPeakOnce()
	fmt.Println(peakLine())
	fmt.Printf("each side trains in its own process; %d round(s) alternate Go and PyTorch; median step time.\n", cfg.rounds)
	fmt.Printf("PyTorch runs twice: with glibc's default malloc, and with the malloc thresholds hiddenlab sets for itself.\n")
	fmt.Printf("%-10s %10s %10s %7s %10s %7s %8s %8s %6s %8s %8s\n", "size", "Go tok/s", "PyT tok/s", "Go/PyT",
		"PyT* tok/s", "Go/PyT*", "Go GF/s", "PyT GF/s", "%peak", "Go RSS", "PyT RSS")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, g := range gptSizes {
		g.fill()
		var goS, pyS, pyTunedS []float64
		var goR, pyR, pyTR stepResult
		js, _ := json.Marshal(g)
		pyArgs := []string{string(js), strconv.Itoa(cfg.threads), strconv.Itoa(g.Warmup), strconv.Itoa(g.Steps)}
		for r := 0; r < cfg.rounds; r++ {
			out, err := exec.Command(self, "-child", "gpt:"+g.Name, "-threads", strconv.Itoa(cfg.threads)).Output()
			if err != nil {
				return fmt.Errorf("go %s: %w", g.Name, err)
			}
			if err := json.Unmarshal(out, &goR); err != nil {
				return fmt.Errorf("go %s: %w (%s)", g.Name, err, out)
			}
			goS = append(goS, goR.StepS)
			if err := pytorch(cfg, "benchmarks/gpt_train.py", pyArgs, &pyR); err != nil {
				return err
			}
			pyS = append(pyS, pyR.StepS)
			if err := pytorch(cfg, "benchmarks/gpt_train.py", pyArgs, &pyTR, mallocEnv...); err != nil {
				return err
			}
			pyTunedS = append(pyTunedS, pyTR.StepS)
		}
		tokens := float64(g.Batch * g.Context)
		gs, ps, pts := median(goS), median(pyS), median(pyTunedS)
		goGF, pyGF := g.flopsPerStep()/gs/1e9, g.flopsPerStep()/ps/1e9
		fmt.Printf("%-10s %10.0f %10.0f %6.2fx %10.0f %6.2fx %8.1f %8.1f %5.0f%% %7.0fM %7.0fM\n", g.Name, tokens/gs, tokens/ps, ps/gs,
			tokens/pts, pts/gs, goGF, pyGF, 100*goGF/peak, float64(goR.PeakRSS)/(1<<20), float64(pyR.PeakRSS)/(1<<20))
	}
	return nil
}
