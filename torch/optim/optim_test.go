package optim_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
	"github.com/stretchr/testify/require"
)

func TestSchedules(t *testing.T) {
	cases := []struct {
		name  string
		s     optim.Schedule
		steps []int
		want  []float64
	}{
		{"constant", optim.Constant{}, []int{0, 10, 1000}, []float64{1, 1, 1}},
		{"constant warmup", optim.Constant{Warmup: 4}, []int{0, 1, 3, 4}, []float64{0.25, 0.5, 1, 1}},
		{"cosine", optim.Cosine{Warmup: 2, Total: 12, MinFactor: 0.1}, []int{0, 1, 2, 7, 12, 20},
			[]float64{0.5, 1, 1, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*0.5)), 0.1, 0.1}},
		{"linear", optim.Linear{Warmup: 0, Total: 10, MinFactor: 0}, []int{0, 5, 10}, []float64{1, 0.5, 0}},
	}
	for _, c := range cases {
		for i, step := range c.steps {
			require.InDelta(t, c.want[i], c.s.Factor(step), 1e-12, "%s step %d", c.name, step)
		}
	}
	for _, name := range []string{"constant", "cosine", "linear"} {
		_, err := optim.NewSchedule(name, 1, 10, 0.1)
		require.NoError(t, err)
	}
	_, err := optim.NewSchedule("step", 0, 10, 0)
	require.ErrorContains(t, err, `unknown schedule "step"`)
	_, err = optim.NewSchedule("cosine", 0, 10, 2)
	require.Error(t, err)
}

func param(s *nn.Store, name string, vals ...float64) *nn.Param {
	s.Root().Param(name, torch.FromSlice(vals, nil))
	return s.Get(name)
}

// TestAdamWGroups: each group uses its own LR and weight decay, scaled by the
// schedule factor, following torch.optim.AdamW's update written out by hand.
func TestAdamWGroups(t *testing.T) {
	s := nn.NewStore()
	defer s.Close()
	a, b := param(s, "a", 1, 2), param(s, "b", -1)
	opt, err := optim.NewAdamW(
		&optim.Group{Name: "a", Params: []*nn.Param{a}, LR: 0.1, WeightDecay: 0.5},
		&optim.Group{Name: "b", Params: []*nn.Param{b}, LR: 0.01, Beta1: 0.5, Beta2: 0.9},
	)
	require.NoError(t, err)
	defer opt.Close()
	adam := func(p, g, lr, wd, b1, b2 float64, steps int) float64 {
		m, v := 0.0, 0.0
		for k := 1; k <= steps; k++ {
			p *= 1 - lr*wd
			m = b1*m + (1-b1)*g
			v = b2*v + (1-b2)*g*g
			p -= lr / (1 - math.Pow(b1, float64(k))) * m / (math.Sqrt(v)/math.Sqrt(1-math.Pow(b2, float64(k))) + 1e-8)
		}
		return p
	}
	for step := 0; step < 3; step++ {
		torch.WithScope(func() {
			s.ZeroGrad(true)
			a.T.Mul(torch.FromSlice([]float64{3, 4}, nil)).Sum().Add(b.T.MulScalar(2).Sum()).Backward()
			opt.Step(0.5)
		})
	}
	require.Equal(t, int64(3), opt.Steps())
	torch.WithScope(func() {
		require.InDeltaSlice(t, []float64{adam(1, 3, 0.05, 0.5, 0.9, 0.999, 3), adam(2, 4, 0.05, 0.5, 0.9, 0.999, 3)}, a.T.Float64s(), 1e-12)
		require.InDelta(t, adam(-1, 2, 0.005, 0, 0.5, 0.9, 3), b.T.Item(), 1e-12)
	})

	_, err = optim.NewAdamW(&optim.Group{Name: "x", Params: []*nn.Param{a}}, &optim.Group{Name: "y", Params: []*nn.Param{a}})
	require.ErrorContains(t, err, `parameter a is in optimizer groups "x" and "y"`)
}

// TestAdamWSIMDLevels runs TestAdamWFloat32 again with the shim's own
// kernels held to portable code (HIDDENLAB_SIMD=generic), so that the
// one-pass AdamW's loop without AVX2 is checked on any machine.
func TestAdamWSIMDLevels(t *testing.T) {
	if os.Getenv(torch.SIMDEnv) != "" || testing.Short() {
		t.Skip("a child run, or -short")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAdamWFloat32$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), torch.SIMDEnv+"=generic")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestAdamWFloat32")
}

// TestAdamWFloat32: float32 parameters take the shim's one-pass AdamW,
// float64 ones libtorch's _foreach ops; over five steps with weight decay,
// on sizes with and without a tail past a multiple of 8 and gradients from
// 1e-9 to 10, both follow the update written out by hand (float32 to a
// few ulp of the step, float64 to 1e-12).
func TestAdamWFloat32(t *testing.T) {
	sizes := []int{37, 64, 3}
	for _, dt := range []torch.DType{torch.Float32, torch.Float64} {
		s := nn.NewStore()
		torch.ManualSeed(9)
		var params []*nn.Param
		var init, grads [][]float64
		for i, n := range sizes {
			v := torch.Randn([]int{n}, torch.Float64)
			g := torch.Randn([]int{n}, torch.Float64).Mul(torch.Randn([]int{n}, torch.Float64).MulScalar(4).Exp())
			init, grads = append(init, v.Float64s()), append(grads, g.Float64s())
			name := fmt.Sprintf("p%d", i)
			s.Root().Param(name, v.To(dt))
			params = append(params, s.Get(name))
		}
		opt, err := optim.NewAdamW(&optim.Group{Params: params, LR: 0.01, WeightDecay: 0.1, Beta1: 0.9, Beta2: 0.99})
		require.NoError(t, err)
		for step := 0; step < 5; step++ {
			torch.WithScope(func() {
				for i, p := range params {
					p.T.SetGrad(torch.FromSlice(grads[i], nil).To(dt))
				}
				opt.Step(1)
			})
		}
		tol := 1e-12
		if dt == torch.Float32 {
			tol = 1e-6
		}
		for i, p := range params {
			got := torch.Values[float64](p.T)
			for j := range got {
				w, m, v := init[i][j], 0.0, 0.0
				for k := 1; k <= 5; k++ {
					g := grads[i][j]
					w *= 1 - 0.01*0.1
					m = 0.9*m + 0.1*g
					v = 0.99*v + 0.01*g*g
					w -= 0.01 / (1 - math.Pow(0.9, float64(k))) * m / (math.Sqrt(v)/math.Sqrt(1-math.Pow(0.99, float64(k))) + 1e-8)
				}
				require.InDelta(t, w, got[j], tol*(1+math.Abs(w)), "%v p%d[%d]", dt, i, j)
			}
		}
		opt.Close()
		s.Close()
	}
}

func TestSGD(t *testing.T) {
	s := nn.NewStore()
	defer s.Close()
	p := param(s, "w", 1)
	opt, err := optim.NewSGD(&optim.Group{Params: []*nn.Param{p}, LR: 0.1, Momentum: 0.9, Nesterov: true})
	require.NoError(t, err)
	defer opt.Close()
	w, buf := 1.0, 0.0
	for step := 0; step < 3; step++ {
		torch.WithScope(func() {
			s.ZeroGrad(true)
			p.T.Square().Sum().Backward() // grad 2w
			opt.Step(1)
		})
		g := 2 * w
		if step == 0 {
			buf = g
		} else {
			buf = 0.9*buf + g
		}
		w -= 0.1 * (g + 0.9*buf)
	}
	torch.WithScope(func() { require.InDelta(t, w, p.T.Item(), 1e-12) })
}

// TestOptimizerStateRoundTrip: saving and loading the state resumes the same
// trajectory.
func TestOptimizerStateRoundTrip(t *testing.T) {
	run := func(split bool) []float64 {
		s := nn.NewStore()
		defer s.Close()
		p := param(s, "w", 1, -2, 3)
		opt, _ := optim.NewAdamW(&optim.Group{Params: []*nn.Param{p}, LR: 0.1, WeightDecay: 0.1})
		step := func() {
			torch.WithScope(func() {
				s.ZeroGrad(true)
				p.T.PowScalar(3).Sum().Backward()
				opt.Step(1)
			})
		}
		for i := 0; i < 3; i++ {
			step()
		}
		if split {
			state := map[string]*torch.Tensor{}
			for k, v := range opt.State() {
				state[k] = v.Clone().Retain()
			}
			steps := opt.Steps()
			opt.Close()
			opt, _ = optim.NewAdamW(&optim.Group{Params: []*nn.Param{p}, LR: 0.1, WeightDecay: 0.1})
			require.NoError(t, opt.LoadState(state, steps))
			for _, v := range state {
				v.Free()
			}
		}
		for i := 0; i < 3; i++ {
			step()
		}
		defer opt.Close()
		var out []float64
		torch.WithScope(func() { out = p.T.Float64s() })
		return out
	}
	require.Equal(t, run(false), run(true))

	s := nn.NewStore()
	defer s.Close()
	p := param(s, "w", 1)
	opt, _ := optim.NewAdamW(&optim.Group{Params: []*nn.Param{p}, LR: 0.1})
	defer opt.Close()
	require.ErrorContains(t, opt.LoadState(map[string]*torch.Tensor{}, 1), "missing w.exp_avg")
}

func TestClipGradNorm(t *testing.T) {
	s := nn.NewStore()
	defer s.Close()
	a, b := param(s, "a", 0, 0), param(s, "b", 0)
	torch.WithScope(func() {
		a.T.Mul(torch.FromSlice([]float64{3, 0}, nil)).Sum().Add(b.T.MulScalar(4).Sum()).Backward()
		require.InDelta(t, 5, optim.ClipGradNorm(s.Params(), 0), 1e-12, "max 0 only measures")
		require.InDelta(t, 5, optim.ClipGradNorm(s.Params(), 2.5), 1e-12)
		require.InDeltaSlice(t, []float64{1.5, 0}, a.T.Grad().Float64s(), 1e-6)
		require.InDelta(t, 2, b.T.Grad().Item(), 1e-6)
		require.InDelta(t, 2.5, optim.ClipGradNorm(s.Params(), 10), 1e-5, "below the limit nothing changes")
	})
}
