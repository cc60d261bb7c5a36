package main

import (
	"fmt"
	"strconv"

	"github.com/hiddenlab/hiddenlab/torch"
)

// runCore times per-op overhead: an 8x8 add, and a tiny forward+backward
// (tanh(linear(x[4,8], W[8,8], b)).sum(), backward, grads dropped), against
// the same loops in PyTorch eager.
func runCore(cfg config) error {
	var version string
	var threads int
	goSide := func() (us map[string][]float64) {
		torch.RunLocked(func() { us = coreGo(cfg) })
		return us
	}
	pySide := func() (map[string][]float64, error) {
		var ref struct {
			Torch   string               `json:"torch"`
			Threads int                  `json:"threads"`
			US      map[string][]float64 `json:"us"`
		}
		args := []string{strconv.Itoa(cfg.threads), fmt.Sprint(cfg.seconds), strconv.Itoa(cfg.repeats)}
		err := pytorch(cfg, "benchmarks/torch_core.py", args, &ref)
		version, threads = ref.Torch, ref.Threads
		return ref.US, err
	}
	g, p, err := sideBySide(cfg, goSide, pySide)
	if err != nil {
		return err
	}
	fmt.Printf("PyTorch %s eager, %d thread(s); median of %d rounds x %d repeats, rounds alternating Go and PyTorch\n",
		version, threads, cfg.rounds, cfg.repeats)
	fmt.Printf("(per-op overhead: no FLOPs to speak of, so no %%peak column)\n")
	fmt.Printf("%-20s %12s %16s %12s\n", "case", "Go µs/iter", "PyTorch µs/iter", "Go/PyTorch")
	for _, name := range []string{"add 8x8", "tiny fwd+bwd"} {
		fmt.Printf("%-20s %12.3f %16.3f %11.2fx\n", name, g[name], p[name], g[name]/p[name])
	}
	fmt.Printf("%-20s %12.3f %16s\n", "add 8x8, scope/100", g["add 8x8, scope/100"], "-")
	return nil
}

func coreGo(cfg config) map[string][]float64 {
	torch.ManualSeed(0)
	outer := torch.NewScope()
	defer outer.Close()
	a, b := torch.Randn([]int{8, 8}), torch.Randn([]int{8, 8})
	x := torch.Randn([]int{4, 8})
	w := torch.Randn([]int{8, 8}).SetRequiresGrad(true)
	bias := torch.Randn([]int{8}).SetRequiresGrad(true)
	params := []*torch.Tensor{w, bias}

	// As in Python's loop, each result is released before the next is made.
	add := func(n int) {
		for i := 0; i < n; i++ {
			a.Add(b).Free()
		}
	}
	// Step code instead frees a step's temporaries together when its scope
	// closes; glibc's allocator serves that pattern less well (shown for
	// reference: PyTorch has no equivalent loop).
	addScoped := func(n int) {
		for i := 0; i < n; i += 100 {
			s := torch.NewScope()
			for j := i; j < min(n, i+100); j++ {
				a.Add(b)
			}
			s.Close()
		}
	}
	tiny := func(n int) {
		for i := 0; i < n; i++ {
			s := torch.NewScope()
			torch.Linear(x, w, bias).Tanh().Sum().Backward()
			torch.ZeroGrad(params, true)
			s.Close()
		}
	}
	return map[string][]float64{"add 8x8": measure(cfg, add), "add 8x8, scope/100": measure(cfg, addScoped), "tiny fwd+bwd": measure(cfg, tiny)}
}
