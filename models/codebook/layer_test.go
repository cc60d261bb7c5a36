package codebook

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// newTestLayer makes a layer with the given codes [G, C, d].
func newTestLayer(t *testing.T, G, C, K, d int, codes []float64) (*Layer, *nn.Store) {
	t.Helper()
	s := nn.NewStore()
	t.Cleanup(s.Close)
	l, err := NewLayer(s.Root().Sub("cb"), G*d, G, C, K)
	require.NoError(t, err)
	if codes != nil {
		torch.WithScope(func() { l.Codes.CopyFrom(torch.FromSlice(codes, []int{G, C, d})) })
	}
	return l, s
}

func TestLayerHandWorked(t *testing.T) {
	// Codes c0 = (1, 0), c1 = (0, 2), c2 = (−1, −1). The input (3, 1) normalises
	// to a ≈ (1, −1); cosine scores: c0 → 1, c1 → −1, c2 → 0.
	codes := []float64{1, 0, 0, 2, -1, -1}
	for _, c := range []struct {
		k       int
		wantIDs []int64
		wantOut []float64
	}{
		{1, []int64{0}, []float64{1, 0}},
		{2, []int64{0, 2}, []float64{0, -0.5}},
		{3, []int64{0, 2, 1}, []float64{0, 1.0 / 3}},
	} {
		l, _ := newTestLayer(t, 1, 3, c.k, 2, codes)
		l.Record = true
		torch.WithScope(func() {
			x := torch.FromSlice([]float32{3, 1}, []int{1, 1, 2})
			out := l.Forward(x)
			require.Equal(t, c.wantIDs, l.IDs().Int64s())
			require.InDeltaSlice(t, c.wantOut, out.Float64s(), 1e-6)
			// mse = ‖y − a‖² with a = (1, −1)/√(1+eps)
			a := 1 / math.Sqrt(1+1e-5)
			want := (c.wantOut[0]-a)*(c.wantOut[0]-a) + (c.wantOut[1]+a)*(c.wantOut[1]+a)
			require.InDelta(t, want, l.MSE().Item(), 1e-5)
		})
		l.Close()
	}
}

// TestGradients: the input receives exactly the downstream gradient; a
// selected code receives downstream/k per selection plus the MSE gradient;
// unselected codes receive nothing.
func TestGradients(t *testing.T) {
	const G, C, K, d, N = 1, 5, 2, 3, 4
	torch.ManualSeed(3)
	l, _ := newTestLayer(t, G, C, K, d, nil)
	s := torch.NewScope()
	defer s.Close()
	a := torch.Randn([]int{N, G, d}, torch.Float32).SetRequiresGrad(true)
	w := torch.Randn([]int{N, G, d})
	out, ids, mse := l.Quantize(a, []int{1, N, d})
	out.Mul(w).Sum().Add(mse).Backward()

	require.InDeltaSlice(t, w.Float64s(), a.Grad().Float64s(), 1e-6, "straight-through: ∂L/∂a = w")

	// Expected code gradient, by hand.
	idv, av, wv := ids.Int64s(), a.Float64s(), w.Float64s()
	cv := l.Codes.Detach().Float64s()
	want := make([]float64, C*d)
	for n := 0; n < N; n++ {
		q := make([]float64, d)
		for k := 0; k < K; k++ {
			for j := 0; j < d; j++ {
				q[j] += cv[int(idv[n*K+k])*d+j] / K
			}
		}
		for k := 0; k < K; k++ {
			c := int(idv[n*K+k])
			for j := 0; j < d; j++ {
				want[c*d+j] += wv[n*d+j]/K + 2*(q[j]-av[n*d+j])/N/K
			}
		}
	}
	got := l.Codes.Grad().Float64s()
	require.InDeltaSlice(t, want, got, 1e-5)
	selected := map[int]bool{}
	for _, v := range idv {
		selected[int(v)] = true
	}
	for c := 0; c < C; c++ {
		if !selected[c] {
			require.Equal(t, []float64{0, 0, 0}, got[c*d:(c+1)*d], "unselected code %d gets no gradient", c)
		}
	}
	require.Less(t, len(selected), C, "the test needs an unselected code")
}

// TestGroupEqualsSeparateLayers: a group layer of G codebooks equals G
// single codebooks on the input's chunks.
func TestGroupEqualsSeparateLayers(t *testing.T) {
	const G, C, K, d = 3, 7, 2, 4
	torch.ManualSeed(5)
	group, _ := newTestLayer(t, G, C, K, d, nil)
	s := torch.NewScope()
	defer s.Close()
	torch.NoGrad(func() {
		group.LNW.CopyFrom(torch.Rand([]int{G, d}).AddScalar(0.5))
		group.LNB.CopyFrom(torch.Randn([]int{G, d}))
	})
	x := torch.Randn([]int{2, 5, G * d})
	out := group.Forward(x)
	var parts []*torch.Tensor
	mse := 0.0
	for g := 0; g < G; g++ {
		single, _ := newTestLayer(t, 1, C, K, d, nil)
		torch.NoGrad(func() {
			single.Codes.CopyFrom(group.Codes.Narrow(0, g, 1))
			single.LNW.CopyFrom(group.LNW.Narrow(0, g, 1))
			single.LNB.CopyFrom(group.LNB.Narrow(0, g, 1))
		})
		parts = append(parts, single.Forward(x.Narrow(-1, g*d, d)))
		mse += single.MSE().Item()
	}
	require.Less(t, out.Sub(torch.Cat(parts, -1)).Abs().Amax().Item(), 1e-6)
	require.InDelta(t, mse, group.MSE().Item(), 1e-4)
}

// TestChunkedSelectionMatchesWhole: scoring in token chunks changes nothing.
func TestChunkedSelectionMatchesWhole(t *testing.T) {
	torch.ManualSeed(9)
	l, _ := newTestLayer(t, 2, 50, 3, 8, nil)
	s := torch.NewScope()
	defer s.Close()
	a := torch.Randn([]int{37, 2, 8})
	whole := l.Select(a).Int64s()
	l.ChunkElems = 2 * 50 * 5 // five tokens per chunk
	require.Equal(t, whole, l.Select(a).Int64s())
}

func TestInterventions(t *testing.T) {
	torch.ManualSeed(11)
	const G, C, K, d, T = 2, 6, 2, 3, 5
	l, _ := newTestLayer(t, G, C, K, d, nil)
	l.Record = true
	s := torch.NewScope()
	defer s.Close()
	x := torch.Randn([]int{1, T, G * d})
	l.Forward(x)
	plain := l.IDs().Int64s()

	// Disabled codes are never chosen: disable what group 0 chose at position 0.
	var off []int
	for k := 0; k < K; k++ {
		off = append(off, int(plain[k]))
	}
	l.Intervention = &Intervention{Disable: map[int][]int{0: off}}
	l.Forward(x)
	got := l.IDs().Int64s()
	for i := 0; i < T; i++ {
		for k := 0; k < K; k++ {
			require.NotContains(t, off, int(got[(i*G+0)*K+k]))
		}
	}

	// A patched id appears where asked, and only there.
	l.Intervention = &Intervention{Patches: []Patch{{Group: 1, Slot: K - 1, Code: 4, Positions: []int{2, -1}}}}
	l.Forward(x)
	got = l.IDs().Int64s()
	for i := 0; i < T; i++ {
		id := got[(i*G+1)*K+K-1]
		if i == 2 || i == T-1 {
			require.Equal(t, int64(4), id)
		} else {
			require.Equal(t, plain[(i*G+1)*K+K-1], id)
		}
	}

	// Blocked slots contribute zero but still count in the divisor: with every
	// slot blocked the output is zero; with all slots set to one code the
	// output is that code.
	l.Intervention = &Intervention{Patches: []Patch{{Group: 0, Slot: AllSlots, Code: Blocked}}}
	out := l.Forward(x)
	require.Equal(t, 0.0, out.Narrow(-1, 0, d).Abs().Sum().Item())
	l.Intervention = &Intervention{Patches: []Patch{{Group: 0, Slot: 0, Code: Blocked}, {Group: 0, Slot: 1, Code: 3}}}
	out = l.Forward(x)
	half := l.Codes.Select(0, 0).Select(0, 3).DivScalar(K)
	for i := 0; i < T; i++ {
		require.Less(t, out.Select(1, i).Select(0, 0).Narrow(-1, 0, d).Sub(half).Abs().Amax().Item(), 1e-6)
	}
	l.Intervention = &Intervention{Patches: []Patch{{Group: 1, Slot: AllSlots, Code: 2}}}
	out = l.Forward(x)
	code := l.Codes.Select(0, 1).Select(0, 2)
	require.Less(t, out.Narrow(-1, d, d).Sub(code).Abs().Amax().Item(), 1e-6)
}

func TestDeadCodesAndReplacement(t *testing.T) {
	torch.ManualSeed(2)
	l, s := newTestLayer(t, 1, 8, 1, 4, nil)
	sc := torch.NewScope()
	defer sc.Close()
	x := torch.Randn([]int{1, 3, 4})
	require.True(t, s.Training())
	l.Forward(x)
	used := 0
	for _, c := range l.Counts.Int64s() {
		if c > 0 {
			used++
		}
	}
	require.InDelta(t, float64(8-used)/8, l.DeadFraction(), 1e-9)
	// One count per forward for each code selected at least once (official).
	require.Equal(t, float64(used), float64(sum(l.Counts.Int64s())))
	before := l.Codes.Detach().Clone()
	n := l.ReplaceDead(x, 0)
	require.Equal(t, 8-used, n)
	require.Equal(t, 1.0, l.DeadFraction(), "counts reset")
	// Live codes are unchanged; each replaced code is one of the normalised inputs.
	a := l.Normalize(x).Reshape(3, 4).Float64s()
	after := l.Codes.Detach().Float64s()
	prev := before.Float64s()
	for c := 0; c < 8; c++ {
		row := after[c*4 : c*4+4]
		if equal(row, prev[c*4:c*4+4]) {
			continue
		}
		found := false
		for i := 0; i < 3; i++ {
			found = found || approx(row, a[i*4:i*4+4])
		}
		require.True(t, found, "code %d replaced by an input", c)
	}
}

func TestKMeansInitGroups(t *testing.T) {
	torch.ManualSeed(4)
	l, _ := newTestLayer(t, 2, 2, 1, 2, nil)
	s := torch.NewScope()
	defer s.Close()
	// Two well-separated clusters per group after normalisation: in 2-d the
	// LayerNorm maps every point to ±(1, −1), so the centroids must be those.
	x := torch.FromSlice([]float32{5, 0, 0, 5, 4, 1, 1, 4, 0, 5, 5, 0, 1, 4, 4, 1}, []int{4, 4})
	l.KMeansInit(x, 5)
	for g := 0; g < 2; g++ {
		c := l.Codes.Select(0, g).Float64s()
		first := []float64{c[0], c[1]}
		second := []float64{c[2], c[3]}
		require.InDelta(t, 0, first[0]+first[1], 1e-4)
		require.InDelta(t, 0, second[0]+second[1], 1e-4)
		require.InDelta(t, -first[0], second[0], 1e-4, "group %d has both clusters", g)
		require.InDelta(t, 1, math.Abs(first[0]), 1e-3)
	}
}

func sum(xs []int64) int64 {
	s := int64(0)
	for _, x := range xs {
		s += x
	}
	return s
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func approx(a, b []float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-5 {
			return false
		}
	}
	return true
}

// TestSelectIsFP32UnderAutocast: inside a bf16 autocast region the chosen
// codes are those of the fp32 computation, while the same scores taken in
// bf16 would pick other codes for some tokens (so the fp32 island matters).
func TestSelectIsFP32UnderAutocast(t *testing.T) {
	torch.ManualSeed(4)
	const G, C, K, d = 2, 2000, 4, 16
	l, _ := newTestLayer(t, G, C, K, d, nil)
	s := torch.NewScope()
	defer s.Close()
	a := torch.Randn([]int{64, G, d})
	want := l.Select(a).Int64s()
	var got []int64
	naive := 0
	torch.Autocast(torch.DeviceCPU, torch.BFloat16, func() {
		got = l.Select(a).Int64s()
		// The naive path: scores in bf16 (what autocast does to a matmul).
		norm := l.Codes.Div(l.Codes.NormKeep(2, -1).ClampMin(1e-12))
		scores := a.Transpose(0, 1).Bmm(norm.Transpose(1, 2)) // [G, N, C]
		require.Equal(t, torch.BFloat16, scores.DType())
		_, idx := scores.TopK(K, -1)
		bf := idx.Transpose(0, 1).Contiguous().Int64s()
		for i := range bf {
			if bf[i] != want[i] {
				naive++
			}
		}
	})
	require.Equal(t, want, got)
	require.Positive(t, naive, "bf16 scores pick different codes somewhere among %d", C)
	t.Logf("bf16 scores would change %d of %d chosen ids", naive, len(want))
}
