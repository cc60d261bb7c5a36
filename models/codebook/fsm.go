package codebook

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"hiddenlab/data/tokfsm"
	"hiddenlab/interp"
	"hiddenlab/torch"
	"hiddenlab/torch/nn"
)

// FSMAnalysis is the TokFSM study of a codebook model (paper §3).
type FSMAnalysis struct {
	TransitionAcc      float64 // valid state pairs of sampled sequences
	FirstTransitionAcc float64 // first transition of sampled sequences
	ExactFirstAcc      float64 // exact first-transition accuracy (§2.2)
	BayesCE, BayesAcc  float64 // the true FSM's optimum, for reference
	Purity             []SitePurity
	States             []StateCode
	MeanCodePrecision  float64
	MeanCodeRecall     float64
	MeanNeuronPrec     float64
	Interventions      []InterventionResult
}

// SitePurity is the code purity of one insertion point over the probe inputs.
type SitePurity struct {
	Site         string
	Probe        string // "state" (bigram) or "state+digit" (trigram)
	Pure, Active int
	Purity       float64
}

// StateCode is the best code for "the second digit of state X" and the best
// neuron at the same recall.
type StateCode struct {
	State             int
	Codebook          string // site and group
	Code              int
	Precision, Recall float64
	Neuron            string
	NeuronPrecision   float64
}

// InterventionResult measures one patching condition over the trials. The
// headline NormJSD is mean JSD(patched, target) / mean JSD(unpatched,
// target) — 1 means no effect, 0 a complete move to the other state's
// next-token distribution. The per-trial ratio is also summarised by its
// median (a mean of ratios is dominated by trials whose unpatched
// distribution is already close to the target).
type InterventionResult struct {
	Condition       string
	Codebooks       int
	NormJSD         float64 // ratio of means
	MedianRatio     float64 // median of per-trial ratios
	Patched, Before float64 // mean JSD to the target with and without the patch
	Trials          int
}

// probs returns the model's next-token distribution after prefix.
func probs(m *Model, prefix []int32) []float64 {
	var p []float64
	torch.WithScope(func() {
		ids := make([]int64, len(prefix))
		for i, v := range prefix {
			ids[i] = int64(v)
		}
		logits := m.Forward(torch.FromSlice(ids, []int{1, len(ids)}, deviceOf(m)))
		p = logits.Select(1, -1).Select(0, 0).Softmax(-1).Float64s()
	})
	return p
}

func deviceOf(m *Model) torch.Device { return m.WTE.Weight.Device() }

// AnalyzeFSM runs the TokFSM analyses: sampled transition accuracy (samples
// sequences at temperature 1), exact first-transition accuracy, code purity,
// state codes against the best neuron over evalSeqs held-out sequences, and
// the intervention experiment over trials random transitions.
func AnalyzeFSM(m *Model, f *tokfsm.FSM, seed uint64, samples, evalSeqs, trials int) (*FSMAnalysis, error) {
	a := &FSMAnalysis{}
	var err error
	torch.NoGrad(func() {
		err = torch.Try(func() {
			a.TransitionAcc, a.FirstTransitionAcc = sampledTransitions(m, f, samples)
			cache := map[string][]float64{}
			a.ExactFirstAcc, err = f.FirstTransitionAccuracy(func(prefix []int32) []float64 {
				key := fmt.Sprint(prefix)
				if p, ok := cache[key]; ok {
					return p
				}
				p := probs(m, prefix)
				cache[key] = p
				return p
			})
			if err != nil {
				panic(&torch.Error{Op: "first transition", Kind: torch.KindValue, Msg: err.Error()})
			}
			a.BayesCE, a.BayesAcc = f.BayesExact()
			if len(m.Sites) == 0 {
				return
			}
			a.Purity = purity(m, f)
			a.stateCodes(m, f, seed, evalSeqs)
			a.Interventions = interventions(m, f, seed, trials)
		})
	})
	return a, err
}

// sampledTransitions samples n sequences from BOS at temperature 1.
func sampledTransitions(m *Model, f *tokfsm.FSM, n int) (acc, first float64) {
	prompts := make([][]int64, n)
	for i := range prompts {
		prompts[i] = []int64{int64(f.BOS())}
	}
	newTokens := min(f.Config().SeqLen-1, m.Config.Context-1) // a sequence is BOS + SeqLen-1 tokens
	out, err := m.Generate(prompts, nn.GenerateOptions{MaxNew: newTokens, Stop: -1, Sampling: nn.Sampling{Temperature: 1}})
	if err != nil {
		panic(&torch.Error{Op: "sample", Kind: torch.KindValue, Msg: err.Error()})
	}
	seqs := make([][]int32, n)
	for i, row := range out {
		seqs[i] = append(seqs[i], f.BOS())
		for _, v := range row {
			seqs[i] = append(seqs[i], int32(v))
		}
	}
	return f.TransitionAccuracy(seqs)
}

// codebookName names group g of a site.
func codebookName(s nn.Site, l *Layer, g int) string {
	if l.G == 1 {
		return s.String()
	}
	return fmt.Sprintf("%s[%d]", s, g)
}

// lastCodes runs prefixes and returns, per site, each prefix's codes at the
// last position: [site][prefix][group][k].
func lastCodes(m *Model, prefixes [][]int32) map[nn.Site][][][]int32 {
	out := map[nn.Site][][][]int32{}
	m.SetRecord(true)
	defer m.SetRecord(false)
	for _, p := range prefixes {
		torch.WithScope(func() {
			ids := make([]int64, len(p))
			for i, v := range p {
				ids[i] = int64(v)
			}
			m.Forward(torch.FromSlice(ids, []int{1, len(ids)}, deviceOf(m)))
			for _, s := range m.Sites {
				l := m.Layers[s]
				last := l.IDs().Select(1, -1).Select(0, 0).Int64s() // [G*K]
				groups := make([][]int32, l.G)
				for g := range groups {
					for k := 0; k < l.K; k++ {
						groups[g] = append(groups[g], int32(last[g*l.K+k]))
					}
				}
				out[s] = append(out[s], groups)
			}
		})
	}
	return out
}

// purity measures, per site, how many of the codes active on the probes are
// activated by one probe only (averaged over a site's groups).
func purity(m *Model, f *tokfsm.FSM) []SitePurity {
	var out []SitePurity
	for _, probe := range []struct {
		name   string
		probes []tokfsm.Probe
	}{{"state", f.Bigrams()}, {"state+digit", f.Trigrams()}} {
		prefixes := make([][]int32, len(probe.probes))
		for i, p := range probe.probes {
			prefixes[i] = p.Tokens
		}
		codes := lastCodes(m, prefixes)
		for _, s := range m.Sites {
			l := m.Layers[s]
			sp := SitePurity{Site: s.String(), Probe: probe.name}
			for g := 0; g < l.G; g++ {
				col := make([][]int32, len(prefixes))
				for i := range prefixes {
					col[i] = codes[s][i][g]
				}
				pure, active, _ := interp.Purity(col)
				sp.Pure += pure
				sp.Active += active
			}
			if sp.Active > 0 {
				sp.Purity = float64(sp.Pure) / float64(sp.Active)
			}
			out = append(out, sp)
		}
	}
	return out
}

// stateCodes finds, for each state X, the code that best marks "the second
// digit of state X" (highest F1 over every codebook) and the best neuron of
// the attention and MLP outputs at the same recall (§2.2).
func (a *FSMAnalysis) stateCodes(m *Model, f *tokfsm.FSM, seed uint64, n int) {
	x, _ := f.EvalSet(seed+17, n)
	T := f.Config().SeqLen - 1
	D := f.Digits()
	// Per codebook, the ids at every position; per neuron, the activations.
	ids := map[string][][]int32{}
	var books []string
	numCodes := map[string]int{}
	var acts [][]float32
	var neuronNames []string
	m.SetRecord(true)
	defer m.SetRecord(false)
	// Capture attention and MLP outputs where no codebook records its input.
	captured := map[nn.Site]*torch.Tensor{}
	var removes []func()
	for li := range m.Blocks {
		for _, pt := range []nn.Point{nn.AttnOut, nn.MLPOut} {
			site := nn.Site{Layer: li, Point: pt}
			if _, has := m.Layers[site]; has {
				continue
			}
			removes = append(removes, m.Hooks.Add(site, func(t *torch.Tensor) *torch.Tensor {
				captured[site] = t.Detach().Retain()
				return t
			}))
		}
	}
	defer func() {
		for _, r := range removes {
			r()
		}
	}()
	const batch = 64
	for start := 0; start < n; start += batch {
		rows := min(batch, n-start)
		torch.WithScope(func() {
			m.Forward(torch.FromSlice(x[start*T:(start+rows)*T], []int{rows, T}, deviceOf(m)))
			for _, s := range m.Sites {
				l := m.Layers[s]
				v := l.IDs().Int64s() // [rows, T, G, K]
				for g := 0; g < l.G; g++ {
					name := codebookName(s, l, g)
					if _, ok := numCodes[name]; !ok {
						books = append(books, name)
						numCodes[name] = l.C
					}
					for i := 0; i < rows*T; i++ {
						row := make([]int32, l.K)
						for k := range row {
							row[k] = int32(v[(i*l.G+g)*l.K+k])
						}
						ids[name] = append(ids[name], row)
					}
				}
			}
			// Neurons: attention and MLP outputs of every layer.
			var parts [][]float32
			var names []string
			for li := range m.Blocks {
				for _, pt := range []nn.Point{nn.AttnOut, nn.MLPOut} {
					site := nn.Site{Layer: li, Point: pt}
					t := captured[site]
					if l, ok := m.Layers[site]; ok {
						t = l.Input()
					}
					parts = append(parts, t.Float32s())
					for c := 0; c < t.Size(-1); c++ {
						names = append(names, fmt.Sprintf("%s:%d", site, c))
					}
				}
			}
			for _, t := range captured {
				t.Free()
			}
			clear(captured)
			if neuronNames == nil {
				neuronNames = names
			}
			C := m.Config.Width
			for i := 0; i < rows*T; i++ {
				row := make([]float32, 0, len(names))
				for _, p := range parts {
					row = append(row, p[i*C:(i+1)*C]...)
				}
				acts = append(acts, row)
			}
		})
	}
	// Which positions hold the second (last) digit of state X.
	matched := map[int][]bool{}
	for r := 0; r < n; r++ {
		for t := 0; t < T; t++ {
			pos := t // position within the sequence; x[0] is BOS
			if pos < D || (pos-1)%D != D-1 {
				continue
			}
			state := 0
			for j := pos - D + 1; j <= pos; j++ {
				state = state*f.Config().Base + int(x[r*T+j])
			}
			if matched[state] == nil {
				matched[state] = make([]bool, n*T)
			}
			matched[state][r*T+t] = true
		}
	}
	index, err := interp.NewNeuronIndex(acts)
	if err != nil {
		return
	}
	states := make([]int, 0, len(matched))
	for s := range matched {
		states = append(states, s)
	}
	sort.Ints(states)
	for _, st := range states {
		best := StateCode{State: st}
		bestF1 := -1.0
		for _, b := range books {
			stats, err := interp.CodePrecisionRecall(ids[b], matched[st], numCodes[b])
			if err != nil {
				continue
			}
			for _, cs := range stats {
				if cs.Fires == 0 {
					continue
				}
				f1 := 2 * cs.Precision * cs.Recall / (cs.Precision + cs.Recall + 1e-12)
				if f1 > bestF1 {
					bestF1 = f1
					best.Codebook, best.Code, best.Precision, best.Recall = b, cs.Code, cs.Precision, cs.Recall
				}
			}
		}
		if bestF1 <= 0 {
			continue
		}
		if ns, err := index.Best(matched[st], best.Recall); err == nil {
			best.Neuron, best.NeuronPrecision = neuronNames[ns.Neuron], ns.Precision
		}
		a.States = append(a.States, best)
	}
	for _, s := range a.States {
		a.MeanCodePrecision += s.Precision / float64(len(a.States))
		a.MeanCodeRecall += s.Recall / float64(len(a.States))
		a.MeanNeuronPrec += s.NeuronPrecision / float64(len(a.States))
	}
}

// interventions patches, at the last position of a sequence ending in state
// s, the codes the model uses at the end of a sequence ending in another state
// s', and measures how far the next-token distribution moves to the true one
// after s' (§2.2 "Interventions"), for several sets of codebooks.
func interventions(m *Model, f *tokfsm.FSM, seed uint64, trials int) []InterventionResult {
	conds := map[string][]nn.Site{}
	var order []string
	add := func(name string, sites []nn.Site) {
		if len(sites) > 0 {
			conds[name] = sites
			order = append(order, name)
		}
	}
	var mlp, attn []nn.Site
	for _, s := range m.Sites {
		switch s.Point {
		case nn.MLPOut:
			mlp = append(mlp, s)
		case nn.AttnPreProj:
			attn = append(attn, s)
		}
	}
	add("all MLP codebooks", mlp)
	for _, s := range mlp {
		add("MLP layer "+fmt.Sprint(s.Layer), []nn.Site{s})
	}
	add("all attention codebooks", attn)
	add("all codebooks", m.Sites)
	rng := rand.New(rand.NewPCG(seed, 0x1e7))
	N := f.Config().States
	ratios := map[string][]float64{}
	patchedSum := map[string]float64{}
	beforeSum := 0.0
	maxStates := (f.Config().SeqLen - 2) / f.Digits()
	for t := 0; t < trials; t++ {
		s := rng.IntN(N)
		other := rng.IntN(N - 1)
		if other >= s {
			other++
		}
		la, lb := 1+rng.IntN(maxStates), 1+rng.IntN(maxStates)
		seqA := append([]int32{f.BOS()}, f.RandomPrefix(rng, la, s)...)
		seqB := append([]int32{f.BOS()}, f.RandomPrefix(rng, lb, other)...)
		target := f.NextTokenProbs(seqB)
		codesB := lastCodes(m, [][]int32{seqB})
		base := probs(m, seqA)
		beforeSum += interp.JSD(base, target)
		for _, name := range order {
			for _, site := range conds[name] {
				l := m.Layers[site]
				iv := &Intervention{}
				for g := 0; g < l.G; g++ {
					for k, c := range codesB[site][0][g] {
						iv.Patches = append(iv.Patches, Patch{Group: g, Slot: k, Code: int(c), Positions: []int{-1}})
					}
				}
				l.Intervention = iv
			}
			patched := probs(m, seqA)
			m.ClearInterventions()
			patchedSum[name] += interp.JSD(patched, target)
			if v := interp.NormalizedJSD(patched, base, target); !math.IsNaN(v) && !math.IsInf(v, 0) {
				ratios[name] = append(ratios[name], v)
			}
		}
	}
	var out []InterventionResult
	for _, name := range order {
		r := InterventionResult{Condition: name, Codebooks: len(conds[name]), Trials: trials,
			Patched: patchedSum[name] / float64(trials), Before: beforeSum / float64(trials)}
		r.NormJSD = r.Patched / r.Before
		xs := ratios[name]
		sort.Float64s(xs)
		if len(xs) > 0 {
			r.MedianRatio = xs[len(xs)/2]
		}
		out = append(out, r)
	}
	return out
}

// Markdown renders the analysis as report sections.
func (a *FSMAnalysis) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## TokFSM analysis\n\n| metric | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| transition accuracy (sampled sequences, T=1) | %.4f |\n", a.TransitionAcc)
	fmt.Fprintf(&b, "| first-transition accuracy (sampled) | %.4f |\n", a.FirstTransitionAcc)
	fmt.Fprintf(&b, "| exact first-transition accuracy | %.4f |\n", a.ExactFirstAcc)
	fmt.Fprintf(&b, "| Bayes-optimal CE / accuracy of this FSM | %.4f / %.4f |\n", a.BayesCE, a.BayesAcc)
	if len(a.Purity) > 0 {
		b.WriteString("\n### Code purity\n\nShare of the codes active on the probe inputs (BOS + a state, or + a state and a successor's first digit) that are activated by exactly one input, at the last position:\n\n| site | probe | pure / active | purity |\n|---|---|---|---|\n")
		for _, p := range a.Purity {
			fmt.Fprintf(&b, "| %s | %s | %d / %d | %.3f |\n", p.Site, p.Probe, p.Pure, p.Active, p.Purity)
		}
	}
	if len(a.States) > 0 {
		fmt.Fprintf(&b, "\n### State codes vs the best neuron (§2.2)\n\nFor each state X, the code (over every codebook) that best marks the second digit of X (highest F1), and the best single neuron of the attention and MLP outputs thresholded to the same recall. Mean over %d states: **code precision %.3f** (recall %.3f) vs **best-neuron precision %.3f** (paper: 0.971 vs 0.705).\n\n", len(a.States), a.MeanCodePrecision, a.MeanCodeRecall, a.MeanNeuronPrec)
		b.WriteString("| state | codebook | code | precision | recall | best neuron | neuron precision |\n|---|---|---|---|---|---|---|\n")
		for _, s := range a.States {
			fmt.Fprintf(&b, "| %d | %s | %d | %.3f | %.3f | %s | %.3f |\n", s.State, s.Codebook, s.Code, s.Precision, s.Recall, s.Neuron, s.NeuronPrecision)
		}
	}
	if len(a.Interventions) > 0 {
		b.WriteString("\n### Interventions (§2.2)\n\nPatch the final position's codes of a sequence ending in state s with those of a sequence ending in s' (random states and prefix lengths); compare the next-token distribution with the true one after s'. Normalised JSD = mean JSD(patched, target) / mean JSD(unpatched, target): 1 = no effect, 0 = fully moved to s'.\n\n| condition | codebooks | normalised JSD | median per-trial ratio | mean JSD patched / unpatched | trials |\n|---|---|---|---|---|---|\n")
		for _, r := range a.Interventions {
			fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.4f / %.4f | %d |\n", r.Condition, r.Codebooks, r.NormJSD, r.MedianRatio, r.Patched, r.Before, r.Trials)
		}
	}
	return b.String()
}
