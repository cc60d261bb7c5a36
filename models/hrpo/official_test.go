package hrpo

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// The tests of this file pin the official code's definitions (HRPO, the
// authors' first commits of 2025-05-26) on small hand-computed cases; see
// the package doc's "Official code" section.

// The loss log-probabilities are at temperature 1 by default, whatever the
// sampling temperature τ (official grpo_compute_loss: log_softmax of the raw
// logits); model.loss_temperature = τ gives the earlier definition.
func TestLossTemperature(t *testing.T) {
	// logits (0, ln 3): p = (1/4, 3/4) at T = 1; at T = 1/2 the logits are
	// (0, 2 ln 3): p = (1/10, 9/10); at T = 2, (0, ln √3): p = (1, √3)/(1+√3).
	for _, c := range []struct {
		name    string
		lossTau float64
		want    [2]float64
	}{
		{"official default (0 means 1)", 0, [2]float64{math.Log(0.25), math.Log(0.75)}},
		{"temperature 1", 1, [2]float64{math.Log(0.25), math.Log(0.75)}},
		{"loss_temperature = τ = 0.5", 0.5, [2]float64{math.Log(0.1), math.Log(0.9)}},
		{"loss_temperature 2", 2, [2]float64{-math.Log(1 + math.Sqrt(3)), math.Log(math.Sqrt(3) / (1 + math.Sqrt(3)))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			torch.WithScope(func() {
				m := &Model{Tau: 0.5, LossTau: c.lossTau}
				logits := torch.FromSlice([]float64{0, math.Log(3), 0, math.Log(3)}, []int{1, 2, 2})
				ids := torch.FromSlice([]int64{0, 1}, []int{1, 2})
				got := m.LogProbs(logits, ids).Float64s()
				require.InDeltaSlice(t, c.want[:], got, 1e-12)
			})
		})
	}
	require.Equal(t, 1.0, DefaultModel().LossTemperature)
}

// The sampling distribution is truncated to the top k tokens after the
// temperature (transformers' TopKLogitsWarper: tokens below the k-th
// largest are removed, ties with it kept); the default k is 50.
func TestSampleLogitsTopK(t *testing.T) {
	logits := []float64{3, 1, 2, 2, 0}
	for _, c := range []struct {
		name string
		tau  float64
		k    int
		kept []bool
	}{
		{"off", 1, 0, []bool{true, true, true, true, true}},
		{"k = 1", 1, 1, []bool{true, false, false, false, false}},
		{"k = 2 keeps the tie at the cut", 1, 2, []bool{true, false, true, true, false}},
		{"k = 4", 0.5, 4, []bool{true, true, true, true, false}},
		{"k = vocabulary", 1, 5, []bool{true, true, true, true, true}},
		{"official 50 > vocabulary", 0.5, 50, []bool{true, true, true, true, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			torch.WithScope(func() {
				m := &Model{Tau: c.tau, TopK: c.k}
				z := m.SampleLogits(torch.FromSlice(logits, []int{1, 5})).Float64s()
				// The kept tokens' probabilities are softmax(z/τ) renormalised over them.
				sum := 0.0
				for i, v := range logits {
					if c.kept[i] {
						sum += math.Exp(v / c.tau)
					}
				}
				for i, v := range z {
					if !c.kept[i] {
						require.True(t, math.IsInf(v, -1), "token %d removed", i)
						continue
					}
					require.InDelta(t, logits[i]/c.tau, v, 1e-12)
				}
				lp := m.SampleLogProbs(torch.FromSlice(logits, []int{1, 1, 5}), torch.FromSlice([]int64{0}, []int{1, 1})).Item()
				require.InDelta(t, 3/c.tau-math.Log(sum), lp, 1e-12)
			})
		})
	}
	require.Equal(t, 50, DefaultModel().TopK)
}

// A rollout truncated to the top k samples only kept tokens, its entropy
// stays finite, and the teacher-forced pass reproduces its sampling
// log-probabilities.
func TestRolloutTopK(t *testing.T) {
	torch.ManualSeed(7)
	c := tinyConfig()
	c.Gate.RMin, c.Gate.RMax = 0.2, 0.6
	c.TopK = 3
	m, err := NewModel(c, HRPO)
	require.NoError(t, err)
	defer m.GPT.Close()
	prompts := [][]int32{{1, 5, 6, 7}, {1, 8, 9}}
	torch.WithScope(func() {
		var ro *Rollout
		torch.NoGrad(func() {
			ro, err = m.Rollout(prompts, RolloutOptions{MaxNew: 8})
			require.NoError(t, err)
		})
		for _, v := range ro.Entropy.Float32s() {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
			require.LessOrEqual(t, float64(v), math.Log(3)+1e-5, "entropy over at most 3 tokens")
		}
		logits, _ := m.Forward(ro)
		require.Less(t, maxAbs(m.SampleLogProbs(logits, ro.IDs).Sub(ro.LogP).Mul(ro.Mask)), 1e-5)
	})
}

// The gate linears start as the official code's (N(0, 0.02²) weights, zero
// biases) by default, or uniform in ±1/√d with model.gate.init: uniform.
func TestGateInitKinds(t *testing.T) {
	const d = 256
	for _, c := range []struct {
		init         GateInit
		wStd, wBound float64 // expected weight std; bound on |w|
		zeroBias     bool
		wantErr      string
	}{
		{GateInitNormal, GateInitStd, 10 * GateInitStd, true, ""},
		{GateInitUniform, 1 / math.Sqrt(3*d), 1 / math.Sqrt(d), false, ""},
		{"xavier", 0, 0, false, `gate init "xavier"`},
	} {
		t.Run(string(c.init), func(t *testing.T) {
			torch.ManualSeed(5)
			s := nn.NewStore()
			defer s.Close()
			g, err := NewGate(s.Root().Sub("gate"), d, 8, 0.99, 0.999, c.init)
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			torch.WithScope(func() {
				for _, w := range []*torch.Tensor{g.Wr, g.Wi} {
					require.InDelta(t, c.wStd, w.Std().Item(), 0.05*c.wStd)
					require.LessOrEqual(t, maxAbs(w), c.wBound)
				}
				for _, b := range []*torch.Tensor{g.Br, g.Bi} {
					if c.zeroBias {
						require.Equal(t, 0.0, maxAbs(b))
					} else {
						require.Greater(t, maxAbs(b), 0.0)
					}
				}
			})
		})
	}
	require.Equal(t, string(GateInitNormal), DefaultModel().Gate.Init)
}

// The logged KL is the official mean over completions of each completion's
// mean k3 (kl); TokenKL (kl_tokens) pools all tokens.
func TestLoggedKL(t *testing.T) {
	// Row 0: one token with ref − logp = ln 2, k3 = 2 − ln 2 − 1; row 1:
	// three tokens with ref = logp, k3 = 0 (a fourth, masked, token differs).
	k := 1 - math.Ln2
	for _, c := range []struct {
		name              string
		B                 int
		logp, ref, mask   []float64
		wantKL, wantToken float64
	}{
		{"unequal lengths", 2, []float64{-2, 0, 0, 0, -1, -1, -1, -3}, []float64{-2 + math.Ln2, 0, 0, 0, -1, -1, -1, -1},
			[]float64{1, 0, 0, 0, 1, 1, 1, 0}, k / 2, k / 4},
		{"equal lengths agree", 2, []float64{-2, -2, -1, -1}, []float64{-2 + math.Ln2, -2, -1, -1 + math.Ln2},
			[]float64{1, 1, 1, 1}, k / 2, k / 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			torch.WithScope(func() {
				B := c.B
				N := len(c.mask) / B
				logp := torch.FromSlice(c.logp, []int{B, N})
				ref := torch.FromSlice(c.ref, []int{B, N})
				mask := torch.FromSlice(c.mask, []int{B, N})
				_, kl := PolicyLoss(logp, ref, torch.Zeros([]int{B}, torch.Float64), mask, 0.1)
				require.InDelta(t, c.wantKL, kl.Item(), 1e-12)
				require.InDelta(t, c.wantToken, TokenKL(logp, ref, mask).Item(), 1e-12)
			})
		})
	}
}
