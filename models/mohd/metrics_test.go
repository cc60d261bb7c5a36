package mohd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConcentration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gauss := make([]float32, 200_000)
	for i := range gauss {
		gauss[i] = float32(rng.NormFloat64())
	}
	for _, c := range []struct {
		name  string
		v     []float32
		p     float64
		want  float64
		delta float64
	}{
		{"one-hot", []float32{0, 0, -3, 0}, 0.5, 0.25, 0},
		{"uniform, half", []float32{1, -1, 1, -1, 1, -1, 1, -1}, 0.5, 0.5, 0},
		{"uniform, 0.8", []float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0.8, 0.8, 0},
		{"two large of four", []float32{10, 0.1, -10, 0.1}, 0.9, 0.5, 0},
		{"all zero", []float32{0, 0}, 0.5, 0, 0},
		{"i.i.d. Gaussian", gauss, 0.5, GaussianQ50, 0.002},
	} {
		require.InDelta(t, c.want, Concentration(c.v, c.p), c.delta, c.name)
	}
}

func TestActiveFractionTopSetJaccard(t *testing.T) {
	// RMS of (4, 1, 1, 1, 1, 1, 1, 1, 1, 1) is √(25/10) ≈ 1.58; 1.5·RMS ≈ 2.37.
	require.InDelta(t, 0.1, ActiveFraction([]float32{4, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 1.5), 1e-12)
	require.Equal(t, []int{1, 3}, TopSet([]float32{0.1, -5, 0.2, 3}, 2))
	require.Equal(t, []int{0, 1}, TopSet([]float32{1, 1, 1}, 2), "ties go to the lower index")
	for _, c := range []struct {
		a, b []int
		want float64
	}{
		{[]int{1, 2, 3}, []int{1, 2, 3}, 1},
		{[]int{1, 2}, []int{3, 4}, 0},
		{[]int{1, 2, 3}, []int{2, 3, 4}, 0.5},
		{nil, nil, 1},
	} {
		require.InDelta(t, c.want, Jaccard(c.a, c.b), 1e-12)
	}
}

// constructed returns activations where dims 0–9 are large for every token
// (shared) and one further dim, different per token, peaks (specialised).
func constructed(B, T, D int, seed uint64) Acts {
	rng := rand.New(rand.NewPCG(seed, 9))
	a := Acts{B: B, T: T, D: D, V: make([]float32, B*T*D)}
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			v := a.Token(b, t)
			for d := range v {
				v[d] = float32(0.01 * rng.NormFloat64())
			}
			for d := 0; d < 10; d++ {
				v[d] = 5
			}
			v[10+rng.IntN(D-10)] = 20
		}
	}
	return a
}

func TestFlowConstructed(t *testing.T) {
	// D = 100: the top 10% is the 10 shared dims minus one, plus the peak.
	a := constructed(8, 64, 100, 1)
	f := FlowOf(a, 10, 7)
	// L1 mass ≈ 20 + 10·5 + noise: half of it needs the peak and 4 shared dims.
	require.InDelta(t, 0.05, f.Q50, 1e-12)
	// RMS ≈ √(650/100) ≈ 2.55: the peak and the shared dims exceed 1.5·RMS.
	require.InDelta(t, 0.11, f.Active, 1e-12)
	require.InDelta(t, 0.09, f.Shared, 1e-12, "9 of the 10 shared dims are in every top set")
	require.Greater(t, f.Specialized, 0.5, "the peaks fall on many dims, each rarely")
	// Consecutive and random pairs overlap equally: 9 shared of 11 in the
	// union (peaks rarely coincide).
	require.InDelta(t, 9.0/11, f.Cons, 0.02)
	require.InDelta(t, f.Cons, f.Rand, 0.02)

	// A sequence whose peak stays on one dim for 4 tokens is more
	// persistent between consecutive tokens than across sequences.
	for b := 0; b < a.B; b++ {
		for t := 0; t < a.T; t++ {
			v := a.Token(b, t)
			for d := 10; d < a.D; d++ {
				v[d] = 0
			}
			v[10+(b*a.T+t)/4%90] = 20
		}
	}
	f = FlowOf(a, 10, 7)
	require.Greater(t, f.Cons, f.Rand+0.1)
	require.InDelta(t, (9*64.0+4*16)/(9+16), f.Run, 1e-9, "runs: 9 shared dims × 1 run of 64, 16 peaks × runs of 4, per sequence")
	require.Greater(t, f.GroupCons, 0.0)
}

func TestRouterHealth(t *testing.T) {
	even := HealthOf("even", []float64{5, 5, 5, 5}, 0.2, 0.1, 20)
	require.InDelta(t, 1, even.Entropy, 1e-12)
	require.InDelta(t, 0, even.CV, 1e-12)
	require.Equal(t, 0, even.Dead)
	require.Equal(t, []float64{0.25, 0.25, 0.25, 0.25}, even.Load)

	// f = (.7, .1, .1, .1, 0): H = −(.7 ln .7 + 3·.1 ln .1), one dead group.
	skew := HealthOf("skew", []float64{7, 1, 1, 1, 0}, 0, 0, 10)
	wantH := -(0.7*math.Log(0.7) + 3*0.1*math.Log(0.1)) / math.Log(5)
	require.InDelta(t, wantH, skew.Entropy, 1e-12)
	require.Equal(t, 1, skew.Dead)
	require.InDelta(t, 0.7, skew.MaxLoad, 1e-12)
	require.InDelta(t, 0, skew.MinLoad, 1e-12)
	mean := 0.2
	ss := (0.5*0.5 + 3*0.1*0.1 + 0.2*0.2) / 5
	require.InDelta(t, math.Sqrt(ss)/mean, skew.CV, 1e-12)
}
