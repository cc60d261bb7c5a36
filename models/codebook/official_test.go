package codebook

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/data/tokfsm"
	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// The tests of this file pin the official code's definitions
// (taufeeque9/codebook-features at 9bcbcf4) on small hand-computed cases;
// see the package doc's "Official code" section.

// Code counts: one per forward for every code selected at least once
// (official update_metrics), not one per selection; blocked slots count
// nothing.
func TestCountsPerForward(t *testing.T) {
	l, _ := newTestLayer(t, 2, 4, 2, 2, nil)
	torch.WithScope(func() {
		// [N = 3, G = 2, K = 2]: group 0 selects 0, 1, 0, 0, 1, 3; group 1
		// selects 2, 2, 2, −1, 0, 2.
		ids := torch.FromSlice([]int64{0, 1, 2, 2, 0, 0, 2, -1, 1, 3, 0, 2}, []int{3, 2, 2})
		l.count(ids)
		require.Equal(t, []int64{1, 1, 0, 1, 1, 0, 1, 0}, l.Counts.Int64s())
		l.count(ids)
		require.Equal(t, []int64{2, 2, 0, 2, 2, 0, 2, 0}, l.Counts.Int64s())
		require.InDelta(t, 3.0/8, l.DeadFraction(), 1e-12) // group 0: code 2; group 1: codes 1, 3
	})
}

// Dead-code replacement draws inputs without replacement, as the official
// x[torch.randperm(N)][:n], repeating the permutation when n > N.
func TestRandomPermutation(t *testing.T) {
	torch.ManualSeed(3)
	for _, c := range []struct{ N, n int }{{5, 3}, {5, 5}, {3, 7}, {1, 4}} {
		torch.WithScope(func() {
			got := randomPermutation(c.N, c.n, torch.CPU).Int64s()
			require.Len(t, got, c.n)
			first := got[:min(c.n, c.N)]
			seen := map[int64]bool{}
			for _, v := range first {
				require.True(t, v >= 0 && v < int64(c.N))
				require.False(t, seen[v], "no input drawn twice within the first N: %v", got)
				seen[v] = true
			}
			for i := c.N; i < c.n; i++ {
				require.Equal(t, got[i%c.N], got[i], "the permutation repeats: %v", got)
			}
		})
	}
	// Three dead codes and three inputs: the codes become the three inputs.
	torch.ManualSeed(2)
	l, _ := newTestLayer(t, 1, 4, 1, 4, nil)
	torch.WithScope(func() {
		l.Counts.CopyFrom(torch.FromSlice([]int64{1, 0, 0, 0}, []int{1, 4}))
		x := torch.Randn([]int{1, 3, 4})
		require.Equal(t, 3, l.ReplaceDead(x, 0))
		a := l.Normalize(x).Reshape(3, 4).Float64s()
		codes := l.Codes.Detach().Float64s()
		var used []int
		for c := 1; c < 4; c++ {
			for i := range 3 {
				if approx(codes[c*4:c*4+4], a[i*4:i*4+4]) {
					used = append(used, i)
				}
			}
		}
		slices.Sort(used)
		require.Equal(t, []int{0, 1, 2}, used)
	})
}

// The official first-transition accuracy takes a hard top k (torch.topk);
// ties go to the lower state.
func TestTopK(t *testing.T) {
	for _, c := range []struct {
		scores []float64
		k      int
		want   []int
	}{
		{[]float64{0.1, 0.3, 0.2, 0.4}, 2, []int{3, 1}},
		{[]float64{0.25, 0.25, 0.25, 0.25}, 2, []int{0, 1}},
		{[]float64{0.1, 0.3, 0.3, 0.3}, 2, []int{1, 2}},
		{[]float64{0.1, 0.3, 0.3, 0.3}, 4, []int{1, 2, 3, 0}},
		{[]float64{0.5, 0.5}, 5, []int{0, 1}},
	} {
		require.Equal(t, c.want, topK(c.scores, c.k), "%v k=%d", c.scores, c.k)
	}
}

// With a uniform model every next state ties: the official accuracy
// credits the k lowest states, tokfsm's shared ties credit Edges/States.
// The true distribution scores 1 either way.
func TestFirstTransitionOfficial(t *testing.T) {
	f, err := tokfsm.New(tokfsm.Config{States: 4, Edges: 2, Base: 2, SeqLen: 9, Seed: 10})
	require.NoError(t, err)
	// Successors 0 → {2, 3}, 1 → {1, 2}, 2 → {1, 2}, 3 → {2, 3}: the tied
	// top 2 is {0, 1}, which holds 0, 1, 1 and 0 successors.
	for s, want := range [][]int{{2, 3}, {1, 2}, {1, 2}, {2, 3}} {
		require.Equal(t, want, f.Successors(s))
	}
	uniform := func([]int32) []float64 { return []float64{0.5, 0.5, 0} }
	want := (0 + 0.5 + 0.5 + 0) / 4
	got, err := FirstTransitionOfficial(f, uniform)
	require.NoError(t, err)
	require.InDelta(t, want, got, 1e-12)
	shared, err := f.FirstTransitionAccuracy(uniform)
	require.NoError(t, err)
	require.InDelta(t, 0.5, shared, 1e-12)

	exact, err := FirstTransitionOfficial(f, f.NextTokenProbs)
	require.NoError(t, err)
	require.InDelta(t, 1, exact, 1e-12)
}

// tinyFSMModel is an untrained 2-layer codebook model (two attention
// codebooks per layer, one MLP codebook) on a 6-state TokFSM.
func tinyFSMModel(t *testing.T) (*Model, *tokfsm.FSM) {
	t.Helper()
	f, err := tokfsm.New(tokfsm.Config{States: 6, Edges: 2, Base: 3, SeqLen: 9, Seed: 1})
	require.NoError(t, err)
	torch.ManualSeed(11)
	c := gpt.Default()
	c.Vocab, c.Context, c.Width, c.Layers, c.Heads, c.InitStd = f.Vocab(), 9, 16, 2, 2, 0.5
	g, err := nn.NewGPT(c.GPTConfig(nil))
	require.NoError(t, err)
	m, err := NewModel(g, Settings{At: []string{"attn_preproj", "mlp"}, Codes: 6, K: 1, ModelLRFactor: 1})
	require.NoError(t, err)
	m.Store().Train(false)
	t.Cleanup(m.Close)
	return m, f
}

// The official intervention target: for every state b, the model's own
// distribution on b's input; Σ_a JSD(patched_a, target_b)/(N−1) averaged
// over b, then divided by the largest condition ("none" included).
func TestOfficialInterventions(t *testing.T) {
	m, f := tinyFSMModel(t)
	var res []InterventionResult
	torch.NoGrad(func() { res = officialInterventions(m, f) })
	names := []string{"none (unpatched)", "all MLP codebooks", "MLP layer 0", "MLP layer 1", "all attention codebooks",
		"attention layer 0", "attention layer 1", "all codebooks"}
	require.Len(t, res, len(names))
	largest := 0.0
	for i, r := range res {
		require.Equal(t, names[i], r.Condition)
		require.Equal(t, 6, r.Trials)
		require.GreaterOrEqual(t, r.NormJSD, 0.0)
		require.LessOrEqual(t, r.NormJSD, 1.0)
		largest = max(largest, r.Patched)
	}
	require.Equal(t, 0, res[0].Codebooks)
	require.Equal(t, 1, res[3].Codebooks)

	// Recompute "none" and "MLP layer 1" one input at a time.
	N := 6
	inputs := make([][]int32, N)
	for s := range N {
		inputs[s] = append([]int32{f.BOS()}, f.Encode(s)...)
	}
	mlp1 := nn.Site{Layer: 1, Point: nn.MLPOut}
	none, layer1 := 0.0, 0.0
	torch.NoGrad(func() {
		base := make([][]float64, N)
		for a := range N {
			base[a] = probs(m, inputs[a])
		}
		for b := range N {
			codesB := lastCodes(m, [][]int32{inputs[b]})[mlp1][0]
			for a := range N {
				none += interp.JSD(base[a], base[b]) / float64(N-1) / float64(N)
				m.Layers[mlp1].Intervention = &Intervention{Patches: []Patch{{Group: 0, Slot: 0, Code: int(codesB[0][0]), Positions: []int{-1}}}}
				layer1 += interp.JSD(probs(m, inputs[a]), base[b]) / float64(N-1) / float64(N)
				m.ClearInterventions()
			}
		}
	})
	// float32 forwards, batched there and one at a time here
	require.InDelta(t, none, res[0].Patched, 1e-6)
	require.InDelta(t, none, res[3].Before, 1e-6)
	require.InDelta(t, layer1, res[3].Patched, 1e-6)
	require.InDelta(t, layer1/largest, res[3].NormJSD, 1e-5)
	require.InDelta(t, none/largest, res[0].NormJSD, 1e-5)
	require.Less(t, layer1, none, "patching b's codes moves the inputs towards b")
}

// Purity is per codebook, with a pooled row (summed counts) for sites with
// several codebooks.
func TestPurityPerCodebook(t *testing.T) {
	m, f := tinyFSMModel(t)
	var rows []SitePurity
	torch.NoGrad(func() { rows = purity(m, f) })
	// Per probe kind: layer 0 attn [0], [1], pooled; MLP; the same at layer 1.
	require.Len(t, rows, 2*(2*4))
	byName := map[string]SitePurity{}
	for _, r := range rows {
		if r.Probe == "state" {
			byName[r.Site] = r
		}
	}
	for _, l := range []int{0, 1} {
		site := nn.Site{Layer: l, Point: nn.AttnPreProj}.String()
		g0, g1, pooled := byName[site+"[0]"], byName[site+"[1]"], byName[site+" (pooled)"]
		require.Equal(t, g0.Pure+g1.Pure, pooled.Pure)
		require.Equal(t, g0.Active+g1.Active, pooled.Active)
		require.InDelta(t, float64(pooled.Pure)/float64(pooled.Active), pooled.Purity, 1e-12)
		for _, g := range []SitePurity{g0, g1} {
			require.Positive(t, g.Active)
			require.InDelta(t, float64(g.Pure)/float64(g.Active), g.Purity, 1e-12)
		}
		_, ok := byName[nn.Site{Layer: l, Point: nn.MLPOut}.String()]
		require.True(t, ok, "a single-codebook site has one row under its own name")
	}
	// The per-codebook rows are interp.Purity of that codebook's codes.
	probes := f.Bigrams()
	prefixes := make([][]int32, len(probes))
	for i, p := range probes {
		prefixes[i] = p.Tokens
	}
	site := nn.Site{Layer: 0, Point: nn.AttnPreProj}
	var codes map[nn.Site][][][]int32
	torch.NoGrad(func() { codes = lastCodes(m, prefixes) })
	col := make([][]int32, len(prefixes))
	for i := range prefixes {
		col[i] = codes[site][i][1]
	}
	pure, active, _ := interp.Purity(col)
	require.Equal(t, pure, byName[site.String()+"[1]"].Pure)
	require.Equal(t, active, byName[site.String()+"[1]"].Active)
}

// Sampling for the transition accuracy never emits BOS by default (the
// official generate bans EOS = BOS through min_length); sample_bos:
// allowed lets it through.
func TestSampleBOSBlocked(t *testing.T) {
	m, f := tinyFSMModel(t)
	torch.ManualSeed(1)
	out, err := sampleWithout(m, 40, 8, int64(f.BOS()))
	require.NoError(t, err)
	require.Len(t, out, 40)
	for _, row := range out {
		require.Len(t, row, 8)
		require.NotContains(t, row, int64(f.BOS()))
	}
	torch.ManualSeed(1)
	prompts := make([][]int64, 40)
	for i := range prompts {
		prompts[i] = []int64{int64(f.BOS())}
	}
	free, err := m.Generate(prompts, nn.GenerateOptions{MaxNew: 8, Stop: -1, Sampling: nn.Sampling{Temperature: 1}})
	require.NoError(t, err)
	bos := 0
	for _, row := range free {
		for _, v := range row {
			if v == int64(f.BOS()) {
				bos++
			}
		}
	}
	require.Positive(t, bos, "the untrained model emits BOS when allowed")
	acc, first := sampledTransitions(m, f, 10, true)
	require.True(t, acc >= 0 && acc <= 1 && first >= 0 && first <= 1)
}

// The analysis options default to the official definitions and reject
// unknown values.
func TestAnalysisOptions(t *testing.T) {
	for _, c := range DefaultAnalysis().optionChecks() {
		require.True(t, c.OK, c.Key)
	}
	a := DefaultAnalysis()
	require.Equal(t, Official, a.NeuronBaseline)
	require.Equal(t, Official, a.InterventionTarget)
	require.Equal(t, Official, a.FirstTransitionTies)
	require.Equal(t, BOSBlocked, a.SampleBOS)
	a.NeuronBaseline, a.InterventionTarget, a.FirstTransitionTies, a.SampleBOS = "matched_recall", TrueDistribution, SharedTies, BOSAllowed
	for _, c := range a.optionChecks() {
		require.True(t, c.OK, c.Key)
	}
	a.InterventionTarget = "truth"
	var bad []string
	for _, c := range a.optionChecks() {
		if !c.OK {
			bad = append(bad, c.Key+": "+c.Reason)
		}
	}
	require.Equal(t, []string{`eval.analysis.intervention_target: want official or true_distribution, got "truth"`}, bad)
}

// The family runs the analysis with the official definitions by default
// and with hiddenlab's earlier ones by name; unknown values are recipe
// errors.
func TestFSMAnalysisOptionsRun(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	dir := t.TempDir()
	recipe := `
name: tiny-fsm
model: {family: codebook, width: 16, layers: 2, heads: 2, codebook: {at: [attn_preproj, mlp], codes: 8, k: 1}}
data: {kind: tokfsm, tokfsm: {states: 6, edges: 2, base: 3, seq_len: 9, seed: 1, eval_seqs: 16}}
train: {steps: 2, batch: 4, threads: 1, log_every: 1}
eval: {samples: 0, analysis: {samples: 8, state_seqs: 16, interventions: 5}}
output: {progress: false}
`
	path := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(path, []byte(recipe), 0o644))
	for _, c := range []struct {
		name      string
		overrides []string
		want      []string
	}{
		{"official", nil, []string{"### Interventions (§2.2, official target)", "| none (unpatched) | 0 | ", "BOS blocked, as official",
			"official: hard top k", "official threshold", "blocks.0.attn_preproj (pooled)", "| attention layer 1 | 1 |",
			"| layer | states | code precision | code recall | best-neuron precision |"}},
		{"earlier", []string{"eval.analysis.neuron_baseline=matched_recall", "eval.analysis.intervention_target=true_distribution",
			"eval.analysis.first_transition_ties=shared", "eval.analysis.sample_bos=allowed"},
			[]string{"### Interventions (§2.2, target: true distribution)", "BOS allowed", "ties shared", "matched_recall threshold"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run, err := runner.Run(runner.Options{Recipe: path, Overrides: append(c.overrides, "output.dir="+filepath.Join(dir, c.name))})
			require.NoError(t, err)
			report, err := os.ReadFile(filepath.Join(run, rundir.ReportFile))
			require.NoError(t, err)
			for _, w := range c.want {
				require.Contains(t, string(report), w)
			}
			if c.name == "official" {
				sum, err := rundir.ReadSummary(run)
				require.NoError(t, err)
				for _, k := range []string{"state_code_precision_l0", "best_neuron_precision_l1", "jsd none (unpatched)", "jsd attention layer 0"} {
					require.Contains(t, sum.Extra, k)
				}
			}
		})
	}
	_, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"eval.analysis.neuron_baseline=best", "output.dir=" + filepath.Join(dir, "bad")}})
	require.ErrorContains(t, err, `eval.analysis.neuron_baseline: want official or matched_recall, got "best"`)
}
