package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMeanStd(t *testing.T) {
	for _, c := range []struct {
		xs        []float64
		mean, std float64
	}{
		{[]float64{1, 2, 3, 4}, 2.5, math.Sqrt(5.0 / 3)},
		{[]float64{7}, 7, 0},
		{[]float64{-1, 1}, 0, math.Sqrt2},
	} {
		m, s := MeanStd(c.xs)
		if math.Abs(m-c.mean) > 1e-12 || math.Abs(s-c.std) > 1e-12 {
			t.Errorf("MeanStd(%v) = %v, %v; want %v, %v", c.xs, m, s, c.mean, c.std)
		}
	}
	if !math.IsNaN(Mean(nil)) {
		t.Error("Mean(nil) should be NaN")
	}
}

// Reference values from scipy.stats (t.sf, binomtest) computed by hand
// from the closed forms: for df = 1, P(|T| ≥ t) = 1 − 2·atan(t)/π.
func TestTests(t *testing.T) {
	if got, want := StudentTwoSided(1, 1), 0.5; math.Abs(got-want) > 1e-12 {
		t.Errorf("StudentTwoSided(1, 1) = %v, want %v", got, want)
	}
	if got, want := StudentTwoSided(2.0, 1), 1-2*math.Atan(2)/math.Pi; math.Abs(got-want) > 1e-12 {
		t.Errorf("StudentTwoSided(2, 1) = %v, want %v", got, want)
	}
	// Sign test: 9 wins, 1 loss → 2·(1+10)/1024.
	if got, want := SignTest(9, 1), 22.0/1024; math.Abs(got-want) > 1e-12 {
		t.Errorf("SignTest(9, 1) = %v, want %v", got, want)
	}
	if got := SignTest(5, 5); got != 1 {
		t.Errorf("SignTest(5, 5) = %v, want 1", got)
	}
	p := PairedTest([]float64{1, 2, 3, 4}, []float64{0, 1, 3, 2})
	// d = 1, 1, 0, 2: mean 1, sd √(2/3), se √(2/3)/2, t = 2/√(2/3) = √6.
	if math.Abs(p.T-math.Sqrt(6)) > 1e-12 || p.Wins != 3 || p.Losses != 0 {
		t.Errorf("PairedTest: %+v", p)
	}
	if !(p.Lo < p.Diff && p.Diff < p.Hi) || p.Lo > 0 {
		t.Errorf("PairedTest CI [%v, %v] should contain %v and (n=4, p=%.3f) reach below 0", p.Lo, p.Hi, p.Diff, p.P)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// The paired t-test and sign test agree with known values.
func TestPairedTest(t *testing.T) {
	for _, c := range []struct {
		name      string
		a, b      []float64
		diff, t_  float64
		p, signP  float64
		wins, los int
	}{
		// d = [1, 1, 1, 0, 2]: mean 1, sd √0.5, se √0.1, t = √10 (df 4, p = 0.0341).
		{"small", []float64{2, 3, 4, 4, 6}, []float64{1, 2, 3, 4, 4}, 1, 3.1623, 0.0341, 0.125, 4, 0},
		{"identical", []float64{1, 0, 1}, []float64{1, 0, 1}, 0, 0, 1, 1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := PairedTest(c.a, c.b)
			require.InDelta(t, c.diff, p.Diff, 1e-12)
			require.InDelta(t, c.t_, p.T, 1e-4)
			require.InDelta(t, c.p, p.P, 1e-4)
			require.InDelta(t, c.signP, p.SignP, 1e-12)
			require.Equal(t, []int{c.wins, c.los}, []int{p.Wins, p.Losses})
		})
	}
	// Student t tail at large df approaches the normal: P(|T| ≥ 1.96) ≈ 0.05.
	require.InDelta(t, 0.05, StudentTwoSided(1.959964, 1e6), 1e-4)
}

func TestPower(t *testing.T) {
	// Hand check: n = 10, sd = 0.02, α = 0.05, power 0.8:
	// t_{.975,9} = 2.2622, t_{.8,9} = 0.8834 → δ = 3.1456·0.02/√10 = 0.019895.
	if got := DetectableDiff(0.02, 10, 0.05, 0.8); math.Abs(got-0.019895) > 5e-5 {
		t.Errorf("DetectableDiff = %.6f, want 0.019895", got)
	}
	if !math.IsInf(DetectableDiff(0.02, 1, 0.05, 0.8), 1) {
		t.Error("DetectableDiff with one pair should be +Inf")
	}
	for _, c := range []struct {
		sd, delta float64
		want      int
		ok        bool
	}{
		{0.02, 0.03, 6, true},   // δ(5) = 0.0332, δ(6) = 0.0285
		{0.01, 0.03, 4, true},   // δ(3) = 0.0310, δ(4) = 0.0208
		{0.10, 0.03, 50, false}, // δ(50) = 0.0401

	} {
		n, ok := PairsFor(c.sd, c.delta, 0.05, 0.8, 50)
		if n != c.want || ok != c.ok {
			t.Errorf("PairsFor(%g, %g) = %d, %v", c.sd, c.delta, n, ok)
		}
	}
}
