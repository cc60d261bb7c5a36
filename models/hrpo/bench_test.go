package hrpo

import (
	"syscall"
	"testing"
	"time"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/torch"
)

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

// BenchmarkRLStep times the parts of one RL step of model S (brief §8.3)
// at the study's size, 8 prompts × G = 8, on one thread:
//
//	go test ./models/hrpo -run - -bench RLStep -benchtime 10x
func BenchmarkRLStep(b *testing.B) {
	if err := torch.SetNumThreads(1); err != nil {
		b.Fatal(err)
	}
	torch.RunLocked(func() {
		torch.ManualSeed(1)
		m, err := NewModel(DefaultModel(), HRPO)
		if err != nil {
			b.Fatal(err)
		}
		defer m.GPT.Close()
		ref, err := newReference(m)
		if err != nil {
			b.Fatal(err)
		}
		defer ref.Store.Close()
		problems, err := reasoning.Prompts(1, 8, reasoning.ModChain, reasoning.KRange{Min: 2, Max: 8})
		if err != nil {
			b.Fatal(err)
		}
		var prompts [][]int32
		for _, p := range problems {
			for range 8 {
				prompts = append(prompts, p.Prompt)
			}
		}
		// CPU time of this (locked) thread: with one libtorch thread it is
		// the step's compute, whatever else runs on the machine.
		cpu := func() time.Duration {
			var ru syscall.Rusage
			syscall.Getrusage(rusageThread, &ru)
			return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		var rollout, forward, backward time.Duration
		b.ResetTimer()
		for range b.N {
			torch.WithScope(func() {
				t0 := cpu()
				var ro *Rollout
				torch.NoGrad(func() { ro, err = m.Rollout(prompts, RolloutOptions{MaxNew: 12}) })
				if err != nil {
					b.Fatal(err)
				}
				t1 := cpu()
				logits, _ := m.Forward(ro)
				logp := m.LogProbs(logits, ro.IDs)
				var refLogp *torch.Tensor
				torch.NoGrad(func() { refLogp = m.ReferenceLogProbs(ref, ro) })
				adv := torch.Randn([]int{ro.B})
				loss, _ := PolicyLoss(logp, refLogp, adv, ro.Mask, 0.005)
				t2 := cpu()
				m.GPT.Store.ZeroGrad(true)
				loss.Backward()
				t3 := cpu()
				rollout += t1 - t0
				forward += t2 - t1
				backward += t3 - t2
			})
		}
		n := float64(b.N)
		b.ReportMetric(rollout.Seconds()/n, "rollout_cpu_s")
		b.ReportMetric(forward.Seconds()/n, "forward_cpu_s")
		b.ReportMetric(backward.Seconds()/n, "backward_cpu_s")
	})
}
