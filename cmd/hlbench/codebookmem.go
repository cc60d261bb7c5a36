package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
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

// codebookMemChild trains the memory case name ("codebook" or "vanilla")
// and prints its codebookResult (peak RSS included).
func codebookMemChild(name string) error {
	if name != "codebook" && name != "vanilla" {
		return fmt.Errorf("unknown codebook-memory case %q (want codebook or vanilla)", name)
	}
	var res codebookResult
	var err, trainErr error
	torch.RunLocked(func() {
		err = torch.Try(func() { res, trainErr = codebookTrain(newMemoryBench(name == "codebook")) })
	})
	if err == nil {
		err = trainErr
	}
	if err != nil {
		return err
	}
	res.PeakRSS = peakRSS()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// codebookStateBytes is what the codebooks themselves must hold while
// training: each codebook parameter (codes; the LayerNorms' few weights are
// counted too) as fp32 value, gradient and AdamW's two moments.
func codebookStateBytes(b codebookBench) (int64, error) {
	var n int64
	var err error
	torch.RunLocked(func() {
		err = torch.Try(func() {
			torch.ManualSeed(0)
			g, e := nn.NewGPT(b.config())
			if e != nil {
				err = e
				return
			}
			m, e := codebook.NewModel(g, codebook.Settings{At: []string{"attn_preproj", "mlp"}, Codes: b.Codes, K: b.K, ModelLRFactor: 1})
			if e != nil {
				g.Close()
				err = e
				return
			}
			defer m.Close()
			n = int64(m.Store().NumParams(codebook.IsCodebookParam))
		})
	})
	return 4 * 4 * n, err
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
	for _, c := range []string{"vanilla", "codebook"} {
		out, err := exec.Command(self, "-child", "codebook-memory:"+c, "-threads", strconv.Itoa(cfg.threads)).Output()
		if err != nil {
			return fmt.Errorf("go %s: %w", c, err)
		}
		var res codebookResult
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("go %s: %w (%s)", c, err, out)
		}
		rss[c] = res.PeakRSS
	}
	state, err := codebookStateBytes(b)
	if err != nil {
		return err
	}
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
