package hrpo

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

func TestMain(m *testing.M) {
	if err := torch.SetNumThreads(1); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// tinyConfig is a small model section for tests. A large init std makes
// the random policy's distributions peaked, so that log-probabilities are
// sensitive to every input.
func tinyConfig() ModelConfig {
	c := DefaultModel()
	c.Width, c.Layers, c.Heads, c.Context = 32, 2, 4, 64
	c.InitStd = 0.3
	return c
}

// tinyModel builds a model of arm with the gate's a drawn from
// [rMin, rMax] (far from 1 in tests, so the latent matters).
func tinyModel(t *testing.T, arm Arm, rMin, rMax float64) *Model {
	t.Helper()
	torch.ManualSeed(7)
	c := tinyConfig()
	c.Gate.RMin, c.Gate.RMax = rMin, rMax
	m, err := NewModel(c, arm)
	require.NoError(t, err)
	t.Cleanup(m.GPT.Close)
	return m
}

func maxAbs(t *torch.Tensor) float64 { return t.Abs().Amax().Item() }

// Invariant 1: a one-hot p gives ĥ = E[x].
func TestInterpolateOneHot(t *testing.T) {
	for _, c := range []struct {
		name string
		V, d int
		ids  []int64
	}{
		{"vocabulary of the tasks", reasoning.VocabSize, 128, []int64{0, 15, 17, 32}},
		{"single token", 5, 3, []int64{4}},
		{"wide", 50, 256, []int64{1, 1, 49}},
	} {
		t.Run(c.name, func(t *testing.T) {
			torch.WithScope(func() {
				torch.ManualSeed(1)
				E := torch.Randn([]int{c.V, c.d})
				ids := torch.FromSlice(c.ids, nil)
				p := ids.OneHot(c.V).To(torch.Float32)
				got := Interpolate(p, E)
				require.Equal(t, []int{len(c.ids), c.d}, got.Shape())
				require.Less(t, maxAbs(got.Sub(torch.Embedding(E, ids))), 1e-6)
			})
		})
	}
	// Uniform p over k tokens: the embedding sum divided by √k (the norm of p).
	torch.WithScope(func() {
		E := torch.Randn([]int{4, 8})
		p := torch.FromSlice([]float32{0.5, 0.5, 0, 0}, []int{1, 4})
		want := E.Narrow(0, 0, 2).Sum(0).DivScalar(math.Sqrt2)
		require.Less(t, maxAbs(Interpolate(p, E).Squeeze(0).Sub(want)), 1e-6)
	})
}

// Invariant 2: after initialisation σ(Λ)^c lies in [r_min, r_max].
func TestGateInitRange(t *testing.T) {
	for _, c := range []struct {
		name       string
		d          int
		c          float64
		rMin, rMax float64
	}{
		{"paper default r_min 0.99", 128, 8, 0.99, 0.999},
		{"r_min 0.95", 128, 8, 0.95, 0.999},
		{"r_min 0.98", 1536, 8, 0.98, 0.999},
		{"degenerate range", 16, 8, 0.97, 0.97},
		{"c = 1", 64, 1, 0.5, 0.9},
	} {
		t.Run(c.name, func(t *testing.T) {
			torch.ManualSeed(3)
			s := nn.NewStore()
			defer s.Close()
			g, err := NewGate(s.Root().Sub("gate"), c.d, c.c, c.rMin, c.rMax, GateInitNormal)
			require.NoError(t, err)
			torch.WithScope(func() {
				decay := g.Decay().Float32s()
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, v := range decay {
					lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
				}
				require.GreaterOrEqual(t, lo, c.rMin-1e-6)
				require.LessOrEqual(t, hi, c.rMax+1e-6)
				// r and i start near 0.5 (N(0, 0.02²) weights, zero biases).
				r, i := g.Gates(torch.Randn([]int{8, c.d}).MulScalar(0.3))
				require.InDelta(t, 0.5, r.Mean().Item(), 0.05)
				require.InDelta(t, 0.5, i.Mean().Item(), 0.05)
			})
			for _, name := range []string{"gate.w_r", "gate.b_r", "gate.w_i", "gate.b_i", "gate.lambda"} {
				require.NotNil(t, s.Get(name), name)
				require.True(t, IsGateParam(name))
			}
			require.True(t, IsLambda("gate.lambda"))
			require.False(t, IsGateParam("wte.weight"))
		})
	}
}

func TestGateInitErrors(t *testing.T) {
	for _, c := range []struct {
		d          int
		c          float64
		rMin, rMax float64
		want       string
	}{
		{0, 8, 0.9, 0.99, "width"},
		{8, 0, 0.9, 0.99, "c = 0"},
		{8, 8, 0.99, 0.9, "r_min"},
		{8, 8, 0.9, 1, "r_max"},
		{8, 8, 0, 0.5, "r_min"},
	} {
		s := nn.NewStore()
		_, err := NewGate(s.Root(), c.d, c.c, c.rMin, c.rMax, GateInitNormal)
		require.ErrorContains(t, err, c.want)
		s.Close()
	}
}

// Invariant 3: with a ≡ 1 the hybrid input is ê + 1e-4·i⊙ĥ, so the hybrid
// forward equals the plain one up to that term.
func TestHybridEqualsPlainWhenAIsOne(t *testing.T) {
	m := tinyModel(t, HRPO, 0.5, 0.6)
	torch.WithScope(func() {
		torch.NoGrad(func() { m.Gate.Lambda.Fill(60) }) // softplus(−60) ≈ 1e-26: a = 1 in float32
		ids := torch.RandInt(0, reasoning.VocabSize, []int{3, 10})
		latent := Interpolate(torch.Rand([]int{3, 10, reasoning.VocabSize}), m.E())
		think := torch.Ones([]int{3, 10}, torch.Bool)
		in := m.Inputs(ids, latent, think)
		require.Equal(t, 1.0, in.A.Amin().Item(), "a ≡ 1")
		e := m.GPT.Embed(ids)
		residue := in.I.Mul(latent).MulScalar(math.Sqrt(GateEps))
		require.Less(t, maxAbs(in.X.Sub(e).Sub(residue)), 1e-7, "input = ê + 1e-4·i⊙ĥ")

		hybrid := m.GPT.Logits(m.GPT.Hidden(in.X, nil))
		plain := m.GPT.Logits(m.GPT.Hidden(e, nil))
		diff := maxAbs(hybrid.Sub(plain))
		t.Logf("max |hybrid − plain| logit difference with a ≡ 1: %.2e (residue max %.2e)", diff, maxAbs(residue))
		require.Less(t, diff, 1e-2*maxAbs(plain))
		require.Greater(t, diff, 0.0, "the 1e-8 term is there")
		// With the residue added to the plain input the forwards agree exactly.
		exact := m.GPT.Logits(m.GPT.Hidden(e.Add(residue), nil))
		require.Less(t, maxAbs(hybrid.Sub(exact)), 1e-5)
	})
}

// toFloat64 converts a model's weights and rotary tables to float64.
func toFloat64(m *Model) {
	s := m.GPT.Store
	ps := s.StateDict()
	for _, name := range []string{"rotary.cos", "rotary.sin"} {
		if p := s.Get(name); p != nil {
			ps = append(ps, p)
		}
	}
	for _, p := range ps {
		torch.WithScope(func() { p.T.SetData(p.T.Detach().To(torch.Float64)) })
	}
}

// Invariant 4 (the most important): per-token log-probabilities of the
// KV-cache rollout equal those of the teacher-forced forward over the
// buffered inputs, within 1e-5 in float32 (and 1e-12 in float64, which
// shows the float32 gap is rounding), for every arm, sampled and greedy,
// with ragged (left-padded) prompts of both tasks.
func TestRolloutMatchesTeacherForced(t *testing.T) {
	problems, err := reasoning.Prompts(5, 6, reasoning.ModChain, reasoning.KRange{Min: 2, Max: 8})
	require.NoError(t, err)
	hops, err := reasoning.Prompts(5, 2, reasoning.HopChain, reasoning.KRange{Min: 2, Max: 10})
	require.NoError(t, err)
	problems = append(problems, hops...)
	var prompts [][]int32
	for _, p := range problems {
		prompts = append(prompts, p.Prompt, p.Prompt)
	}
	worst := map[string]float64{}
	for _, dtype := range []struct {
		name string
		f64  bool
		tol  float64
	}{{"fp32", false, 1e-5}, {"fp64", true, 1e-12}} {
		for _, arm := range Arms {
			for _, greedy := range []bool{false, true} {
				name := dtype.name + "/" + string(arm)
				if greedy {
					name += "/greedy"
				}
				t.Run(name, func(t *testing.T) {
					m := tinyModel(t, arm, 0.2, 0.6)
					if dtype.f64 {
						toFloat64(m)
					}
					torch.WithScope(func() {
						var ro *Rollout
						torch.NoGrad(func() {
							var err error
							ro, err = m.Rollout(prompts, RolloutOptions{MaxNew: 12, Greedy: greedy})
							require.NoError(t, err)
						})
						require.Equal(t, len(prompts), ro.B)
						nThink := ro.Think.To(torch.Float32).Sum().Item()
						require.Greater(t, nThink, 0.0, "some think tokens were fed back")
						logits, _ := m.Forward(ro)
						logp := m.SampleLogProbs(logits, ro.IDs)
						diff := maxAbs(logp.Sub(ro.LogP).Mul(ro.Mask))
						worst[dtype.name] = math.Max(worst[dtype.name], diff)
						t.Logf("%s: %d rows, %d steps, %.0f think inputs, max |Δ log p| = %.2e", name, ro.B, ro.N, nThink, diff)
						require.Less(t, diff, dtype.tol)
						if arm.Latent() {
							// Control: the same tokens fed as plain embeddings give other
							// log-probs, so the check above sees the latent path.
							plain := *ro
							plain.Latent = nil
							pl, _ := m.Forward(&plain)
							require.Greater(t, maxAbs(m.SampleLogProbs(pl, ro.IDs).Sub(ro.LogP).Mul(ro.Mask)), 1e-3)
						}
					})
				})
			}
		}
	}
	t.Logf("worst max |Δ log p| over arms: fp32 %.2e, fp64 %.2e", worst["fp32"], worst["fp64"])
}

// Invariant 5: a group with identical rewards has zero advantage.
func TestAdvantages(t *testing.T) {
	for _, c := range []struct {
		name    string
		rewards []float64
		G       int
		want    []float64
	}{
		{"all wrong", []float64{0, 0, 0, 0}, 4, []float64{0, 0, 0, 0}},
		{"all right", []float64{1, 1, 1, 1, 1, 1, 1, 1}, 8, []float64{0, 0, 0, 0, 0, 0, 0, 0}},
		// mean 1/4, unbiased std 1/2
		{"one right of four", []float64{1, 0, 0, 0}, 4, []float64{0.75 / (0.5 + AdvantageEps), -0.25 / (0.5 + AdvantageEps), -0.25 / (0.5 + AdvantageEps), -0.25 / (0.5 + AdvantageEps)}},
		// second group: mean 2/3, unbiased std 1/√3
		{"two groups, one constant", []float64{1, 1, 1, 1, 0, 1}, 3, []float64{0, 0, 0, (1.0 / 3) / (1/math.Sqrt(3) + AdvantageEps), (-2.0 / 3) / (1/math.Sqrt(3) + AdvantageEps), (1.0 / 3) / (1/math.Sqrt(3) + AdvantageEps)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Advantages(c.rewards, c.G)
			require.NoError(t, err)
			require.InDeltaSlice(t, c.want, got, 1e-9)
		})
	}
	_, err := Advantages([]float64{1, 0, 1}, 2)
	require.ErrorContains(t, err, "whole groups")
	_, err = Advantages([]float64{1}, 1)
	require.ErrorContains(t, err, "G = 1")
}

// Invariant 6: exp(l − sg(l)) equals 1 and has the gradient of l.
func TestSurrogateRatioGradient(t *testing.T) {
	for _, c := range []struct {
		name string
		l    func(x *torch.Tensor) *torch.Tensor
	}{
		{"log-softmax entry", func(x *torch.Tensor) *torch.Tensor { return x.LogSoftmax(-1).Select(-1, 1) }},
		{"linear", func(x *torch.Tensor) *torch.Tensor { return x.MulScalar(3).Sum(-1) }},
		{"nonlinear", func(x *torch.Tensor) *torch.Tensor { return x.Square().Sin().Sum(-1) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			torch.WithScope(func() {
				torch.ManualSeed(2)
				x := torch.Randn([]int{4, 5}, torch.Float64).SetRequiresGrad(true)
				l := c.l(x)
				ratio := SurrogateRatio(l)
				require.Less(t, maxAbs(ratio.SubScalar(1)), 1e-12)
				ratio.Sum().Backward()
				g1 := x.Grad().Clone()
				x.SetGrad(nil)
				c.l(x).Sum().Backward()
				require.Less(t, maxAbs(g1.Sub(x.Grad())), 1e-12)
			})
		})
	}
}

// The loss's gradient with respect to logp is −Â·mask/(|y|·B), plus β
// times the k3 gradient, which vanishes where π = π_ref.
func TestPolicyLossGradient(t *testing.T) {
	torch.WithScope(func() {
		logp := torch.FromSlice([]float64{-1, -2, -0.5, -3, -1, -1}, []int{2, 3}).SetRequiresGrad(true)
		mask := torch.FromSlice([]float64{1, 1, 0, 1, 1, 1}, []int{2, 3})
		adv := torch.FromSlice([]float64{2, -1}, nil)
		loss, kl := PolicyLoss(logp, logp.Detach(), adv, mask, 0.5)
		require.InDelta(t, 0, kl.Item(), 1e-12, "k3 is 0 at π = π_ref")
		require.InDelta(t, -(2.0-1.0)/2, loss.Item(), 1e-12)
		loss.Backward()
		want := []float64{-2.0 / 2 / 2, -2.0 / 2 / 2, 0, 1.0 / 3 / 2, 1.0 / 3 / 2, 1.0 / 3 / 2}
		require.InDeltaSlice(t, want, logp.Grad().Float64s(), 1e-12)

		// k3 ≥ 0 and pushes logp towards ref.
		lp := torch.FromSlice([]float64{-1, -2}, []int{1, 2}).SetRequiresGrad(true)
		ref := torch.FromSlice([]float64{-1.5, -1.5}, []int{1, 2})
		loss, kl = PolicyLoss(lp, ref, torch.FromSlice([]float64{0}, nil), torch.OnesLike(ref), 1)
		require.Greater(t, kl.Item(), 0.0)
		loss.Backward()
		g := lp.Grad().Float64s()
		require.Greater(t, g[0], 0.0, "logp above ref is pushed down")
		require.Less(t, g[1], 0.0, "logp below ref is pushed up")
	})
}

// The reward path on real GSM8K answers: the gold worked solution scores
// 1; a wrong final number, a second "####" or no "####" score 0; and the
// group advantages follow.
func TestGSM8KRewardPath(t *testing.T) {
	items, err := reasoning.LoadGSM8K("../../third_party/gsm8k/test.jsonl")
	require.NoError(t, err)
	require.Greater(t, len(items), 1000)
	for _, it := range items[:200] {
		wrong := it.Answer[:strings.LastIndex(it.Answer, "####")] + "#### " + it.Final + "1"
		completions := []string{
			it.Answer,                        // the worked solution
			wrong,                            // wrong final number
			it.Answer + "\n#### " + it.Final, // a second delimiter
			strings.ReplaceAll(it.Answer, "####", "="), // no delimiter
		}
		golds := []string{it.Gold, it.Gold, it.Gold, it.Gold} // the official reward compares the raw gold
		rewards := GSM8KRewards(completions, golds)
		require.Equal(t, []float64{1, 0, 0, 0}, rewards, it.Answer)
		adv, err := Advantages(rewards, 4)
		require.NoError(t, err)
		require.Greater(t, adv[0], 0.0)
		require.InDelta(t, adv[1], adv[2], 1e-12)
		require.Less(t, adv[1], 0.0)
		// A group that is all correct carries no signal.
		same, err := Advantages(GSM8KRewards([]string{it.Answer, it.Answer, it.Answer, it.Answer}, golds), 4)
		require.NoError(t, err)
		require.Equal(t, []float64{0, 0, 0, 0}, same)
	}
	// Thousands separators and decimals parse as the official extractor does:
	// "$1,200" gives "200", so it matches the raw gold "1,200" but not "1200".
	require.Equal(t, []float64{1, 0, 1, 0}, GSM8KRewards(
		[]string{"so the total is #### $1,200.", "so the total is #### $1,200.", "#### 12.50", "#### 12.5 #### 12.5"},
		[]string{"1,200", "1200", "12.5", "12.5"}))
}
