package torch

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCodebookQuantizeTopK pins the fused op's selection on scores that are
// exact: with d = 1 a code normalises to ±1 (or stays 0), so every score is
// ±a or 0 and most of a row ties. The ids must be the k best by score, the
// lower index first among equal scores, NaN never selected (−1 where fewer
// than k scores are numbers), whether the row takes the lane-maximum path
// (C ≥ 64, with and without a tail past a multiple of 64), overflows its
// candidate buffer (thousands of tied scores) or is scanned plainly (C < 64).
func TestCodebookQuantizeTopK(t *testing.T) {
	cases := []struct {
		name    string
		C, k    int
		codes   func(r *rand.Rand, c int) float64
		special []float64 // extra inputs a after the random ones
	}{
		{"random signs, C = 200 (a tail of 8)", 200, 8, randomSign(0.5), []float64{0, math.NaN()}},
		{"random signs, C = 1024, k = 32", 1024, 32, randomSign(0.5), []float64{0}},
		{"mostly ties, C = 4000 (candidate overflow)", 4000, 8, randomSign(0.95), []float64{0}},
		{"zero codes among them, C = 640", 640, 8, func(r *rand.Rand, c int) float64 {
			if c%3 == 0 {
				return 0
			}
			return randomSign(0.3)(r, c)
		}, []float64{math.NaN()}},
		{"C = 40 < 64 lanes", 40, 8, randomSign(0.5), nil},
		{"k = 1, C = 128", 128, 1, randomSign(0.5), nil},
		// k ≤ 8 with at least 8 blocks of 16 takes topk_row8 on AVX2 CPUs.
		{"k = 4, C = 1024", 1024, 4, randomSign(0.5), []float64{0, math.NaN()}},
		{"k = 8, C = 1000 (62 blocks, a tail of 8)", 1000, 8, randomSign(0.5), []float64{0}},
		{"k = 8, C = 136 (8 blocks)", 136, 8, randomSign(0.7), nil},
		{"k = 8, C = 4096 (the most blocks)", 4096, 8, randomSign(0.5), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			r := rand.New(rand.NewSource(int64(tc.C)))
			code := make([]float32, tc.C)
			for c := range code {
				code[c] = float32(tc.codes(r, c))
			}
			var a []float32
			for i := 0; i < 50; i++ {
				a = append(a, float32(r.NormFloat64()))
			}
			for _, v := range tc.special {
				a = append(a, float32(v))
			}
			N := len(a)
			x := FromSlice(a, []int{N, 1, 1})
			codes := FromSlice(code, []int{1, tc.C, 1})
			_, ids, _ := CodebookQuantize(x, codes, tc.k, 0)
			got := ids.Int64s()
			for n, av := range a {
				want := topKExact(av, code, tc.k)
				require.Equal(t, want, got[n*tc.k:(n+1)*tc.k], "token %d (a = %v)", n, av)
			}
		})
	}
}

// TestCodebookTopKOfScores: with Gaussian inputs and codes (d > 1: no
// ties, a dozen candidates a row — TestCodebookQuantizeTopK's d = 1 rows are
// all ties) the op's ids are the k best of its own scores (CodebookScores:
// the same kernel, the same floats), best first, the lower index first
// among equals.
func TestCodebookTopKOfScores(t *testing.T) {
	cases := []struct{ N, G, d, C, k int }{
		{64, 1, 16, 1024, 8}, {40, 4, 8, 1030, 16}, {20, 2, 32, 10000, 3}, {30, 1, 8, 1000, 1}, {25, 3, 5, 50, 8},
		{30, 2, 24, 300, 20}, {40, 1, 256, 1024, 8}, {17, 1, 7, 33, 16},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			ManualSeed(uint64(tc.C + tc.k))
			checkTopKOfScores(t, Randn([]int{tc.N, tc.G, tc.d}), Randn([]int{tc.G, tc.C, tc.d}), tc.k)
		})
	}
}

// TestCodebookScreen: where the CPU has AVX512_BF16 the op scores in
// bfloat16 first and recomputes exactly only the codes that can be among
// the k best (codebook.cc's screen); its ids must still be the k best of the
// exact scores. Codes made to lie closer together than bfloat16 resolves
// (64 directions, 16 codes each at 1e-4 of one another, and exact copies:
// ties), rows close to those directions, rows of large and of tiny norm,
// and rows past the screen's range (scored exactly) check it. (With the
// screen's margin set to zero, "near ties" fails.)
func TestCodebookScreen(t *testing.T) {
	s := NewScope()
	defer s.Close()
	ManualSeed(7)
	const G, C, d, N = 2, 1024, 64, 200
	base := Randn([]int{G, C / 16, 1, d}).Expand(G, C/16, 16, d)
	codes := base.Add(Randn([]int{G, C / 16, 16, d}).MulScalar(1e-4)).Reshape(G, C, d)
	// Every 16th code's neighbour is its exact copy: equal scores.
	cs := codes.Float32s()
	for g := 0; g < G; g++ {
		for c := 0; c < C; c += 16 {
			copy(cs[(g*C+c+1)*d:(g*C+c+2)*d], cs[(g*C+c)*d:(g*C+c+1)*d])
		}
	}
	codes = FromSlice(cs, []int{G, C, d})
	near := base.Reshape(G, C, d).Narrow(1, 0, N).Transpose(0, 1).Add(Randn([]int{N, G, d}).MulScalar(0.01))
	for _, tc := range []struct {
		name string
		a    *Tensor
		k    int
	}{
		{"near ties", near, 8},
		{"near ties, k=16", near, 16},
		{"near ties, k=20", near, 20},
		{"norm 1e15", near.MulScalar(1e15), 8},
		{"norm 1e-30", near.MulScalar(1e-30), 8},
		{"norm 1e19 (exact)", near.MulScalar(1e19), 8},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTopKOfScores(t, tc.a, codes, tc.k) })
	}
}

// checkTopKOfScores requires CodebookQuantize's ids for a [N, G, d] to be
// the k best of each row of CodebookScores, in order, the lower index
// first among equal scores.
func checkTopKOfScores(t *testing.T, a, codes *Tensor, k int) {
	t.Helper()
	sh := a.Shape()
	N, G, C := sh[0], sh[1], codes.Shape()[1]
	_, ids, _ := CodebookQuantize(a, codes, k, 0)
	got, scores := ids.Int64s(), CodebookScores(a, codes).Float32s()
	for r := 0; r < N*G; r++ {
		row := scores[r*C : (r+1)*C]
		order := make([]int, C)
		for c := range order {
			order[c] = c
		}
		sort.SliceStable(order, func(i, j int) bool { return row[order[i]] > row[order[j]] })
		for j := 0; j < k; j++ {
			require.Equal(t, int64(order[j]), got[r*k+j], "row %d, rank %d", r, j)
		}
	}
}

// TestGroupLayerNorm: LayerNorm with a gain and bias per group (weight
// and bias [G, d] over x [..., G, d]) agrees in float32 — the shim's own
// node on the CPU — with libtorch's LayerNorm times the gain plus the bias
// in float64: the output and the gradients of x, the gain and the bias,
// and, with create_graph, a second backward through x's gradient. Bad
// shapes are errors naming them.
func TestGroupLayerNorm(t *testing.T) {
	cases := [][]int{{37, 4, 64}, {5, 3, 7}, {2, 65, 1, 33}, {3, 16, 4, 48}}
	for _, shape := range cases {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			ManualSeed(uint64(len(shape) * shape[len(shape)-1]))
			gd := shape[len(shape)-2:]
			x := Randn(shape).MulScalar(3).AddScalar(1)
			w, b := Randn(gd), Randn(gd)
			readout := Randn(shape)
			// run returns y, then ∂/∂(x, w, b) of Σ y·readout, then x's
			// gradient after a second backward of Σ (∂x)² through it.
			run := func(dtype DType, f func(x, w, b *Tensor) *Tensor) []*Tensor {
				xs := []*Tensor{x.To(dtype).Detach().SetRequiresGrad(true), w.To(dtype).Detach().SetRequiresGrad(true),
					b.To(dtype).Detach().SetRequiresGrad(true)}
				y := f(xs[0], xs[1], xs[2])
				y.Mul(readout.To(dtype)).Sum().Backward()
				out := []*Tensor{y.Detach(), xs[0].Grad().Clone(), xs[1].Grad().Clone(), xs[2].Grad().Clone()}
				x2 := x.To(dtype).Detach().SetRequiresGrad(true)
				f(x2, xs[1].Detach(), xs[2].Detach()).Mul(readout.To(dtype)).Sum().BackwardWith(nil, true, true)
				gx := x2.Grad()
				x2.SetGrad(nil)
				gx.Square().Sum().Backward()
				return append(out, x2.Grad().Clone())
			}
			got := run(Float32, func(x, w, b *Tensor) *Tensor { return LayerNorm(x, 1, w, b, 1e-5) })
			want := run(Float64, func(x, w, b *Tensor) *Tensor { return LayerNorm(x, 1, nil, nil, 1e-5).Mul(w).Add(b) })
			worst := requireNearFloat64(t, got, want, 1e-5, "group layer norm")
			t.Logf("%v: y, ∂x, ∂w, ∂b and the second-order ∂x within %.2g of float64's (bound 1e-5)", shape, worst)
		})
	}
	s := NewScope()
	defer s.Close()
	for _, bad := range []struct{ x, w, b []int }{{[]int{4, 3, 8}, []int{4, 8}, []int{4, 8}}, {[]int{4, 3, 8}, []int{3, 8}, []int{8}}, {[]int{8}, []int{1, 8}, []int{1, 8}}} {
		err := Try(func() { LayerNorm(Randn(bad.x), 1, Randn(bad.w), Randn(bad.b), 1e-5) })
		require.ErrorContains(t, err, "must be the input's last two dims", "%v", bad)
	}
}

// TestCodebookCount: a code's count grows by one per call that selects it,
// however often the call lists it; blocked slots (−1) and ids past C count
// nothing; counts accumulate over calls, on both of the op's paths; bad
// shapes and dtypes are errors.
func TestCodebookCount(t *testing.T) {
	s := NewScope()
	defer s.Close()
	const N, G, K, C = 50, 3, 4, 20
	r := rand.New(rand.NewSource(9))
	counts := Zeros([]int{G, C}, Int64)
	// The same counts in a transposed view: not contiguous, it takes the op's
	// other path (tensor ops), which must agree.
	countsT := Zeros([]int{C, G}, Int64).Transpose(0, 1)
	want := make([]int64, G*C)
	for call := 0; call < 3; call++ {
		ids := make([]int64, N*G*K)
		seen := make([]bool, G*C)
		for i := range ids {
			ids[i] = int64(r.Intn(C+4)) - 2 // −2 … C+1: blocked and out-of-range slots among them
			if g := i / K % G; ids[i] >= 0 && ids[i] < C {
				seen[g*C+int(ids[i])] = true
			}
		}
		for i, v := range seen {
			if v {
				want[i]++
			}
		}
		CodebookCount(FromSlice(ids, []int{N, G, K}), counts)
		CodebookCount(FromSlice(ids, []int{N, G, K}), countsT)
		require.Equal(t, want, counts.Int64s(), "after call %d", call+1)
		require.Equal(t, want, countsT.Contiguous().Int64s(), "transposed counts, after call %d", call+1)
	}
	for _, bad := range []struct {
		name        string
		ids, counts *Tensor
		msg         string
	}{
		{"ids not 3-d", Zeros([]int{N, G}, Int64), counts, "need ids [N, G, k]"},
		{"groups differ", Zeros([]int{N, G + 1, K}, Int64), counts, "need ids [N, G, k]"},
		{"float ids", Zeros([]int{N, G, K}), counts, "int64"},
		{"float counts", Zeros([]int{N, G, K}, Int64), Zeros([]int{G, C}), "int64"},
	} {
		err := Try(func() { CodebookCount(bad.ids, bad.counts) })
		require.Error(t, err, bad.name)
		require.Contains(t, err.Error(), bad.msg, bad.name)
	}
}

// TestCodebookScores: the scores CodebookQuantize ranks. On CPUs with
// AVX-512 they come from the shim's own kernel and must be, bit for bit, one
// chain of float32 fused multiply-adds from zero over k = 0 … d−1 (written
// here with math.FMA in float64, rounded to float32 at every step: a double
// rounding could differ from a float32 FMA, so a fixed seed keeps the check
// reproducible); the shapes cover the kernel's tiles of 12 tokens
// (remainders 1 to 11), panels of 32 codes (a partial panel, C < 16, C = 1),
// the group codebook's d = 64, the MLP's d = 256, d = 1 and an odd d.
// Elsewhere they are one batched GEMM and must agree to float32 rounding.
func TestCodebookScores(t *testing.T) {
	cases := []struct{ N, G, d, C int }{
		{128, 4, 64, 1024}, {256, 1, 256, 1024}, {35, 3, 7, 33},
		{11, 2, 1, 100}, {1, 1, 5, 1}, {13, 1, 64, 15}, {24, 2, 129, 48},
	}
	exact := AVX512()
	for _, tc := range cases {
		s := NewScope()
		r := rand.New(rand.NewSource(int64(tc.N*tc.C + tc.d)))
		randn := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			return v
		}
		av := randn(tc.N * tc.G * tc.d)
		a := FromSlice(av, []int{tc.N, tc.G, tc.d})
		codes := FromSlice(randn(tc.G*tc.C*tc.d), []int{tc.G, tc.C, tc.d})
		norm := codes.Div(codes.NormKeep(2, -1).ClampMin(1e-12)).Float32s() // the op's normalisation
		got := CodebookScores(a, codes)
		require.Equal(t, []int{tc.N, tc.G, tc.C}, got.Shape(), "%+v", tc)
		g := got.Float32s()
		diff := 0
		for n := 0; n < tc.N; n++ {
			for gr := 0; gr < tc.G; gr++ {
				x := av[(n*tc.G+gr)*tc.d:]
				for c := 0; c < tc.C; c++ {
					y := norm[(gr*tc.C+c)*tc.d:]
					var acc float32
					for k := 0; k < tc.d; k++ {
						acc = float32(math.FMA(float64(x[k]), float64(y[k]), float64(acc)))
					}
					v := g[(n*tc.G+gr)*tc.C+c]
					if exact && math.Float32bits(v) != math.Float32bits(acc) ||
						!exact && math.Abs(float64(v-acc)) > 1e-5*(1+math.Abs(float64(acc))) {
						diff++
					}
				}
			}
		}
		require.Zero(t, diff, "%+v: %d of %d scores differ from the FMA chain (exact: %v)", tc, diff, len(g), exact)
		s.Close()
	}
	s := NewScope()
	defer s.Close()
	err := Try(func() { CodebookScores(Zeros([]int{2, 3, 4}), Zeros([]int{2, 5, 4})) })
	require.ErrorContains(t, err, "codebook_scores: need a [N, G, d] and codes [G, C, d]")
}

// randomSign draws codes of random magnitude, positive with probability p.
func randomSign(p float64) func(r *rand.Rand, c int) float64 {
	return func(r *rand.Rand, c int) float64 {
		m := 0.5 + 2*r.Float64()
		if r.Float64() < p {
			return m
		}
		return -m
	}
}

// topKExact ranks the scores a·sign(code) (0 for a zero code) by value, the
// lower index first among ties, NaN last and never selected.
func topKExact(a float32, code []float32, k int) []int64 {
	type sc struct {
		v float32
		c int
	}
	var all []sc
	for c, v := range code {
		var norm float32
		switch {
		case v > 0:
			norm = 1
		case v < 0:
			norm = -1
		}
		s := a * norm
		if s != s {
			continue
		}
		all = append(all, sc{s, c})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v > all[j].v })
	out := make([]int64, k)
	for j := range out {
		out[j] = -1
		if j < len(all) {
			out[j] = int64(all[j].c)
		}
	}
	return out
}

// groupedRef is GroupedMM composed from libtorch ops: gather, one product
// per group, concatenation, and the scatter-add by index_add.
func groupedRef(x, w *Tensor, loads []int, src, dest *Tensor, outRows int, transW bool) *Tensor {
	if src != nil {
		x = x.IndexSelect(0, src)
	}
	var parts []*Tensor
	start := 0
	for j, n := range loads {
		if n == 0 {
			continue
		}
		wj := w.Select(0, j)
		if transW {
			wj = wj.T()
		}
		parts = append(parts, x.Narrow(0, start, n).Matmul(wj))
		start += n
	}
	y := Cat(parts, 0)
	if dest == nil {
		return y
	}
	return Zeros([]int{outRows, y.Size(1)}, y.DType()).IndexPut([]*Tensor{dest}, y, true)
}

func TestGroupedMM(t *testing.T) {
	loads := []int{3, 0, 4, 1} // a group without rows
	M := 8
	cases := []struct {
		name      string
		rows      int // x's rows
		src, dest []int64
		outRows   int
		transW    bool
	}{
		{"rows in place", M, nil, nil, 0, false},
		{"rows in place, wᵀ", M, nil, nil, 0, true},
		// Each of 4 tokens twice, in two groups: the sum over a token's groups.
		{"dest with repeats (the in projection)", M, nil, []int64{0, 2, 3, 1, 0, 2, 3, 1}, 4, false},
		// Gathered token rows, written to distinct (token, group) rows.
		{"src and dest (the out projection)", 4, []int64{0, 2, 3, 1, 0, 2, 3, 1}, []int64{0, 8, 12, 4, 2, 10, 14, 7}, 16, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			ManualSeed(3)
			p, q := 5, 6
			wShape := []int{len(loads), p, q}
			if c.transW {
				wShape = []int{len(loads), q, p}
			}
			x := Randn([]int{c.rows, p}, Float64, RequiresGrad)
			w := Randn(wShape, Float64, RequiresGrad)
			var src, dest *Tensor
			if c.src != nil {
				src = FromSlice(c.src, nil)
			}
			if c.dest != nil {
				dest = FromSlice(c.dest, nil)
			}
			got := GroupedMM(x, w, loads, src, dest, c.outRows, c.transW)
			want := groupedRef(x, w, loads, src, dest, c.outRows, c.transW)
			require.Equal(t, want.Shape(), got.Shape())
			require.InDelta(t, 0, got.Sub(want).Abs().Amax().Item(), 1e-12, "forward")
			// The backward against the reference's and finite differences.
			readout := Randn(got.Shape(), Float64)
			grads := func(y *Tensor) (*Tensor, *Tensor) {
				x.SetGrad(nil)
				w.SetGrad(nil)
				y.Mul(readout).Sum().Backward()
				return x.Grad().Clone(), w.Grad().Clone()
			}
			gx, gw := grads(got)
			rx, rw := grads(want)
			require.InDelta(t, 0, gx.Sub(rx).Abs().Amax().Item(), 1e-12, "∂x")
			require.InDelta(t, 0, gw.Sub(rw).Abs().Amax().Item(), 1e-12, "∂w")
			require.NoError(t, GradCheck(func(xs ...*Tensor) *Tensor {
				return GroupedMM(xs[0], xs[1], loads, src, dest, c.outRows, c.transW)
			}, []*Tensor{x, w}, GradCheckOptions{}))
		})
	}
	// Bad input is an error naming what is wrong, not a crash.
	for _, c := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"loads do not sum to the rows", func() {
			GroupedMM(Randn([]int{7, 5}), Randn([]int{4, 5, 6}), loads, nil, nil, 0, false)
		}, "rows"},
		{"dest out of range", func() {
			GroupedMM(Randn([]int{8, 5}), Randn([]int{4, 5, 6}), loads, nil, FromSlice([]int64{0, 1, 2, 3, 4, 5, 6, 9}, nil), 8, false)
		}, "outside [0, 8)"},
		{"wrong inner size", func() {
			GroupedMM(Randn([]int{8, 4}), Randn([]int{4, 5, 6}), loads, nil, nil, 0, false)
		}, "columns"},
		{"loads for another group count", func() {
			GroupedMM(Randn([]int{8, 5}), Randn([]int{3, 5, 6}), loads, nil, nil, 0, false)
		}, "groups"},
	} {
		WithScope(func() {
			err := Try(c.f)
			require.Error(t, err, c.name)
			require.Contains(t, err.Error(), c.msg, c.name)
		})
	}
}

func TestMonarch(t *testing.T) {
	s := NewScope()
	defer s.Close()
	ManualSeed(5)
	BT, N, g := 6, 4, 3
	y := Randn([]int{BT, N * g}, Float64, RequiresGrad)
	bd1 := Randn([]int{N, g, g}, Float64, RequiresGrad)
	bd2 := Randn([]int{g, N, N}, Float64, RequiresGrad)
	// The composition from libtorch ops (models/mohd before the fused op).
	ref := func(y, bd1, bd2 *Tensor) *Tensor {
		a := y.View(BT, N, g).Transpose(0, 1).Bmm(bd1)
		return a.Permute(2, 1, 0).Bmm(bd2).Permute(1, 2, 0).Reshape(BT, N*g)
	}
	got, want := Monarch(y, bd1, bd2), ref(y, bd1, bd2)
	require.Equal(t, want.Shape(), got.Shape())
	require.InDelta(t, 0, got.Sub(want).Abs().Amax().Item(), 1e-12, "forward")
	// One element by the formula: out[t, n·g+i] = Σ_m (Σ_j y[t, m·g+j]·bd1[m, j, i])·bd2[i, m, n].
	yv, b1, b2 := y.Float64s(), bd1.Float64s(), bd2.Float64s()
	tt, n, i := 4, 2, 1
	sum := 0.0
	for m := 0; m < N; m++ {
		inner := 0.0
		for j := 0; j < g; j++ {
			inner += yv[tt*N*g+m*g+j] * b1[(m*g+j)*g+i]
		}
		sum += inner * b2[(i*N+m)*N+n]
	}
	require.InDelta(t, sum, got.Float64s()[tt*N*g+n*g+i], 1e-12, "out[4, 2·g+1] by hand")
	readout := Randn(got.Shape(), Float64)
	grads := func(out *Tensor) []*Tensor {
		for _, p := range []*Tensor{y, bd1, bd2} {
			p.SetGrad(nil)
		}
		out.Mul(readout).Sum().Backward()
		return []*Tensor{y.Grad().Clone(), bd1.Grad().Clone(), bd2.Grad().Clone()}
	}
	gg, rg := grads(Monarch(y, bd1, bd2)), grads(ref(y, bd1, bd2))
	for k, name := range []string{"∂y", "∂bd1", "∂bd2"} {
		require.InDelta(t, 0, gg[k].Sub(rg[k]).Abs().Amax().Item(), 1e-12, name)
	}
	require.NoError(t, GradCheck(func(xs ...*Tensor) *Tensor { return Monarch(xs[0], xs[1], xs[2]) },
		[]*Tensor{y, bd1, bd2}, GradCheckOptions{}))
	err := Try(func() { Monarch(Randn([]int{BT, N*g + 1}), Randn([]int{N, g, g}), Randn([]int{g, N, N})) })
	require.Error(t, err)
	require.Contains(t, err.Error(), "does not fit")
}

// TestMonarchKernels checks the shim's own loops for the fusion against the
// composition from libtorch ops at the sizes that take each of them: groups
// of whole vectors (g = 8, 16, 32 in float32, g = 8 in float64), a g that
// does not fill a vector (g = 12), the largest (g = 64), group counts that leave a remainder in
// the blocked weight-gradient sums (N = 5, 6), token counts that leave a
// partial tile and more than one weight-gradient block (BT = 70, 300), and
// a y that is not contiguous. Two runs must be bit-identical, and so must
// runs on 1 and 2 threads (a fixed partition of the tokens).
func TestMonarchKernels(t *testing.T) {
	cases := []struct {
		BT, N, g int
		dtype    DType
		tol      float64
	}{
		{70, 16, 8, Float32, 2e-5},
		{300, 16, 32, Float32, 5e-5},
		{33, 5, 16, Float32, 2e-5},
		{64, 6, 12, Float32, 2e-5},
		{50, 4, 8, Float64, 1e-12},
		// g = 64, the largest the loops take.
		{70, 4, 64, Float32, 5e-5},
		{40, 3, 64, Float64, 1e-12},
	}
	for _, c := range cases {
		s := NewScope()
		ManualSeed(11)
		D := c.N * c.g
		// y as the transpose of a [D, BT] tensor: not contiguous.
		yt := Randn([]int{D, c.BT}, c.dtype)
		y := yt.Transpose(0, 1).Detach().SetRequiresGrad(true)
		bd1 := Randn([]int{c.N, c.g, c.g}, c.dtype).MulScalar(0.3).Detach().SetRequiresGrad(true)
		bd2 := Randn([]int{c.g, c.N, c.N}, c.dtype).MulScalar(0.3).Detach().SetRequiresGrad(true)
		readout := Randn([]int{c.BT, D}, c.dtype)
		ref := func() *Tensor {
			a := y.Reshape(c.BT, c.N, c.g).Transpose(0, 1).Bmm(bd1)
			return a.Permute(2, 1, 0).Bmm(bd2).Permute(1, 2, 0).Reshape(c.BT, D)
		}
		run := func(f func() *Tensor) []*Tensor {
			for _, p := range []*Tensor{y, bd1, bd2} {
				p.SetGrad(nil)
			}
			out := f()
			out.Mul(readout).Sum().Backward()
			return []*Tensor{out.Detach(), y.Grad().Clone(), bd1.Grad().Clone(), bd2.Grad().Clone()}
		}
		fused := func() *Tensor { return Monarch(y, bd1, bd2) }
		want := run(ref)
		var one, two, again []*Tensor
		onThreads(t, 1, func() { one = run(fused) })
		onThreads(t, 2, func() {
			two = run(fused)
			again = run(fused)
		})
		for k, name := range []string{"out", "∂y", "∂bd1", "∂bd2"} {
			scale := want[k].Abs().Amax().Item()
			for _, got := range [][]*Tensor{one, two} {
				require.InDelta(t, 0, got[k].Sub(want[k]).Abs().Amax().Item()/scale, c.tol,
					"BT %d N %d g %d %v: %s", c.BT, c.N, c.g, c.dtype, name)
			}
			require.Equal(t, two[k].Float64s(), again[k].Float64s(), "BT %d N %d g %d: %s differs between two runs", c.BT, c.N, c.g, name)
			require.Equal(t, one[k].Float64s(), two[k].Float64s(), "BT %d N %d g %d: %s differs between 1 and 2 threads", c.BT, c.N, c.g, name)
		}
		s.Close()
	}
}

// TestSwiGLU checks the fused gate against silu(a) ⊙ b composed from
// libtorch ops, forward and both halves' gradients: float32 rows whose
// half is a multiple of 8 and rows with a tail (n = 13), values far into
// both tails of the sigmoid, a non-contiguous input, float64 (the composed
// path) with finite differences, and an odd last dimension.
func TestSwiGLU(t *testing.T) {
	cases := []struct {
		name  string
		shape []int
		dtype DType
		scale float64
		tol   float64
	}{
		{"float32 [4, 5, 64]", []int{4, 5, 64}, Float32, 3, 1e-6},
		{"float32 [7, 26] (a tail of 5)", []int{7, 26}, Float32, 3, 1e-6},
		{"float32, |a| up to 100", []int{3, 48}, Float32, 40, 1e-6},
		{"float64 [5, 6]", []int{5, 6}, Float64, 2, 1e-12},
	}
	for _, c := range cases {
		s := NewScope()
		ManualSeed(3)
		x := Randn(c.shape, c.dtype).MulScalar(c.scale).Detach().SetRequiresGrad(true)
		n := c.shape[len(c.shape)-1] / 2
		ref := func(x *Tensor) *Tensor {
			h := x.Chunk(2, -1)
			return h[0].Silu().Mul(h[1])
		}
		readout := Randn(append(append([]int{}, c.shape[:len(c.shape)-1]...), n), c.dtype)
		run := func(f func(*Tensor) *Tensor) (out, grad *Tensor) {
			x.SetGrad(nil)
			out = f(x)
			out.Mul(readout).Sum().Backward()
			return out.Detach(), x.Grad().Clone()
		}
		got, gg := run(SwiGLU)
		want, wg := run(ref)
		require.Equal(t, want.Shape(), got.Shape(), c.name)
		rel := func(a, b *Tensor) float64 {
			return a.Sub(b).Abs().Div(b.Abs().AddScalar(1)).Amax().Item()
		}
		require.InDelta(t, 0, rel(got, want), c.tol, "%s: forward", c.name)
		require.InDelta(t, 0, rel(gg, wg), c.tol, "%s: gradient", c.name)
		if c.dtype == Float64 {
			require.NoError(t, GradCheck(func(xs ...*Tensor) *Tensor { return SwiGLU(xs[0]) }, []*Tensor{x}, GradCheckOptions{}))
		}
		s.Close()
	}
	s := NewScope()
	defer s.Close()
	// A transposed view: the op reads it through a contiguous copy.
	x := Randn([]int{16, 6}).Transpose(0, 1)
	h := x.Contiguous().Chunk(2, -1)
	require.InDelta(t, 0, SwiGLU(x).Sub(h[0].Silu().Mul(h[1])).Abs().Amax().Item(), 1e-6, "non-contiguous")
	err := Try(func() { SwiGLU(Randn([]int{3, 7})) })
	require.Error(t, err)
	require.Contains(t, err.Error(), "must be even")
}

// TestRouted checks RoutedIn and RoutedOut against their composition from
// libtorch ops on views of w (float64: forward and gradients to 1e-12,
// finite differences), with S = 3 shared rows and with none, a group
// without rows, and bad inputs.
// TestRoutedFloat32: in float32 on AVX-512 CPUs RoutedIn is one kernel of
// the shim's (each output one FMA chain: the shared steps, then the row's
// groups in order of group), and the other routed products — RoutedIn's
// gradient's gy·w[:S]ᵀ, RoutedOut's h·w[:S]ᵀ and its gradient's gys·w[:S]
// — are the shim's GEMM; the outputs and every input's gradient must agree
// with the same ops in float64 to float32 rounding, and RoutedIn's output
// must be that chain bit for bit, on one thread and on two. The size has
// partial tiles of 12 rows and blocks of 48 (R = 101), partial panels of
// 32 columns (n = 70, S = 37); each token picks K = 2 of the groups 0, 2
// and 3 (group 1 has no rows) in a random order, and each group's tokens
// come shuffled, so the routed products read their rows through an index
// and write into scattered output rows (gemm's indexes).
func TestRoutedFloat32(t *testing.T) {
	s := NewScope()
	defer s.Close()
	ManualSeed(5)
	G, K, g, R, S, n := 4, 2, 4, 101, 37, 70
	rng := rand.New(rand.NewSource(8))
	byGroup := make([][]int64, G) // the assignments a = t·K + k of each group
	for tk := 0; tk < R; tk++ {
		choice := []int{0, 2, 3}
		rng.Shuffle(len(choice), func(i, j int) { choice[i], choice[j] = choice[j], choice[i] })
		for k := 0; k < K; k++ {
			byGroup[choice[k]] = append(byGroup[choice[k]], int64(tk*K+k))
		}
	}
	loads := make([]int, G)
	var order, tok []int64
	for j, as := range byGroup {
		rng.Shuffle(len(as), func(a, b int) { as[a], as[b] = as[b], as[a] })
		loads[j] = len(as)
		for _, a := range as {
			order, tok = append(order, a), append(tok, a/int64(K))
		}
	}
	orderT, tokT := FromSlice(order, nil), FromSlice(tok, nil)
	leaves := func(dt DType) (xs, x, w, h *Tensor) {
		ManualSeed(6)
		xs, x, w, h = Randn([]int{R, S}), Randn([]int{R * K, g}), Randn([]int{S + G*g, n}), Randn([]int{R, n})
		return xs.To(dt).SetRequiresGrad(true), x.To(dt).SetRequiresGrad(true), w.To(dt).SetRequiresGrad(true), h.To(dt).SetRequiresGrad(true)
	}
	run := func(dt DType) []*Tensor {
		xs, x, w, h := leaves(dt)
		ManualSeed(7)
		r1, r2 := Randn([]int{R, n}).To(dt), Randn([]int{R, S + G*g}).To(dt)
		y := RoutedIn(xs, x, w, loads, orderT, R)
		yo := RoutedOut(h, w, loads, g, tokT)
		y.Mul(r1).Sum().Add(yo.Mul(r2).Sum()).Backward()
		return []*Tensor{y, yo, xs.Grad(), x.Grad(), w.Grad(), h.Grad()}
	}
	worst := requireNearFloat64(t, run(Float32), run(Float64), 1e-5, "routed")
	t.Logf("RoutedIn and RoutedOut, outputs and gradients: float32 within %.2g of float64's (bound 1e-5)", worst)
	if !AVX512() {
		return
	}
	// RoutedIn's output, bit for bit: row t's chain over its shared steps,
	// then its groups in order of group, on one thread and on two.
	xs0, x0, w0, _ := leaves(Float32)
	var y1, y2 *Tensor
	onThreads(t, 1, func() { y1 = RoutedIn(xs0, x0, w0, loads, orderT, R) })
	onThreads(t, 2, func() { y2 = RoutedIn(xs0, x0, w0, loads, orderT, R) })
	got := y2.Float32s()
	require.Equal(t, y1.Float32s(), got, "one thread and two differ")
	xsv, xv, wv := xs0.Float32s(), x0.Float32s(), w0.Float32s()
	groupOf := make([]int, R*K)
	for j, as := range byGroup {
		for _, a := range as {
			groupOf[a] = j
		}
	}
	diff := 0
	for tk := 0; tk < R; tk++ {
		first, second := tk*K, tk*K+1 // the row's assignments, in order of group
		if groupOf[second] < groupOf[first] {
			first, second = second, first
		}
		for c := 0; c < n; c++ {
			var acc float32
			fma := func(a, b float32) { acc = float32(math.FMA(float64(a), float64(b), float64(acc))) }
			for k := 0; k < S; k++ {
				fma(xsv[tk*S+k], wv[k*n+c])
			}
			for _, a := range []int{first, second} {
				for k := 0; k < g; k++ {
					fma(xv[a*g+k], wv[(S+groupOf[a]*g+k)*n+c])
				}
			}
			if math.Float32bits(acc) != math.Float32bits(got[tk*n+c]) {
				diff++
			}
		}
	}
	require.Zero(t, diff, "%d of %d outputs of RoutedIn differ from the FMA chain", diff, R*n)
}

func TestRouted(t *testing.T) {
	loads := []int{3, 0, 4, 1} // a group without rows
	G, g, M := len(loads), 2, 8
	for _, S := range []int{3, 0} {
		s := NewScope()
		ManualSeed(4)
		R, n := 4, 5
		// Each of 4 tokens in two groups (the in projection's dest), and
		// the out projection's (token, group) rows.
		tok := FromSlice([]int64{0, 2, 3, 1, 0, 2, 3, 1}, nil)
		// The in projection's x in order of tokens (row t·2 + k: token t's
		// k-th choice); order lists those rows sorted by group (tok's order).
		order := FromSlice([]int64{0, 4, 6, 2, 1, 5, 7, 3}, nil)
		dest := FromSlice([]int64{0, 8, 12, 6, 2, 10, 14, 7}, nil) // RoutedOut's rows t·G + j of [R·G, g]
		// w's routed rows as GroupedMM's [G, g, ·].
		groups := func(w *Tensor) *Tensor { return w.Narrow(0, S, G*g).View(G, g, w.Size(1)) }
		var xs *Tensor
		if S > 0 {
			xs = Randn([]int{R, S}, Float64, RequiresGrad)
		}
		x := Randn([]int{M, g}, Float64, RequiresGrad)
		w := Randn([]int{S + G*g, n}, Float64, RequiresGrad)
		inRef := func(xs, x, w *Tensor) *Tensor {
			y := groupedRef(x.IndexSelect(0, order), groups(w), loads, nil, tok, R, false)
			if S > 0 {
				y = y.Add(xs.Matmul(w.Narrow(0, 0, S)))
			}
			return y
		}
		h := Randn([]int{R, n}, Float64, RequiresGrad)
		outRef := func(h, w *Tensor) *Tensor {
			return Cat([]*Tensor{Linear(h, w.Narrow(0, 0, S), nil), groupedRef(h, groups(w), loads, tok, dest, R*G, true).View(R, G*g)}, 1)
		}
		check := func(name string, got, want []*Tensor, leaves []*Tensor) {
			for k := range got {
				require.Equal(t, want[k].Shape(), got[k].Shape(), "S %d: %s output %d", S, name, k)
				if got[k].Numel() > 0 {
					require.InDelta(t, 0, got[k].Sub(want[k]).Abs().Amax().Item(), 1e-12, "S %d: %s output %d", S, name, k)
				}
			}
			readouts := make([]*Tensor, len(got))
			for k := range got {
				readouts[k] = RandnLike(got[k])
			}
			grads := func(outs []*Tensor) []*Tensor {
				for _, l := range leaves {
					l.SetGrad(nil)
				}
				loss := Zeros(nil, Float64, CPU)
				for k, o := range outs {
					loss = loss.Add(o.Mul(readouts[k]).Sum())
				}
				loss.Backward()
				var gs []*Tensor
				for _, l := range leaves {
					gs = append(gs, l.Grad().Clone())
				}
				return gs
			}
			gg, rg := grads(got), grads(want)
			for k := range gg {
				require.InDelta(t, 0, gg[k].Sub(rg[k]).Abs().Amax().Item(), 1e-12, "S %d: %s gradient %d", S, name, k)
			}
		}
		inLeaves := []*Tensor{x, w}
		if S > 0 {
			inLeaves = append(inLeaves, xs)
		}
		check("RoutedIn", []*Tensor{RoutedIn(xs, x, w, loads, order, R)}, []*Tensor{inRef(xs, x, w)}, inLeaves)
		check("RoutedOut", []*Tensor{RoutedOut(h, w, loads, g, tok)}, []*Tensor{outRef(h, w)}, []*Tensor{h, w})
		require.NoError(t, GradCheck(func(v ...*Tensor) *Tensor {
			if S == 0 {
				return RoutedIn(nil, v[0], v[1], loads, order, R)
			}
			return RoutedIn(v[2], v[0], v[1], loads, order, R)
		}, inLeaves, GradCheckOptions{}))
		require.NoError(t, GradCheck(func(v ...*Tensor) *Tensor {
			return RoutedOut(v[0], v[1], loads, g, tok)
		}, []*Tensor{h, w}, GradCheckOptions{}))
		s.Close()
	}
	for _, c := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"shared rows without xs", func() {
			RoutedIn(nil, Randn([]int{M, g}), Randn([]int{3 + G*g, 5}), loads, FromSlice([]int64{0, 1, 2, 3, 0, 1, 2, 3}, nil), 4)
		}, "xs is missing"},
		{"order out of range", func() {
			RoutedIn(nil, Randn([]int{M, g}), Randn([]int{G * g, 5}), loads, FromSlice([]int64{0, 4, 6, 2, 1, 5, 7, 8}, nil), 4)
		}, "outside [0, 8)"},
		{"order repeats an assignment", func() {
			RoutedIn(nil, Randn([]int{M, g}), Randn([]int{G * g, 5}), loads, FromSlice([]int64{0, 4, 6, 2, 1, 5, 7, 7}, nil), 4)
		}, "repeats"},
		{"a row twice in one group", func() {
			RoutedIn(nil, Randn([]int{M, g}), Randn([]int{G * g, 5}), loads, FromSlice([]int64{0, 1, 6, 2, 4, 5, 7, 3}, nil), 4)
		}, "two assignments in group 0"},
		{"rows not a multiple", func() {
			RoutedIn(nil, Randn([]int{M, g}), Randn([]int{G * g, 5}), loads, FromSlice([]int64{0, 4, 6, 2, 1, 5, 7, 3}, nil), 3)
		}, "not K per row"},
		{"xs without shared rows", func() {
			RoutedIn(Randn([]int{4, 3}), Randn([]int{M, g}), Randn([]int{G * g, 5}), loads, FromSlice([]int64{0, 1, 2, 3, 0, 1, 2, 3}, nil), 4)
		}, "no shared rows"},
		{"w too small for the groups", func() {
			RoutedOut(Randn([]int{4, 5}), Randn([]int{G*g - 1, 5}), loads, g, FromSlice([]int64{0, 1, 2, 3, 0, 1, 2, 3}, nil))
		}, "fewer than"},
		{"x of another width", func() {
			RoutedOut(Randn([]int{4, 6}), Randn([]int{G * g, 5}), loads, g, FromSlice([]int64{0, 1, 2, 3, 0, 1, 2, 3}, nil))
		}, "columns"},
		{"a row twice in a group", func() {
			RoutedOut(Randn([]int{4, 5}), Randn([]int{G * g, 5}), loads, g, FromSlice([]int64{0, 0, 2, 3, 0, 1, 2, 3}, nil))
		}, "row 0 twice in group 0"},
	} {
		WithScope(func() {
			err := Try(c.f)
			require.Error(t, err, c.name)
			require.Contains(t, err.Error(), c.msg, c.name)
		})
	}
	// No assignments at all (and no rows): each row is its shared product.
	WithScope(func() {
		for _, S := range []int{0, 3} {
			var xs *Tensor
			if S > 0 {
				xs = Randn([]int{4, S})
			}
			w := Randn([]int{S + G*g, 5})
			y := RoutedIn(xs, Zeros([]int{0, g}), w, []int{0, 0, 0, 0}, Zeros([]int{0}, Int64), 4)
			want := Zeros([]int{4, 5})
			if S > 0 {
				want = xs.Matmul(w.Narrow(0, 0, S))
			}
			require.InDelta(t, 0, y.Sub(want).Abs().Amax().Item(), 1e-5, "S %d: no assignments", S)
			require.Equal(t, []int{0, 5}, RoutedIn(nil, Zeros([]int{0, g}), Randn([]int{G * g, 5}), []int{0, 0, 0, 0}, Zeros([]int{0}, Int64), 0).Shape())
		}
	})
}

// TestLinearKernel: Linear on CPUs with AVX-512 in float32 is the shim's own
// GEMM, forward and backward. Each output must be, bit for bit, one chain of
// float32 fused multiply-adds from zero over k = 0 … K−1, then the bias added
// (written here as in TestCodebookScores); the shapes cover the kernel's
// tiles of 12 rows and panels of 32 columns (remainders, N < 16, N = 1),
// reductions longer than one K block of 256 (K = 300, 1000), more columns
// than one N block of 4096, more rows than one packed chunk of 2,304,
// products large enough to run on several threads
// (which must give the same bits as one),
// a batch of leading dimensions, and inputs that are transposed views. The
// gradients must match float64's to float32 rounding, also with create_graph
// (the node then makes them by differentiable ops: a second backward must
// match too). Elsewhere Linear is libtorch's and is held to the tolerance.
func TestLinearKernel(t *testing.T) {
	cases := []struct {
		lead     []int // x's leading dimensions (their product is M)
		K, N     int
		bias, xT bool // xT: x is the transpose of a [K, M] tensor
	}{
		{[]int{37}, 70, 45, true, false},
		{[]int{2, 3, 5}, 16, 1, true, false},
		{[]int{13}, 300, 33, false, true},
		{[]int{128}, 1000, 96, true, false},
		{[]int{300}, 64, 200, true, true},
		{[]int{3}, 5, 4100, true, false},
		{[]int{1}, 1, 15, false, false},
		{[]int{2500}, 20, 40, true, true},
		{[]int{50}, 300, 13, true, true}, // panels of 16 columns (N ≤ 16) over two K blocks
	}
	exact := AVX512()
	worst := 0.0 // the gradients' largest error, relative to 1 + their largest magnitude
	for _, tc := range cases {
		s := NewScope()
		M := 1
		for _, d := range tc.lead {
			M *= d
		}
		r := rand.New(rand.NewSource(int64(M*tc.K + tc.N)))
		randn := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			return v
		}
		xv, wv, bv := randn(M*tc.K), randn(tc.N*tc.K), randn(tc.N)
		leaves := func(dt DType) (x, w, b *Tensor) {
			x = FromSlice(xv, []int{M, tc.K})
			if tc.xT {
				x = x.T().Contiguous().T() // the same values, strides (1, M)
			}
			x = x.To(dt).SetRequiresGrad(true)
			w = FromSlice(wv, []int{tc.N, tc.K}).To(dt).SetRequiresGrad(true)
			if tc.bias {
				b = FromSlice(bv, []int{tc.N}).To(dt).SetRequiresGrad(true)
			}
			return x, w, b
		}
		shape := append(append([]int{}, tc.lead...), tc.K)
		x, w, b := leaves(Float32)
		var y1, y2 *Tensor // on one thread and on two: the same bits
		onThreads(t, 1, func() { y1 = Linear(x.View(shape...), w, b) })
		onThreads(t, 2, func() { y2 = Linear(x.View(shape...), w, b) })
		require.Equal(t, append(append([]int{}, tc.lead...), tc.N), y2.Shape(), "%+v", tc)
		if exact { // the BLAS need not give the same bits on one thread and two
			require.Equal(t, y1.Float32s(), y2.Float32s(), "%+v: one thread and two differ", tc)
		}
		got := y2.Float32s()
		diff := 0
		for i := 0; i < M; i++ {
			for j := 0; j < tc.N; j++ {
				var acc float32
				abs := 0.0 // Σ|x·w|: any order's rounding error is within (K+1)·2⁻²⁴ of it
				for k := 0; k < tc.K; k++ {
					acc = float32(math.FMA(float64(xv[i*tc.K+k]), float64(wv[j*tc.K+k]), float64(acc)))
					abs += math.Abs(float64(xv[i*tc.K+k]) * float64(wv[j*tc.K+k]))
				}
				if tc.bias {
					acc += bv[j]
					abs += math.Abs(float64(bv[j]))
				}
				v := got[i*tc.N+j]
				if exact && math.Float32bits(v) != math.Float32bits(acc) ||
					!exact && math.Abs(float64(v-acc)) > 2*float64(tc.K+1)*0x1p-24*abs {
					diff++
				}
			}
		}
		require.Zero(t, diff, "%+v: %d of %d outputs differ from the FMA chain (exact: %v)", tc, diff, len(got), exact)

		// Gradients, once plain and once with create_graph and a second
		// backward through the gradient of x.
		readout := randn(M * tc.N)
		grads := func(dt DType, second bool) []*Tensor {
			x, w, b := leaves(dt)
			y := Linear(x.View(shape...), w, b)
			gy := FromSlice(readout, y.Shape()).To(dt)
			if !second {
				y.Mul(gy).Sum().Backward()
			} else {
				y.BackwardWith(gy, false, true)
				gx := x.Grad()
				params := []*Tensor{x, w}
				if b != nil {
					params = append(params, b)
				}
				ZeroGrad(params, true)
				gx.Mul(gx).Sum().Backward()
			}
			out := []*Tensor{x.Grad(), w.Grad()}
			if b != nil {
				out = append(out, b.Grad())
			}
			return out
		}
		for _, second := range []bool{false, true} {
			var g32 []*Tensor
			onThreads(t, 2, func() { g32 = grads(Float32, second) })
			what := fmt.Sprintf("%+v second %v: gradients", tc, second)
			worst = max(worst, requireNearFloat64(t, g32, grads(Float64, second), 2e-5, what))
		}
		s.Close()
	}
	t.Logf("outputs equal to the FMA chain (exact: %v); gradients within %.2g of float64's (bound 2e-5)", exact, worst)
	// Products of at most 48 rows (tiles of 8 for m ≤ 8) by a B whose rows
	// are contiguous read B where it lies (weight gradients of MoHD's
	// groups and shared rows): still the chain, over two K blocks, a partial
	// panel and a partial tile; m = 49 packs B.
	for _, m := range []int{1, 5, 8, 12, 30, 48, 49} {
		WithScope(func() {
			K, N := 300, 45
			r := rand.New(rand.NewSource(int64(m)))
			av, bv := make([]float32, K*m), make([]float32, K*N)
			for i := range av {
				av[i] = float32(r.NormFloat64())
			}
			for i := range bv {
				bv[i] = float32(r.NormFloat64())
			}
			a := FromSlice(av, []int{K, m}).T() // Aᵀ's layout, as xᵀ in a weight gradient
			got := a.Matmul(FromSlice(bv, []int{K, N})).Float32s()
			diff := 0
			for i := 0; i < m; i++ {
				for j := 0; j < N; j++ {
					var acc float32
					for k := 0; k < K; k++ {
						acc = float32(math.FMA(float64(av[k*m+i]), float64(bv[k*N+j]), float64(acc)))
					}
					if v := got[i*N+j]; exact && math.Float32bits(v) != math.Float32bits(acc) ||
						!exact && math.Abs(float64(v-acc)) > 1e-3 {
						diff++
					}
				}
			}
			require.Zero(t, diff, "m = %d: %d of %d outputs differ from the FMA chain (exact: %v)", m, diff, m*N, exact)
		})
	}
	s := NewScope()
	defer s.Close()
	err := Try(func() { Linear(Zeros([]int{2, 3}), Zeros([]int{4, 5}), nil) })
	require.ErrorContains(t, err, "linear")
}

// TestAttentionKernel: Attention without a mask or dropout on CPUs with
// AVX-512 in float32 is the shim's own (GEMM by blocks of 48 rows, a causal
// block stopping at its last row's key); its output and the gradients of q,
// k and v must match libtorch's attention in float64 to float32 rounding,
// causal and not, with q, k and v as the heads' transposed views a GPT
// passes, lengths that leave partial blocks, a value width unlike the key
// width, and with create_graph (a second backward through q's gradient).
func TestAttentionKernel(t *testing.T) {
	cases := []struct {
		B, H, L, S, E, Ev int
		causal            bool
	}{
		{2, 3, 50, 50, 24, 24, true},
		{1, 2, 130, 130, 64, 64, true},
		{2, 2, 7, 61, 16, 8, false},
		{1, 1, 1, 1, 4, 4, true},
	}
	worst := 0.0 // the largest error, relative to 1 + the largest magnitude
	for _, tc := range cases {
		s := NewScope()
		ManualSeed(uint64(tc.L*tc.S + tc.E))
		// [B, L, H, E] storage, seen as [B, H, L, E]: the GPT's layout.
		qv, kv, vv := Randn([]int{tc.B, tc.L, tc.H, tc.E}), Randn([]int{tc.B, tc.S, tc.H, tc.E}), Randn([]int{tc.B, tc.S, tc.H, tc.Ev})
		gy := Randn([]int{tc.B, tc.H, tc.L, tc.Ev})
		run := func(dt DType, second bool) []*Tensor {
			q := qv.To(dt).Detach().SetRequiresGrad(true)
			k := kv.To(dt).Detach().SetRequiresGrad(true)
			v := vv.To(dt).Detach().SetRequiresGrad(true)
			y := Attention(q.Transpose(1, 2), k.Transpose(1, 2), v.Transpose(1, 2), nil, 0, tc.causal)
			g := gy.To(dt)
			if !second {
				y.Mul(g).Sum().Backward()
				return []*Tensor{y.Detach(), q.Grad(), k.Grad(), v.Grad()}
			}
			y.BackwardWith(g, false, true)
			gq := q.Grad()
			ZeroGrad([]*Tensor{q, k, v}, true)
			gq.Mul(gq).Sum().Backward()
			return []*Tensor{q.Grad(), k.Grad(), v.Grad()}
		}
		for _, second := range []bool{false, true} {
			var got []*Tensor
			onThreads(t, 2, func() { got = run(Float32, second) })
			worst = max(worst, requireNearFloat64(t, got, run(Float64, second), 1e-5, fmt.Sprintf("%+v second %v", tc, second)))
		}
		s.Close()
	}
	t.Logf("outputs and gradients within %.2g of float64's (bound 1e-5)", worst)
}

// TestRouteTopK checks RouteTopK against TopK and a stable sort of the
// chosen groups: Gaussian rows (float32 and float64, k from 1 to all
// groups), ties (the lower group first), NaN (the largest), and bad input.
func TestRouteTopK(t *testing.T) {
	s := NewScope()
	defer s.Close()
	ManualSeed(3)
	nan := float32(math.NaN())
	cases := []struct {
		name string
		p    *Tensor
		k    int
		want [][]int64 // each row's choice, when pinned
	}{
		{"gaussian k=2", Randn([]int{50, 10}), 2, nil},
		{"gaussian float64 k=3", Randn([]int{33, 7}, Float64), 3, nil},
		{"gaussian k=1", Randn([]int{20, 5}), 1, nil},
		{"all groups", Randn([]int{9, 4}), 4, nil},
		{"ties", FromSlice([]float32{1, 3, 3, 0, 2, 2, 2, 2, 5, 5, 5, 1}, []int{3, 4}), 2, [][]int64{{1, 2}, {0, 1}, {0, 1}}},
		{"NaN", FromSlice([]float32{1, nan, 3, 0, 2, 4, nan, nan}, []int{2, 4}), 2, [][]int64{{1, 2}, {2, 3}}},
	}
	for _, tc := range cases {
		top, order, loads := RouteTopK(tc.p, tc.k)
		R, G := tc.p.Size(0), tc.p.Size(1)
		require.Equal(t, []int{R, tc.k}, top.Shape(), tc.name)
		tv := top.Int64s()
		if tc.want != nil {
			for r, w := range tc.want {
				require.Equal(t, w, tv[r*tc.k:(r+1)*tc.k], "%s: row %d", tc.name, r)
			}
		} else {
			_, ref := tc.p.TopK(tc.k, -1)
			require.Equal(t, ref.Int64s(), tv, "%s: TopK's choice", tc.name)
		}
		// order: the assignments sorted by group, stable; loads: the counts.
		want := make([]int64, 0, R*tc.k)
		count := make([]int, G)
		for j := 0; j < G; j++ {
			for a, grp := range tv {
				if grp == int64(j) {
					want = append(want, int64(a))
					count[j]++
				}
			}
		}
		require.Equal(t, want, order.Int64s(), "%s: order", tc.name)
		require.Equal(t, count, loads, "%s: loads", tc.name)
	}
	for _, c := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"k too large", func() { RouteTopK(Randn([]int{4, 3}), 4) }, "outside [1, 3]"},
		{"k zero", func() { RouteTopK(Randn([]int{4, 3}), 0) }, "outside [1, 3]"},
		{"1-D", func() { RouteTopK(Randn([]int{4}), 1) }, "2-D"},
		{"integers", func() { RouteTopK(Ones([]int{4, 3}, Int64), 1) }, "floating point"},
	} {
		err := Try(c.f)
		require.Error(t, err, c.name)
		require.Contains(t, err.Error(), c.msg, c.name)
	}
}

// TestShortRows checks Softmax over a short last dimension and SquareSum
// (the shim's loops over rows of ≤ 64 entries, libtorch's ops beyond)
// against their composition from other ops: float32 outputs and gradients
// against float64's to float32 rounding, at rows of 1, 10, 64 (the loops)
// and 65 (libtorch's), and float64 finite differences; a second backward
// through the gradient (create_graph: the nodes' differentiable path).
func TestShortRows(t *testing.T) {
	for _, shape := range [][]int{{7, 10}, {3, 4, 64}, {5, 1}, {6, 65}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			ManualSeed(11)
			x0, r0 := Randn(shape).MulScalar(3), Randn(shape)
			run := func(dt DType) []*Tensor {
				x := x0.To(dt).Detach().SetRequiresGrad(true)
				r := r0.To(dt)
				p, e := x.Softmax(-1), SquareSum(x)
				p.Mul(r).Sum().Add(e.Mul(r.Select(-1, 0)).Sum()).Backward()
				return []*Tensor{p, e, x.Grad()}
			}
			worst := requireNearFloat64(t, run(Float32), run(Float64), 1e-5, "short rows")
			t.Logf("softmax and square sum, outputs and gradients: float32 within %.2g of float64's (bound 1e-5)", worst)
			// The composed reference, in float64.
			x := x0.To(Float64).Detach()
			ref := x.Sub(x.Amax(-1).Unsqueeze(-1)).Exp()
			ref = ref.Div(ref.Sum(-1).Unsqueeze(-1))
			require.Less(t, x.Softmax(-1).Sub(ref).Abs().Amax().Item(), 1e-12)
			require.Less(t, SquareSum(x).Sub(x.Mul(x).Sum(-1)).Abs().Amax().Item(), 1e-9)
			require.NoError(t, GradCheck(func(v ...*Tensor) *Tensor {
				return v[0].Softmax(-1).Mul(v[1]).Sum(-1).Add(SquareSum(v[0]))
			}, []*Tensor{x.Narrow(0, 0, 2).Contiguous().SetRequiresGrad(true), r0.To(Float64).Narrow(0, 0, 2).Contiguous()}, GradCheckOptions{}))
			// Second order: the gradient of Σ (∂L/∂x)² after a backward with
			// create_graph, through each node and through its composition.
			second := func(f func(*Tensor) *Tensor) *Tensor {
				xg := x.Clone().SetRequiresGrad(true)
				y := f(xg)
				r := r0.To(Float64)
				if y.Dim() < r.Dim() {
					r = r.Select(-1, 0)
				}
				y.Mul(r).Sum().BackwardWith(nil, true, true)
				gx := xg.Grad()
				xg.SetGrad(nil)
				gx.Square().Sum().Backward()
				return xg.Grad()
			}
			soft := second(func(v *Tensor) *Tensor { return v.Softmax(-1) })
			softRef := second(func(v *Tensor) *Tensor {
				q := v.Sub(v.Amax(-1).Unsqueeze(-1).Detach()).Exp()
				return q.Div(q.Sum(-1).Unsqueeze(-1))
			})
			require.Less(t, soft.Sub(softRef).Abs().Amax().Item(), 1e-9, "softmax, second order")
			sq := second(func(v *Tensor) *Tensor { return SquareSum(v) })
			sqRef := second(func(v *Tensor) *Tensor { return v.Mul(v).Sum(-1) })
			require.Less(t, sq.Sub(sqRef).Abs().Amax().Item(), 1e-9, "square sum, second order")
		})
	}
}

// TestGatheredRowsChain: a grouped product whose rows are gathered through
// an index (src) packs them by blocks of 16 transposed in registers (K ≥ 16,
// more than two panels of columns); each output must still be the chain of
// float32 FMAs from zero over k, bit for bit, for reductions of 16, 40
// (two blocks and a remainder) and 7 (no block).
func TestGatheredRowsChain(t *testing.T) {
	if !AVX512() {
		t.Skip("the shim's GEMM runs on AVX-512 CPUs only; elsewhere GroupedMM is libtorch's (TestGroupedMM)")
	}
	for _, p := range []int{16, 40, 7} {
		WithScope(func() {
			loads := []int{30, 0, 25}
			R, q := 40, 70
			r := rand.New(rand.NewSource(int64(p)))
			src := make([]int64, 55)
			for i := range src {
				src[i] = int64(r.Intn(R))
			}
			xv, wv := make([]float32, R*p), make([]float32, len(loads)*p*q)
			for i := range xv {
				xv[i] = float32(r.NormFloat64())
			}
			for i := range wv {
				wv[i] = float32(r.NormFloat64())
			}
			got := GroupedMM(FromSlice(xv, []int{R, p}), FromSlice(wv, []int{len(loads), p, q}), loads,
				FromSlice(src, nil), nil, 0, false).Float32s()
			diff, i := 0, 0
			for j, n := range loads {
				for e := i + n; i < e; i++ {
					for c := 0; c < q; c++ {
						var acc float32
						for k := 0; k < p; k++ {
							acc = float32(math.FMA(float64(xv[int(src[i])*p+k]), float64(wv[(j*p+k)*q+c]), float64(acc)))
						}
						if math.Float32bits(acc) != math.Float32bits(got[i*q+c]) {
							diff++
						}
					}
				}
			}
			require.Zero(t, diff, "p = %d: %d of %d outputs differ from the FMA chain", p, diff, len(got))
		})
	}
}
