// Package stats holds the few numeric helpers that reports, sweeps and
// studies share: sample mean and standard deviation, a paired t-test with an
// exact sign test, confidence intervals, and number formatting for tables.
// Distributions come from gonum (distuv); nothing here is hand-rolled
// special-function code.
package stats

import (
	"math"
	"strconv"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Mean is the arithmetic mean of xs (NaN for none).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return stat.Mean(xs, nil)
}

// Std is the sample (n−1) standard deviation of xs; 0 for fewer than two.
func Std(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	return stat.StdDev(xs, nil)
}

// MeanStd returns Mean(xs) and Std(xs).
func MeanStd(xs []float64) (mean, std float64) { return Mean(xs), Std(xs) }

// Finite returns the values of xs that are neither NaN nor ±Inf.
func Finite(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			out = append(out, x)
		}
	}
	return out
}

// CI is the two-sided (1−alpha) Student-t confidence interval of the mean of
// xs: mean ± t_{1−alpha/2, n−1}·sd/√n. It returns NaNs for fewer than two
// values.
func CI(xs []float64, alpha float64) (lo, hi float64) {
	n := len(xs)
	if n < 2 {
		return math.NaN(), math.NaN()
	}
	m, sd := MeanStd(xs)
	half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(1-alpha/2) * sd / math.Sqrt(float64(n))
	return m - half, m + half
}

// Paired is a paired comparison of two score vectors (a paired t-test) with
// an exact sign test as a distribution-free check.
type Paired struct {
	N            int
	MeanA, MeanB float64 // mean score of each side
	Diff, SE     float64 // mean difference A − B and its standard error
	T            float64 // paired t statistic, N − 1 degrees of freedom
	P            float64 // two-sided p-value of the t-test
	Lo, Hi       float64 // 95% confidence interval of Diff
	Wins, Losses int     // pairs where A scores above / below B
	SignP        float64 // two-sided exact sign test on Wins vs Losses
}

// PairedTest compares a and b (same length, paired by index).
func PairedTest(a, b []float64) Paired {
	n := len(a)
	p := Paired{N: n, P: math.NaN(), SignP: math.NaN(), T: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	if n == 0 || len(b) != n {
		return p
	}
	d := make([]float64, n)
	for i := range a {
		d[i] = a[i] - b[i]
		switch {
		case d[i] > 0:
			p.Wins++
		case d[i] < 0:
			p.Losses++
		}
	}
	p.MeanA, p.MeanB = Mean(a), Mean(b)
	mean, sd := MeanStd(d)
	p.Diff = mean
	p.SE = sd / math.Sqrt(float64(n))
	switch {
	case n < 2:
	case p.SE == 0 && mean == 0:
		p.T, p.P, p.Lo, p.Hi = 0, 1, 0, 0
	case p.SE == 0:
		p.T, p.P, p.Lo, p.Hi = math.Copysign(math.Inf(1), mean), 0, mean, mean
	default:
		p.T = mean / p.SE
		p.P = StudentTwoSided(p.T, float64(n-1))
		p.Lo, p.Hi = CI(d, 0.05)
	}
	p.SignP = SignTest(p.Wins, p.Losses)
	return p
}

// StudentTwoSided is P(|T| ≥ |t|) for Student's t with df degrees of freedom.
func StudentTwoSided(t, df float64) float64 {
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
}

// SignTest is the two-sided exact binomial test of w successes against l
// failures at probability 1/2 (ties are dropped before calling it).
func SignTest(w, l int) float64 {
	n := w + l
	if n == 0 {
		return 1
	}
	k := min(w, l)
	return math.Min(1, 2*distuv.Binomial{N: float64(n), P: 0.5}.CDF(float64(k)))
}

// Thousands writes n in decimal with comma thousands separators
// (1234567 → "1,234,567"), as reports and benchmark tables print counts.
func Thousands(n int) string {
	if n < 0 {
		return "-" + Thousands(-n)
	}
	s := strconv.Itoa(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
