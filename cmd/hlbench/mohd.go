package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/hiddenlab/hiddenlab/stats"

	"github.com/hiddenlab/hiddenlab/models/mohd"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

func init() { suites = append(suites, suite{"mohd", runMoHD}) }

// mohdCase is one model of the mohd suite; the JSON keys are those of the
// PyTorch reference (benchmarks/mohd_train.py).
type mohdCase struct {
	Name    string `json:"name"`
	Vocab   int    `json:"vocab"`
	Context int    `json:"context"`
	Width   int    `json:"width"`
	Layers  int    `json:"layers"`
	Heads   int    `json:"heads"`
	HeadDim int    `json:"head_dim"`
	FFN     int    `json:"ffn"`
	Vanilla bool   `json:"vanilla"`
	Groups  int    `json:"groups"`
	Shared  int    `json:"shared"`
	TopK    int    `json:"topk"`
	Fusion  string `json:"fusion"`
	Path    string `json:"path"`
	Batch   int    `json:"batch"`
	Warmup  int    `json:"warmup"`
	Steps   int    `json:"steps"`
}

// mohdSize is a comparison: a vanilla model and MoHD variants of equal
// activated parameters (brief §7's matched pairs, and the same at width 512).
type mohdSize struct {
	name  string
	goal  float64 // issue 16's bound on gathered ÷ vanilla: 1.5 at width 128, 1.3 at 512
	cases []mohdCase
}

func (c mohdCase) config() mohd.Config {
	cfg := mohd.DefaultConfig()
	cfg.Vocab, cfg.Context, cfg.Width, cfg.Layers, cfg.Heads, cfg.HeadDim, cfg.FFN = c.Vocab, c.Context, c.Width, c.Layers, c.Heads, c.HeadDim, c.FFN
	cfg.Vanilla, cfg.Groups, cfg.Shared, cfg.TopK, cfg.Fusion, cfg.Path = c.Vanilla, c.Groups, c.Shared, c.TopK, c.Fusion, c.Path
	return cfg
}

// mohdSizes: the sweep's pairs (L = 4, T = 128, batch 16: V96m vs C50,
// V128m vs X2) and the same pairs at width 512 (batch 8): a vanilla d = 384
// (d_ff 933) vs C50 with D = 512, and V512m (d_ff 1528) vs X2 with D = 1024;
// MoHD with N = 16, N_s = 6, K = 2, norm scaling, Monarch fusion, head_dim 32.
func mohdSizes() []mohdSize {
	base := mohdCase{Vocab: 256, Context: 128, Layers: 4, HeadDim: 32, Batch: 16, Warmup: 2, Steps: 8, Groups: 16, Shared: 6, TopK: 2, Fusion: "monarch"}
	vanilla := func(name string, width, ffn int) mohdCase {
		c := base
		c.Name, c.Width, c.Heads, c.FFN, c.Vanilla, c.Path = name, width, width/32, ffn, true, "gathered"
		return c
	}
	moe := func(name string, width, heads, ffn int, path, fusion string) mohdCase {
		c := base
		c.Name, c.Width, c.Heads, c.FFN, c.Path, c.Fusion = name, width, heads, ffn, path, fusion
		return c
	}
	big := func(cs ...mohdCase) []mohdCase {
		for i := range cs {
			cs[i].Batch, cs[i].Warmup, cs[i].Steps = 8, 1, 3
		}
		return cs
	}
	return []mohdSize{
		{"sweep C50 (D=128) vs V96m", 1.5, []mohdCase{
			vanilla("V96m", 96, 256), moe("C50 gathered", 128, 4, 352, "gathered", "monarch"),
			moe("C50 gathered, no fusion", 128, 4, 352, "gathered", "off"), moe("C50 masked", 128, 4, 352, "masked", "monarch")}},
		{"sweep X2 (D=256) vs V128m", 1.5, []mohdCase{
			vanilla("V128m", 128, 408), moe("X2 gathered", 256, 4, 352, "gathered", "monarch"),
			moe("X2 gathered, no fusion", 256, 4, 352, "gathered", "off"), moe("X2 masked", 256, 4, 352, "masked", "monarch")}},
		{"width 512: C50 (D=512) vs V384m", 1.3, big(
			vanilla("V384m", 384, 933), moe("C50-512 gathered", 512, 16, 1408, "gathered", "monarch"),
			moe("C50-512 gathered, no fusion", 512, 16, 1408, "gathered", "off"), moe("C50-512 masked", 512, 16, 1408, "masked", "monarch"))},
		{"width 512: X2 (D=1024) vs V512m", 1.3, big(
			vanilla("V512m", 512, 1528), moe("X2-512 gathered", 1024, 16, 1408, "gathered", "monarch"),
			moe("X2-512 gathered, no fusion", 1024, 16, 1408, "gathered", "off"), moe("X2-512 masked", 1024, 16, 1408, "masked", "monarch"))},
	}
}

// flopsPerStep counts a training step's useful FLOPs: 6·tokens times the
// activated non-embedding parameters plus the head, and attention's
// 12·L·T·d_a per token (the gpt suite's count, PaLM's). The masked path computes more (inactive groups as
// zeros); its row counts the same useful FLOPs.
func (c mohdCase) flopsPerStep() float64 {
	mc := c.config()
	tokens := float64(c.Batch * c.Context)
	n := float64(mc.ActiveParams().NonEmbedding()) + float64(c.Vocab*c.Width)
	return 6*n*tokens + 12*float64(c.Layers*c.Context*mc.AttnWidth())*tokens
}

// mohdStep times training steps of one case in this process: cross-entropy
// plus the balance loss, backward, AdamW (lr 3e-4, weight decay 0.1).
func mohdStep(c mohdCase) (float64, error) {
	var stepS float64
	var err error
	torch.RunLocked(func() {
		err = torch.Try(func() {
			torch.ManualSeed(0)
			m, merr := mohd.NewModel(c.config())
			if merr != nil {
				err = merr
				return
			}
			defer m.Close()
			opt, oerr := optim.NewAdamW(&optim.Group{Params: m.Store().Params(), LR: 3e-4, WeightDecay: 0.1})
			if oerr != nil {
				err = oerr
				return
			}
			defer opt.Close()
			b := newFixedBatch(c.Vocab, c.Batch, c.Context)
			defer b.Free()
			step := func() { b.trainStep(m.Forward, m, m.Store(), opt) }
			stepS, _, err = timeSteps(step, c.Warmup, c.Steps)
		})
	})
	return stepS, err
}

// mohdChild times one case (by name) in this process and prints a
// stepResult: for -profile, and for a measurement in a fresh process.
func mohdChild(name string) error {
	for _, size := range mohdSizes() {
		for _, c := range size.cases {
			if c.Name == name {
				s, err := mohdStep(c)
				if err != nil {
					return err
				}
				return json.NewEncoder(os.Stdout).Encode(stepResult{StepS: s, PeakRSS: peakRSS(), Threads: torch.NumThreads(), Torch: torch.Version()})
			}
		}
	}
	return fmt.Errorf("unknown mohd case %q", name)
}

// runMoHD times a training step of MoHD's gathered path against a vanilla
// model of equal activated parameters and against the masked path, at the
// sweep's sizes and at width 512, in Go and in PyTorch eager (the same
// models in benchmarks/mohd_train.py), rounds alternating Go and PyTorch.
func runMoHD(cfg config) error {
	fmt.Printf("MoHD (N = 16, N_s = 6, K = 2, norm scaling, Monarch fusion, balance loss) vs vanilla of equal activated\n")
	fmt.Printf("non-embedding parameters; 4 layers, context 128, byte vocabulary; CE + balance, backward, AdamW.\n")
	fmt.Printf("%d round(s) alternating Go (in process; the cases' order reversed every other round) and PyTorch eager (one process per round); median step time.\n", cfg.rounds)
	for _, size := range mohdSizes() {
		js, _ := json.Marshal(size.cases)
		goS, pyS := map[string][]float64{}, map[string][]float64{}
		torchVersion := ""
		for r := 0; r < cfg.rounds; r++ {
			for _, c := range inRoundOrder(size.cases, r) {
				s, err := mohdStep(c)
				if err != nil {
					return fmt.Errorf("%s: %w", c.Name, err)
				}
				goS[c.Name] = append(goS[c.Name], s)
			}
			var ref struct {
				Torch string             `json:"torch"`
				StepS map[string]float64 `json:"step_s"`
			}
			if err := pytorch(cfg, "benchmarks/mohd_train.py", []string{string(js), strconv.Itoa(cfg.threads)}, &ref, mallocEnv...); err != nil {
				return err
			}
			torchVersion = ref.Torch
			for k, v := range ref.StepS {
				pyS[k] = append(pyS[k], v)
			}
		}
		van := size.cases[0]
		tokens := float64(van.Batch * van.Context)
		peak := matmulPeakOnce()
		fmt.Printf("\n%s: batch %d × %d tokens (PyTorch %s; fp32 matmul peak %.1f GFLOP/s; Go/PyT: Go's throughput over PyTorch's, > 1: Go faster)\n",
			size.name, van.Batch, van.Context, torchVersion, peak)
		fmt.Printf("%-28s %11s %11s %9s %9s %10s %10s %8s %8s %8s %6s\n", "case", "total", "activated", "Go ms", "Go tok/s", "÷ vanilla",
			"PyT ms", "÷ PyT van", "Go/PyT", "Go GF/s", "%peak")
		g0, p0 := median(goS[van.Name]), median(pyS[van.Name])
		for _, c := range size.cases {
			mc := c.config()
			g, p := median(goS[c.Name]), median(pyS[c.Name])
			gf := c.flopsPerStep() / g / 1e9
			fmt.Printf("%-28s %11s %11s %9.1f %9.0f %9.2fx %10.1f %7.2fx %7.2fx %8.1f %5.0f%%\n", c.Name, stats.Thousands(mc.TotalParams().NonEmbedding()),
				stats.Thousands(mc.ActiveParams().NonEmbedding()), 1e3*g, tokens/g, g/g0, 1e3*p, p/p0, p/g, gf, 100*gf/peak)
		}
		gathered := size.cases[1]
		ratio := median(goS[gathered.Name]) / g0
		fmt.Printf("goal: %s within %.1fx of %s: %.2fx (%s); fusion costs %.1f ms, the rest of the overhead over vanilla %.1f ms\n",
			gathered.Name, size.goal, van.Name, ratio, map[bool]string{true: "met", false: "missed"}[ratio <= size.goal],
			1e3*(median(goS[gathered.Name])-median(goS[size.cases[2].Name])), 1e3*(median(goS[size.cases[2].Name])-g0))
	}
	return nil
}
