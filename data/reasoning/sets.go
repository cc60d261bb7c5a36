package reasoning

import (
	"fmt"
	"math/rand/v2"
)

// Stream tags keep the random streams of SFT data, RL prompts and
// evaluation sets apart even when callers pass the same seed.
const (
	streamSFT     uint64 = 0x5346_545f_6d69_7800 // "SFT_mix"
	streamPrompts uint64 = 0x524c_5f70_726f_6d00 // "RL_prom"
	streamEval    uint64 = 0x4556_414c_5f73_6500 // "EVAL_se"
)

// heldOutBuckets sets the held-out share: one prompt hash in heldOutBuckets.
const heldOutBuckets = 8

// maxRejects bounds rejection sampling; the held-out share is 1/8, so
// reaching it means the prompt space itself is degenerate.
const maxRejects = 1 << 16

// mix64 is the splitmix64 finaliser: a bijection that scatters nearby inputs.
func mix64(x uint64) uint64 {
	x += 0x9e37_79b9_7f4a_7c15
	x = (x ^ x>>30) * 0xbf58_476d_1ce4_e5b9
	x = (x ^ x>>27) * 0x94d0_49bb_1331_11eb
	return x ^ x>>31
}

// newRand returns the PCG stream for (seed, stream, index). Nearby seeds and
// indices give unrelated streams.
func newRand(seed, stream, index uint64) *rand.Rand {
	hi := mix64(seed ^ mix64(stream))
	lo := mix64(index ^ mix64(hi))
	return rand.New(rand.NewPCG(hi, lo))
}

// HeldOut reports whether prompt belongs to the held-out partition used by
// [EvalSet]: a fixed FNV-1a hash of its token ids, finalised with
// splitmix64, is 0 mod 8. Training data ([SFTMix.Batch], [Prompts]) never
// contains a held-out prompt.
func HeldOut(prompt []int32) bool {
	h := uint64(14695981039346656037)
	for _, id := range prompt {
		h ^= uint64(uint32(id))
		h *= 1099511628211
	}
	return mix64(h)%heldOutBuckets == 0
}

// drawSplit draws problems with k steps from r until one whose prompt is
// held out (heldOut) or not (!heldOut).
func drawSplit(r *rand.Rand, task Task, k int, trace Trace, heldOut bool) (Problem, error) {
	for range maxRejects {
		p := task.Generate(r, k, trace)
		if HeldOut(p.Prompt) == heldOut {
			return p, nil
		}
	}
	return Problem{}, fmt.Errorf("reasoning: no %s prompt with K=%d in %d draws (held out: %v)", task, k, maxRejects, heldOut)
}

// Prompts returns n RL training problems of task with K uniform in ks, with
// full-trace targets for reference. It is a deterministic function of its
// arguments; nearby seeds give unrelated streams. Held-out prompts are
// never returned.
func Prompts(seed uint64, n int, task Task, ks KRange) ([]Problem, error) {
	if err := task.valid(); err != nil {
		return nil, err
	}
	if err := ks.Validate(); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("reasoning: negative prompt count %d", n)
	}
	r := newRand(seed, streamPrompts^uint64(task), 0)
	out := make([]Problem, n)
	for i := range out {
		p, err := drawSplit(r, task, ks.draw(r), TraceFull, false)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// EvalConfig sizes a held-out evaluation set.
type EvalConfig struct {
	Seed uint64
	K    KRange // chain lengths to cover
	PerK int    // problems per K
}

// DefaultEval is the §8.1 evaluation set: 1,000 problems for each K in 2..10
// (K = 9, 10 beyond the SFT range test length generalisation).
var DefaultEval = EvalConfig{Seed: 0, K: KRange{2, 10}, PerK: 1000}

// EvalSet returns cfg.PerK held-out problems of task for each K in cfg.K,
// ordered by K, with full-trace targets. The problems for one K depend only
// on (cfg.Seed, task, K), so sets with different ranges or sizes agree on
// their common prefix. Prompts are drawn i.i.d. from the held-out partition
// ([HeldOut]), so they never occur in training data. For very small K a
// set repeats prompts: ModChain K = 2 has 1,070 held-out prompts, and the
// default 1,000 draws hold 646 distinct ones (984 at K = 3, all from K = 4).
func EvalSet(task Task, cfg EvalConfig) ([]Problem, error) {
	if err := task.valid(); err != nil {
		return nil, err
	}
	if err := cfg.K.Validate(); err != nil {
		return nil, err
	}
	if cfg.PerK < 0 {
		return nil, fmt.Errorf("reasoning: negative eval size %d per K", cfg.PerK)
	}
	out := make([]Problem, 0, cfg.PerK*(cfg.K.Max-cfg.K.Min+1))
	for k := cfg.K.Min; k <= cfg.K.Max; k++ {
		r := newRand(cfg.Seed, streamEval^uint64(task), uint64(k))
		for range cfg.PerK {
			p, err := drawSplit(r, task, k, TraceFull, true)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}
