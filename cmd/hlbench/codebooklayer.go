package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

func init() { suites = append(suites, suite{"codebook-layer", runCodebookLayer}) }

// layerShape is one codebook layer of the codebook suite's model, alone:
// N tokens of width D in G codebooks of C codes, k selected.
type layerShape struct {
	Name string `json:"name"`
	N    int    `json:"N"`
	D    int    `json:"D"`
	G    int    `json:"G"`
	C    int    `json:"C"`
	K    int    `json:"k"`
}

// codebookLayerShapes are the two layers of every block in the codebook
// suite (2,048 tokens a step): the MLP codebook (G = 1, d = 256) and the
// group codebook at attn_preproj (one per head: G = 4, d = 64).
var codebookLayerShapes = []layerShape{
	{"mlp (G=1, d=256)", 2048, 256, 1, 1024, 8},
	{"attn_preproj (G=4, d=64)", 2048, 256, 4, 1024, 8},
}

// runCodebookLayer times one codebook layer's forward and backward alone, at
// the codebook suite's two shapes, to show where the codebook model's extra
// time goes: the exact score GEMM by the BLAS (the op's own kernel beats it
// on AVX-512 CPUs), the fused op (torch.CodebookQuantize) alone, the whole
// layer on the fused op (LayerNorm, op, code counts) and on the unfused
// reference path, against PyTorch eager's layer (benchmarks/codebook_layer.py,
// today's algorithm, with the malloc thresholds hiddenlab sets for itself, as
// in the codebook suite).
// Milliseconds per forward + backward, median of cfg.repeats × 3 calls per
// round, rounds alternating Go and PyTorch.
func runCodebookLayer(cfg config) error {
	js, _ := json.Marshal(codebookLayerShapes)
	reps := 3 * cfg.repeats
	goMS, pyMS := map[string][]float64{}, map[string][]float64{}
	var version string
	for r := 0; r < cfg.rounds; r++ {
		var err error
		torch.RunLocked(func() {
			for _, s := range codebookLayerShapes {
				var ms map[string][]float64
				var layerErr error
				if err = torch.Try(func() { ms, layerErr = codebookLayerGo(s, reps) }); err == nil {
					err = layerErr
				}
				if err != nil {
					return
				}
				for k, v := range ms {
					goMS[s.Name+"/"+k] = append(goMS[s.Name+"/"+k], v...)
				}
			}
		})
		if err != nil {
			return err
		}
		var ref struct {
			Torch string             `json:"torch"`
			MS    map[string]float64 `json:"ms"`
		}
		if err := pytorch(cfg, "benchmarks/codebook_layer.py", []string{string(js), strconv.Itoa(cfg.threads), strconv.Itoa(reps)}, &ref, mallocEnv...); err != nil {
			return err
		}
		version = ref.Torch
		for k, v := range ref.MS {
			pyMS[k] = append(pyMS[k], v)
		}
	}
	peak := matmulPeakOnce() // GFLOP/s
	fmt.Printf("one codebook layer, forward + backward (loss sum(out·w) + mse), training mode; N = 2048 tokens, C = 1024, k = 8\n")
	fmt.Printf("PyTorch %s, %d thread(s), %d round(s) alternating Go and PyTorch; median ms per call; fp32 matmul peak %.1f GFLOP/s\n",
		version, torch.NumThreads(), cfg.rounds, peak)
	fmt.Printf("%-26s %9s %9s %9s %9s %9s %9s %8s %9s\n", "shape", "GEMM", "op fwd", "op", "layer", "layer-ref", "PyT", "Go/PyT", "GEMM %pk")
	for _, s := range codebookLayerShapes {
		get := func(k string) float64 { return median(goMS[s.Name+"/"+k]) }
		py := median(pyMS[s.Name])
		gemm := get("gemm")
		flops := 2 * float64(s.N) * float64(s.D) * float64(s.C)
		fmt.Printf("%-26s %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %7.2fx %8.0f%%\n", s.Name, gemm, get("op-fwd"), get("op"), get("layer"), get("layer-ref"), py,
			py/get("layer"), 100*flops/(gemm/1e3)/1e9/peak)
	}
	fmt.Printf("(GEMM: the scores a·ĉ of all tokens and codes by the BLAS, one bmm without a graph — on AVX-512 CPUs the op's\n")
	fmt.Printf(" own score kernel (torch.CodebookScores) is faster, so op fwd can come in under it;\n")
	fmt.Printf(" op fwd: torch.CodebookQuantize without a graph (scores, top-k, lookup, MSE); op: its forward + backward;\n")
	fmt.Printf(" layer: codebook.Layer (LayerNorm, fused op, code counts);\n")
	fmt.Printf(" layer-ref: its unfused reference path; PyT: benchmarks/codebook_layer.py; Go/PyT: PyTorch ms over Go layer ms)\n")
	return nil
}

// codebookLayerGo returns the milliseconds of reps calls of each case.
func codebookLayerGo(s layerShape, reps int) (map[string][]float64, error) {
	torch.ManualSeed(0)
	outer := torch.NewScope()
	defer outer.Close()
	store := nn.NewStore()
	l, err := codebook.NewLayer(store.Root().Sub("cb"), s.D, s.G, s.C, s.K)
	if err != nil {
		return nil, fmt.Errorf("codebook-layer %s: %w", s.Name, err)
	}
	defer l.Close()
	x := torch.Randn([]int{s.N, s.D}).SetRequiresGrad(true)
	w := torch.Randn([]int{s.N, s.D})
	a := torch.Randn([]int{s.N, s.G, s.D / s.G}).SetRequiresGrad(true)
	aw := w.View(s.N, s.G, s.D/s.G)
	params := []*torch.Tensor{x, a, l.Codes, l.LNW, l.LNB}
	cases := map[string]func(){
		"gemm": func() {
			torch.NoGrad(func() {
				codes := l.Codes
				norm := codes.Div(codes.NormKeep(2, -1).ClampMin(1e-12))
				a.Transpose(0, 1).Bmm(norm.Transpose(1, 2))
			})
		},
		"op-fwd": func() {
			torch.NoGrad(func() { torch.CodebookQuantize(a, l.Codes, s.K, 0) })
		},
		"op": func() {
			out, _, mse := torch.CodebookQuantize(a, l.Codes, s.K, 0)
			out.Mul(aw).Sum().Add(mse).Backward()
		},
		"layer": func() {
			l.Reference = false
			l.Forward(x).Mul(w).Sum().Add(l.MSE()).Backward()
		},
		"layer-ref": func() {
			l.Reference = true
			l.Forward(x).Mul(w).Sum().Add(l.MSE()).Backward()
		},
	}
	names := make([]string, 0, len(cases))
	for k := range cases {
		names = append(names, k)
	}
	sort.Strings(names)
	out := map[string][]float64{}
	for _, name := range names {
		fn := cases[name]
		call := func() time.Duration {
			sc := torch.NewScope()
			defer sc.Close()
			t0 := time.Now()
			fn()
			d := time.Since(t0)
			torch.ZeroGrad(params, true)
			return d
		}
		call()
		call()
		for i := 0; i < reps; i++ {
			out[name] = append(out[name], float64(call().Nanoseconds())/1e6)
		}
	}
	return out, nil
}
