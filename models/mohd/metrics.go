package mohd

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// GaussianQ50 is q_0.5 of i.i.d. Gaussian activations: the top 23.9% of |z|
// carry half the L1 mass (threshold √(2 ln 2)). Values well below it mean
// the activation is concentrated in few dimensions (brief §3).
const GaussianQ50 = 0.239

// Acts are activations of B sequences of T tokens over D dimensions,
// row-major [B, T, D].
type Acts struct {
	B, T, D int
	V       []float32
}

// Token returns token t of sequence b.
func (a Acts) Token(b, t int) []float32 { return a.V[(b*a.T+t)*a.D : (b*a.T+t+1)*a.D] }

// Flow is the activation-flow profile of one site (brief §3): how
// concentrated each token's activation is, and how persistent its top
// dimensions are from one token to the next.
type Flow struct {
	// Q50, Q80, Q90: mean over tokens of the smallest fraction of dimensions
	// whose |u_i| sum reaches 50%, 80%, 90% of Σ|u_i|.
	Q50, Q80, Q90 float64
	// Active is the mean fraction of dimensions with |u_i| > 1.5·RMS(u).
	Active float64
	// Cons is the mean Jaccard overlap of the top-10% dimension sets A_t and
	// A_{t+1} of consecutive tokens; Rand the same for random token pairs
	// from different sequences.
	Cons, Rand float64
	// Shared is the fraction of dimensions in A_t for at least half the
	// tokens; Specialized those in A_t for some but at most 5% of tokens.
	Shared, Specialized float64
	// Run is the mean length of a run of consecutive tokens with a
	// dimension in A_t.
	Run float64
	// GroupCons and GroupRand are Cons and Rand for the top quarter of N
	// contiguous groups by energy ‖u^(j)‖² (0 when no groups are given).
	GroupCons, GroupRand float64
	// Freq is each dimension's share of tokens with it in A_t.
	Freq []float64
}

// Concentration is the smallest fraction of v's dimensions whose |v_i| sum
// reaches p of Σ|v_i| (0 for an all-zero v).
func Concentration(v []float32, p float64) float64 {
	abs := make([]float64, len(v))
	total := 0.0
	for i, x := range v {
		abs[i] = math.Abs(float64(x))
		total += abs[i]
	}
	if total == 0 {
		return 0
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(abs)))
	sum := 0.0
	for i, x := range abs {
		sum += x
		if sum >= p*total*(1-1e-12) {
			return float64(i+1) / float64(len(v))
		}
	}
	return 1
}

// ActiveFraction is the fraction of v's dimensions with |v_i| > k·RMS(v).
func ActiveFraction(v []float32, k float64) float64 {
	ss := 0.0
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	thr := k * math.Sqrt(ss/float64(len(v)))
	n := 0
	for _, x := range v {
		if math.Abs(float64(x)) > thr {
			n++
		}
	}
	return float64(n) / float64(len(v))
}

// TopSet returns the indices of v's k largest |v_i|, ascending (ties go to
// the lower index).
func TopSet(v []float32, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(float64(v[idx[a]])) > math.Abs(float64(v[idx[b]])) })
	top := idx[:min(k, len(v))]
	slices.Sort(top)
	return top
}

// Jaccard is |a ∩ b| / |a ∪ b| of two ascending index sets (1 for two empty sets).
func Jaccard(a, b []int) float64 {
	i, j, inter := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			inter++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// randomPairs draws n pairs of (sequence, token) from different sequences.
func randomPairs(B, T, n int, seed uint64) [][4]int {
	rng := rand.New(rand.NewPCG(seed, 0x464c4f57)) // "FLOW"
	out := make([][4]int, 0, n)
	for len(out) < n && B > 1 {
		b1, b2 := rng.IntN(B), rng.IntN(B)
		if b1 == b2 {
			continue
		}
		out = append(out, [4]int{b1, rng.IntN(T), b2, rng.IntN(T)})
	}
	return out
}

// FlowOf measures the activation flow of a (brief §3). groups > 1 adds the
// group-level persistence over that many contiguous groups; seed draws the
// random pairs.
func FlowOf(a Acts, groups int, seed uint64) Flow {
	var f Flow
	n := a.B * a.T
	if n == 0 || a.D == 0 {
		return f
	}
	k := max(1, int(math.Ceil(0.1*float64(a.D))))
	sets := make([][]int, n)
	count := make([]int, a.D)
	for b := 0; b < a.B; b++ {
		for t := 0; t < a.T; t++ {
			v := a.Token(b, t)
			f.Q50 += Concentration(v, 0.5)
			f.Q80 += Concentration(v, 0.8)
			f.Q90 += Concentration(v, 0.9)
			f.Active += ActiveFraction(v, 1.5)
			s := TopSet(v, k)
			sets[b*a.T+t] = s
			for _, d := range s {
				count[d]++
			}
		}
	}
	N := float64(n)
	f.Q50, f.Q80, f.Q90, f.Active = f.Q50/N, f.Q80/N, f.Q90/N, f.Active/N
	f.Cons, f.Rand = persistence(sets, a.B, a.T, seed)
	f.Freq = make([]float64, a.D)
	for d, c := range count {
		f.Freq[d] = float64(c) / N
		switch {
		case f.Freq[d] >= 0.5:
			f.Shared++
		case c > 0 && f.Freq[d] <= 0.05:
			f.Specialized++
		}
	}
	f.Shared /= float64(a.D)
	f.Specialized /= float64(a.D)
	// Runs of consecutive membership, per dimension and sequence.
	runs, total := 0, 0
	for b := 0; b < a.B; b++ {
		in := make([]bool, a.D)
		for t := 0; t < a.T; t++ {
			now := make([]bool, a.D)
			for _, d := range sets[b*a.T+t] {
				now[d] = true
				total++
				if !in[d] {
					runs++
				}
			}
			in = now
		}
	}
	if runs > 0 {
		f.Run = float64(total) / float64(runs)
	}
	if groups > 1 && a.D%groups == 0 {
		g := a.D / groups
		gsets := make([][]int, n)
		for i := range gsets {
			v := a.V[i*a.D : (i+1)*a.D]
			e := make([]float32, groups)
			for j := range e {
				for _, x := range v[j*g : (j+1)*g] {
					e[j] += x * x
				}
			}
			gsets[i] = TopSet(e, max(1, groups/4))
		}
		f.GroupCons, f.GroupRand = persistence(gsets, a.B, a.T, seed)
	}
	return f
}

// persistence is the mean Jaccard of consecutive tokens' sets and of random
// pairs from different sequences (as many as there are consecutive pairs).
func persistence(sets [][]int, B, T int, seed uint64) (cons, random float64) {
	n := 0
	for b := 0; b < B; b++ {
		for t := 0; t+1 < T; t++ {
			cons += Jaccard(sets[b*T+t], sets[b*T+t+1])
			n++
		}
	}
	if n > 0 {
		cons /= float64(n)
	}
	pairs := randomPairs(B, T, max(n, 1), seed)
	for _, p := range pairs {
		random += Jaccard(sets[p[0]*T+p[1]], sets[p[2]*T+p[3]])
	}
	if len(pairs) > 0 {
		random /= float64(len(pairs))
	}
	return cons, random
}

// RouterHealth summarises one router's choices (brief §7).
type RouterHealth struct {
	Name string
	// Load is f_j, each routed group's share of the (token, slot)
	// assignments (Σ f = 1).
	Load []float64
	// CV is std/mean of Load; Entropy is H(f)/ln N_r (1: perfectly even).
	CV, Entropy, MinLoad, MaxLoad float64
	// Dead counts groups with f_j < 0.1/N_r.
	Dead int
	// Persistence is the mean Jaccard(T_t, T_{t+1}) of consecutive tokens;
	// Random the same for random pairs from different sequences.
	Persistence, Random float64
	Tokens              int
}

// HealthOf computes a router's health from its assignment counts per routed
// group and the persistence sums.
func HealthOf(name string, counts []float64, cons, random float64, tokens int) RouterHealth {
	h := RouterHealth{Name: name, Persistence: cons, Random: random, Tokens: tokens}
	total := 0.0
	for _, c := range counts {
		total += c
	}
	Nr := len(counts)
	if total == 0 || Nr == 0 {
		return h
	}
	h.Load = make([]float64, Nr)
	h.MinLoad = math.Inf(1)
	mean, ss := 1/float64(Nr), 0.0
	for j, c := range counts {
		f := c / total
		h.Load[j] = f
		h.MinLoad, h.MaxLoad = min(h.MinLoad, f), max(h.MaxLoad, f)
		ss += (f - mean) * (f - mean)
		if f > 0 {
			h.Entropy -= f * math.Log(f)
		}
		if f < 0.1/float64(Nr) {
			h.Dead++
		}
	}
	h.CV = math.Sqrt(ss/float64(Nr)) / mean
	if Nr > 1 {
		h.Entropy /= math.Log(float64(Nr))
	} else {
		h.Entropy = 1
	}
	return h
}

// RouterStats accumulates every router's choices over Forwards (set
// Model.Stats): assignment counts per routed group and choice persistence.
type RouterStats struct {
	Seed    uint64
	names   []string
	routers map[string]*routerAcc
}

type routerAcc struct {
	counts           []float64
	cons, random     float64
	nCons, nRandom   int
	tokens, forwards int
}

// NewRouterStats starts empty statistics; seed draws the random pairs.
func NewRouterStats(seed uint64) *RouterStats {
	return &RouterStats{Seed: seed, routers: map[string]*routerAcc{}}
}

// add records route r of a [B, T] batch under router name.
func (s *RouterStats) add(name string, r *Route, B, T int) {
	top := r.Top.Int64s()
	Nr, K := r.P.Size(1), r.Top.Size(1)
	acc, ok := s.routers[name]
	if !ok {
		acc = &routerAcc{counts: make([]float64, Nr)}
		s.routers[name] = acc
		s.names = append(s.names, name)
	}
	sets := make([][]int, B*T)
	for i := range sets {
		set := make([]int, K)
		for k := range set {
			set[k] = int(top[i*K+k])
			acc.counts[set[k]]++
		}
		slices.Sort(set)
		sets[i] = set
	}
	cons, random := persistence(sets, B, T, s.Seed+uint64(acc.forwards))
	if T > 1 {
		n := B * (T - 1)
		acc.cons += cons * float64(n)
		acc.nCons += n
		if B > 1 {
			acc.random += random * float64(n)
			acc.nRandom += n
		}
	}
	acc.tokens += B * T
	acc.forwards++
}

// Health returns every router's health, in the order first seen.
func (s *RouterStats) Health() []RouterHealth {
	out := make([]RouterHealth, 0, len(s.names))
	for _, name := range s.names {
		a := s.routers[name]
		cons, random := 0.0, 0.0
		if a.nCons > 0 {
			cons = a.cons / float64(a.nCons)
		}
		if a.nRandom > 0 {
			random = a.random / float64(a.nRandom)
		}
		out = append(out, HealthOf(name, a.counts, cons, random, a.tokens))
	}
	return out
}
