package interp

import (
	"fmt"
	"math"
)

// JSD returns the Jensen–Shannon divergence of the probability vectors p and
// q in nats (natural log, as the reference's JSD; at most ln 2):
// ½·KL(p‖m) + ½·KL(q‖m) with m = (p+q)/2. Zero entries contribute nothing;
// the vectors are used as given, not renormalised. It panics if their lengths
// differ.
func JSD(p, q []float64) float64 {
	if len(p) != len(q) {
		panic(fmt.Sprintf("interp: JSD of vectors of lengths %d and %d", len(p), len(q)))
	}
	d := 0.0
	for i := range p {
		m := (p[i] + q[i]) / 2
		if p[i] > 0 {
			d += p[i] * math.Log(p[i]/m)
		}
		if q[i] > 0 {
			d += q[i] * math.Log(q[i]/m)
		}
	}
	return max(d/2, 0) // rounding can leave a tiny negative
}

// NormalizedJSD is the per-transition score of the paper's intervention
// experiment (§3.2): how far patching codes moved the model's next-token
// distribution towards target (the true distribution of the state whose
// codes were patched in), as JSD(patched, target) / JSD(unpatched, target).
// No effect scores 1 and a perfect intervention 0; the ratio does not depend
// on the log base. It is NaN or +Inf when unpatched already equals target.
func NormalizedJSD(patched, unpatched, target []float64) float64 {
	return JSD(patched, target) / JSD(unpatched, target)
}
