package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

func init() { suites = append(suites, suite{"codebook-memory", runCodebookMemory}) }

// memCodes is the paper's codebook size (Tamkin et al. 2023 train with
// C = 10,000 codes per codebook) for the memory goal of issue 16.
const memCodes = 10000

// newMemoryBench is the codebook suite's model at C = memCodes: two
// training steps suffice, peak RSS does not depend on the step count.
func newMemoryBench(withCodebooks bool) codebookBench {
	b := newCodebookBench(withCodebooks)
	b.Codes, b.Warmup, b.Steps = memCodes, 1, 2
	return b
}

// runCodebookMemory checks the memory goal: the peak RSS of the codebook
// model at C = 10,000 (fused op, no tokens × codes score matrix kept for
// the backward) against the vanilla model's plus the codebooks' own
// parameter, gradient and AdamW state; goal ≤ 1.2x. Each case runs in its
// own process, so each peak is its own.
func runCodebookMemory(cfg config) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := newMemoryBench(true)
	rss := map[string]int64{}
	var params int
	for _, c := range []string{"vanilla", "codebook"} {
		out, err := exec.Command(self, "-child", "codebook:memory-"+c, "-threads", strconv.Itoa(cfg.threads)).Output()
		if err != nil {
			return fmt.Errorf("go %s: %w", c, err)
		}
		var res codebookResult
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("go %s: %w (%s)", c, err, out)
		}
		rss[c] = res.PeakRSS
		params += res.CodebookParams
	}
	// Each codebook parameter is held as fp32 value, gradient and AdamW's
	// two moments.
	state := int64(4 * 4 * params)
	allow := rss["vanilla"] + state
	scores := int64(b.Batch*b.Context) * int64(b.Codes) * 4
	mb := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("benchmark GPT (width %d, %d layers, batch %d × %d tokens) with group codebooks at attn_preproj and a codebook at every MLP,\n",
		b.Width, b.Layers, b.Batch, b.Context)
	fmt.Printf("C = %d codes per codebook, k = %d, fused codebook op; peak RSS (VmHWM) of one process per case, %d training steps.\n", b.Codes, b.K, b.Warmup+b.Steps)
	fmt.Printf("%-44s %10.0f MB\n", "vanilla model", mb(rss["vanilla"]))
	fmt.Printf("%-44s %10.0f MB\n", "codebook state (codes: value, grad, Adam m, v)", mb(state))
	fmt.Printf("%-44s %10.0f MB\n", "allowance = vanilla + codebook state", mb(allow))
	fmt.Printf("%-44s %10.0f MB\n", "codebook model", mb(rss["codebook"]))
	fmt.Printf("%-44s %10.3fx  (goal ≤ 1.20x)\n", "codebook model / allowance", float64(rss["codebook"])/float64(allow))
	fmt.Printf("(one tokens × codes fp32 score matrix of one codebook would be %.0f MB; the fused op scores in cache-sized blocks)\n", mb(scores))
	return nil
}
