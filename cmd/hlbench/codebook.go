package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"syscall"

	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

func init() { suites = append(suites, suite{"codebook", runCodebook}) }

// codebookBench is the codebook suite's workload: the benchmark GPT (width
// 256, 4 layers, 4 heads, context 128, batch 16) with a group codebook per
// attention head at attn_preproj and a codebook at the MLP output of every
// layer, C codes per codebook, k selected; the PyTorch side is
// benchmarks/codebook_train.py, which reads the same JSON.
type codebookBench struct {
	gptSize
	Codes  int  `json:"codes"`
	K      int  `json:"k"`
	Enable bool `json:"-"`
	// Reference runs the codebook layers' unfused path (Go only).
	Reference bool `json:"-"`
}

// codebookCases are the measurements of each side: the model with
// codebooks and without; Go also times its unfused reference path.
var codebookCases = []string{"codebook", "vanilla"}
var codebookGoCases = []string{"codebook", "vanilla", "codebook-ref"}

func newCodebookBench(withCodebooks bool) codebookBench {
	g := gptSizes[1] // benchmark
	g.fill()
	g.Warmup, g.Steps = 2, 8
	return codebookBench{gptSize: g, Codes: 1024, K: 8, Enable: withCodebooks}
}

// codebookResult is a child's measurement: a stepResult plus the process's
// CPU seconds per step, which a loaded machine disturbs less than the wall
// time.
type codebookResult struct {
	stepResult
	CPUS float64 `json:"cpu_s"`
	// CodebookParams counts the codebooks' trainable parameters (codes
	// and their LayerNorms), for the memory suite's allowance.
	CodebookParams int `json:"codebook_params"`
}

// cpuSeconds is the process's user plus system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// minorFaults is the process's minor page faults so far (first touches of
// fresh pages: what allocations that glibc maps anew cost).
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

// codebookChild trains one case in this process and prints a codebookResult.
func codebookChild(cfg config, name string) error {
	var b codebookBench
	switch name {
	case "codebook":
		b = newCodebookBench(true)
	case "codebook-ref":
		b = newCodebookBench(true)
		b.Reference = true
	case "vanilla":
		b = newCodebookBench(false)
	case "memory-codebook", "memory-vanilla":
		b = newMemoryBench(name == "memory-codebook")
	default:
		return fmt.Errorf("unknown codebook case %q (want codebook, codebook-ref, vanilla, memory-codebook or memory-vanilla)", name)
	}
	var res codebookResult
	var err, trainErr error
	torch.RunLocked(func() {
		err = torch.Try(func() { res, trainErr = codebookTrain(b) })
	})
	if err == nil {
		err = trainErr
	}
	if err != nil {
		return err
	}
	res.PeakRSS, res.Threads, res.Torch = peakRSS(), torch.NumThreads(), torch.Version()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// flopsPerStep is the GPT's training FLOPs plus, with codebooks, the
// scores of every codebook layer (2·tokens·D·C each, forward only: the
// selection has no backward).
func (b codebookBench) flopsPerStep(withCodebooks bool) float64 {
	f := b.gptSize.flopsPerStep()
	if withCodebooks {
		f += 2 * float64(b.Layers) * 2 * float64(b.Batch*b.Context) * float64(b.Width) * float64(b.Codes)
	}
	return f
}

// codebookTrain times training steps: cross-entropy plus every codebook's
// reconstruction loss, AdamW with the codebooks in their own group (lr 3e-4,
// no weight decay) and the model's parameters in another (lr 3e-4, weight
// decay 0.1), as the codebook family trains.
func codebookTrain(b codebookBench) (codebookResult, error) {
	torch.ManualSeed(0)
	g, err := nn.NewGPT(b.config())
	if err != nil {
		return codebookResult{}, err
	}
	var at []string
	if b.Enable {
		at = []string{"attn_preproj", "mlp"}
	}
	m, err := codebook.NewModel(g, codebook.Settings{At: at, Codes: b.Codes, K: b.K, ModelLRFactor: 1})
	if err != nil {
		g.Close()
		return codebookResult{}, err
	}
	defer m.Close()
	for _, l := range m.Layers {
		l.Reference = b.Reference
	}
	var codes, model []*nn.Param
	for _, p := range m.Store().Params() {
		switch {
		case !p.T.RequiresGrad():
		case codebook.IsCodebookParam(p.Name):
			codes = append(codes, p)
		default:
			model = append(model, p)
		}
	}
	groups := []*optim.Group{{Name: "model", Params: model, LR: 3e-4, WeightDecay: 0.1}}
	if len(codes) > 0 {
		groups = append(groups, &optim.Group{Name: "codebook", Params: codes, LR: 3e-4})
	}
	opt, err := optim.NewAdamW(groups...)
	if err != nil {
		return codebookResult{}, err
	}
	defer opt.Close()
	batch := newFixedBatch(b.Vocab, b.Batch, b.Context)
	defer batch.Free()
	var loss float64
	step := func() { loss = batch.trainStep(m.Forward, m, m.Store(), opt) }
	wall, cpu, err := timeSteps(step, b.Warmup, b.Steps)
	if err != nil {
		return codebookResult{}, err
	}
	params := 0
	for _, p := range codes {
		params += p.T.Numel()
	}
	return codebookResult{stepResult{StepS: wall, Loss: loss}, cpu, params}, nil
}

// runCodebook times a training step of the benchmark GPT with codebooks
// against the same GPT without them and against the same codebook model in
// PyTorch eager (with and without codebooks), each measurement in its own
// process, rounds alternating Go and PyTorch. It reports the median wall and
// CPU time per step and the goals' ratios on both.
func runCodebook(cfg config) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := newCodebookBench(true)
	fmt.Printf("benchmark GPT (width %d, %d layers, %d heads, context %d, batch %d) + group codebooks at attn_preproj\n",
		b.Width, b.Layers, b.Heads, b.Context, b.Batch)
	fmt.Printf("and a codebook at the MLP output of every layer, C = %d per codebook, k = %d; CE + MSE, AdamW.\n", b.Codes, b.K)
	fmt.Printf("each measurement in its own process (%d timed steps after %d warm-up); %d round(s) alternate Go and PyTorch, the cases' order reversed every other round; medians over rounds.\n",
		b.Steps, b.Warmup, cfg.rounds)
	js, _ := json.Marshal(b)
	wall, cpu := map[string][]float64{}, map[string][]float64{}
	rss := map[string]int64{}
	add := func(name string, res codebookResult) {
		wall[name] = append(wall[name], res.StepS)
		cpu[name] = append(cpu[name], res.CPUS)
		rss[name] = res.PeakRSS
	}
	for r := 0; r < cfg.rounds; r++ {
		for _, c := range inRoundOrder(codebookGoCases, r) {
			var res codebookResult
			out, err := exec.Command(self, "-child", "codebook:"+c, "-threads", strconv.Itoa(cfg.threads)).Output()
			if err != nil {
				return fmt.Errorf("go %s: %w", c, err)
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("go %s: %w (%s)", c, err, out)
			}
			add("go "+c, res)
		}
		for _, c := range inRoundOrder(codebookCases, r) {
			var res codebookResult
			args := []string{string(js), strconv.Itoa(cfg.threads), strconv.Itoa(b.Warmup), strconv.Itoa(b.Steps),
				strconv.FormatBool(c == "codebook")}
			if err := pytorch(cfg, "benchmarks/codebook_train.py", args, &res, mallocEnv...); err != nil {
				return err
			}
			add("pytorch "+c, res)
		}
	}
	w, c := map[string]float64{}, map[string]float64{}
	for k := range wall {
		w[k], c[k] = median(wall[k]), median(cpu[k])
	}
	tokens := float64(b.Batch * b.Context)
	peak := matmulPeakOnce()
	fmt.Printf("%s; GF/s counts the GPT's FLOPs plus the codebooks' scores (2·tokens·D·C per codebook layer)\n", peakLine())
	fmt.Printf("%-16s %9s %9s %8s %9s %9s %8s %7s %8s %8s\n", "case", "Go ms", "PyT ms", "Go/PyT", "Go CPU ms", "PyT CPU", "Go GF/s", "%peak", "Go RSS", "PyT RSS")
	for _, k := range []string{"codebook", "codebook-ref", "vanilla"} {
		g, gc, flops := w["go "+k], c["go "+k], b.flopsPerStep(k != "vanilla")
		pk := "pytorch " + k
		if k == "codebook-ref" { // PyTorch runs today's algorithm only
			pk = "pytorch codebook"
		}
		p, pc := w[pk], c[pk]
		fmt.Printf("%-16s %9.1f %9.1f %7.2fx %9.1f %9.1f %8.1f %6.0f%% %7.0fM %7.0fM\n", k, 1e3*g, 1e3*p, p/g, 1e3*gc, 1e3*pc,
			flops/g/1e9, 100*flops/g/1e9/peak, float64(rss["go "+k])/(1<<20), float64(rss[pk])/(1<<20))
	}
	fmt.Printf("(Go/PyT: Go's throughput over PyTorch's, > 1: Go faster. codebook: the fused op, the default; codebook-ref: the\n")
	fmt.Printf("unfused reference path; PyTorch runs today's algorithm,\n")
	fmt.Printf("benchmarks/codebook_train.py, in both codebook rows. %.0f tokens per step. CPU ms is the process's user + system\n", tokens)
	fmt.Printf("time per step: on a shared machine it is disturbed less than the wall time.)\n")
	for _, m := range []struct {
		name string
		v    map[string]float64
	}{{"wall", w}, {"CPU", c}} {
		overhead := m.v["go codebook"] / m.v["go vanilla"]
		vsPy := m.v["pytorch codebook"] / m.v["go codebook"]
		fmt.Printf("%-4s  Go codebook / Go vanilla: %.2fx (goal ≤ 1.25x: %s; unfused %.2fx); PyTorch codebook / Go codebook: %.2fx (goal ≥ 1.2x: %s); PyTorch codebook / PyTorch vanilla: %.2fx\n",
			m.name, overhead, verdict(overhead <= 1.25), m.v["go codebook-ref"]/m.v["go vanilla"], vsPy, verdict(vsPy >= 1.2), m.v["pytorch codebook"]/m.v["pytorch vanilla"])
	}
	// The host's speed drifts between runs by more than the goal's margin;
	// each round's Go codebook and vanilla run back to back, so their
	// ratio within a round is disturbed less than the ratio of medians.
	for _, m := range []struct {
		name string
		v    map[string][]float64
	}{{"wall", wall}, {"CPU", cpu}} {
		var rs []float64
		for r := range m.v["go codebook"] {
			rs = append(rs, m.v["go codebook"][r]/m.v["go vanilla"][r])
		}
		sort.Float64s(rs)
		fmt.Printf("%-4s  each round's Go codebook / Go vanilla (run back to back): median %.2fx [%.2f, %.2f] over %d round(s) (goal ≤ 1.25x: %s)\n",
			m.name, median(rs), rs[0], rs[len(rs)-1], len(rs), verdict(median(rs) <= 1.25))
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
