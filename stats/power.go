package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// DetectableDiff is the smallest true mean difference a two-sided paired
// t-test on n pairs detects at level alpha with the given power, when the
// pair differences have standard deviation sd (the usual approximation
// δ = (t_{1−α/2, n−1} + t_{power, n−1}) · sd / √n; it ignores the
// non-central t's skew, which makes it slightly optimistic below ~5 pairs).
// It returns +Inf for fewer than two pairs.
func DetectableDiff(sd float64, n int, alpha, power float64) float64 {
	if n < 2 {
		return math.Inf(1)
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}
	return (t.Quantile(1-alpha/2) + t.Quantile(power)) * sd / math.Sqrt(float64(n))
}

// PairsFor is the smallest number of pairs (at least 2, at most limit) for
// which DetectableDiff(sd, n, alpha, power) ≤ delta, and whether such an n
// exists within limit.
func PairsFor(sd, delta, alpha, power float64, limit int) (int, bool) {
	for n := 2; n <= limit; n++ {
		if DetectableDiff(sd, n, alpha, power) <= delta {
			return n, true
		}
	}
	return limit, false
}
