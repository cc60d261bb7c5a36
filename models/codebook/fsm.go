package codebook

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/hiddenlab/hiddenlab/data/tokfsm"
	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
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
	// Layers repeats the state-code comparison within each layer: the best
	// code among the layer's codebooks against the best neuron among the
	// layer's attention and MLP outputs.
	Layers        []LayerStateCodes
	Interventions []InterventionResult
	// Options are the analysis settings the numbers were computed with.
	Options Analysis
}

// Values of the eval.analysis options; "official" is each default.
const (
	Official = "official"
	// TrueDistribution (intervention_target): random transitions scored
	// against the FSM's true next-token distribution (hiddenlab's earlier
	// target).
	TrueDistribution = "true_distribution"
	// SharedTies (first_transition_ties): exact ties at the k-th place share
	// the remaining places (the expectation over a random tie-break).
	SharedTies = "shared"
	// BOSBlocked and BOSAllowed (sample_bos): whether sampling for the
	// transition accuracy may emit BOS. The official generate call passes
	// min_length = max_length with EOS = BOS, which bans BOS at every step.
	BOSBlocked = "blocked"
	BOSAllowed = "allowed"
)

// DefaultAnalysis is the eval.analysis section's defaults: the official
// definitions throughout.
func DefaultAnalysis() Analysis {
	return Analysis{Samples: 100, StateSeqs: 256, Interventions: 200, NeuronBaseline: Official,
		InterventionTarget: Official, FirstTransitionTies: Official, SampleBOS: BOSBlocked}
}

// optionChecks validates the option values of the section.
func (a Analysis) optionChecks() []lm.Check {
	one := func(v, key string, allowed ...string) lm.Check {
		return lm.Check{OK: slices.Contains(allowed, v), Key: "eval.analysis." + key,
			Reason: fmt.Sprintf("want %s, got %q", strings.Join(allowed, " or "), v)}
	}
	return []lm.Check{
		one(a.NeuronBaseline, "neuron_baseline", Official, string(interp.MatchedRecallBaseline)),
		one(a.InterventionTarget, "intervention_target", Official, TrueDistribution),
		one(a.FirstTransitionTies, "first_transition_ties", Official, SharedTies),
		one(a.SampleBOS, "sample_bos", BOSBlocked, BOSAllowed),
	}
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

// LayerStateCodes is the state-code comparison of one layer: means over
// the States states that some code of the layer marks (F1 > 0).
type LayerStateCodes struct {
	Layer                     int
	States                    int
	CodePrecision, CodeRecall float64
	NeuronPrecision           float64
}

// InterventionResult measures one patching condition. With the official
// target (officialInterventions) NormJSD is the condition's mean JSD to
// the target divided by the largest condition's ("none (unpatched)"
// included; 0 when every JSD is 0), MedianRatio is unused (0) and Trials
// counts target states. With the
// true_distribution target (interventions) NormJSD is mean JSD(patched,
// target) / mean JSD(unpatched, target) — 1 means no effect, 0 a complete
// move to the other state's next-token distribution — and the per-trial
// ratio is also summarised by its median (a mean of ratios is dominated by
// trials whose unpatched distribution is already close to the target).
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

// AnalyzeFSM runs the TokFSM analyses with the official definitions
// (DefaultAnalysis) and the given sizes; see AnalyzeFSMWith.
func AnalyzeFSM(m *Model, f *tokfsm.FSM, seed uint64, samples, evalSeqs, trials int) (*FSMAnalysis, error) {
	o := DefaultAnalysis()
	o.Samples, o.StateSeqs, o.Interventions = samples, evalSeqs, trials
	return AnalyzeFSMWith(m, f, seed, o)
}

// AnalyzeFSMWith runs the TokFSM analyses of o: sampled transition
// accuracy (o.Samples sequences at temperature 1), exact first-transition
// accuracy, code purity, state codes against the best neuron over
// o.StateSeqs held-out sequences, and the intervention experiment (over
// every pair of states with the official target, or over o.Interventions
// random transitions with the true distribution).
func AnalyzeFSMWith(m *Model, f *tokfsm.FSM, seed uint64, o Analysis) (*FSMAnalysis, error) {
	a := &FSMAnalysis{Options: o}
	var err error
	torch.NoGrad(func() {
		err = torch.Try(func() {
			a.TransitionAcc, a.FirstTransitionAcc = sampledTransitions(m, f, o.Samples, o.SampleBOS != BOSAllowed)
			cache := map[string][]float64{}
			model := func(prefix []int32) []float64 {
				key := fmt.Sprint(prefix)
				if p, ok := cache[key]; ok {
					return p
				}
				p := probs(m, prefix)
				cache[key] = p
				return p
			}
			if o.FirstTransitionTies == SharedTies {
				a.ExactFirstAcc, err = f.FirstTransitionAccuracy(model)
			} else {
				a.ExactFirstAcc, err = FirstTransitionOfficial(f, model)
			}
			if err != nil {
				panic(&torch.Error{Op: "first transition", Kind: torch.KindValue, Msg: err.Error()})
			}
			a.BayesCE, a.BayesAcc = f.BayesExact()
			if len(m.Sites) == 0 {
				return
			}
			a.Purity = purity(m, f)
			a.stateCodes(m, f, seed, o.StateSeqs, interp.NeuronBaseline(o.NeuronBaseline))
			if o.InterventionTarget == TrueDistribution {
				a.Interventions = interventions(m, f, seed, o.Interventions)
			} else {
				a.Interventions = officialInterventions(m, f)
			}
		})
	})
	return a, err
}

// FirstTransitionOfficial is the official first_transition_accuracy: for
// every state s, the k = out-degree(s) states with the highest
// next-state probability after BOS and the digits of s (NextStateProbs,
// then torch.topk) are taken as the prediction, and the share of them that
// are true successors is averaged over states (states without successors,
// only in a Reversed machine, are skipped). Exact ties at the k-th place go
// to the lower state index: torch.topk leaves their order unspecified, and
// a fixed rule keeps the metric deterministic. A uniform probs therefore
// scores the share of successors among states 0..k−1, not Edges/States
// (tokfsm's FirstTransitionAccuracy, the first_transition_ties: shared
// option, credits ties fractionally).
func FirstTransitionOfficial(f *tokfsm.FSM, probs func(prefix []int32) []float64) (float64, error) {
	total, counted := 0.0, 0
	for s := range f.Config().States {
		succ := f.Successors(s)
		if len(succ) == 0 {
			continue
		}
		ps, err := f.NextStateProbs(append([]int32{f.BOS()}, f.Encode(s)...), probs)
		if err != nil {
			return 0, fmt.Errorf("%w (after state %d)", err, s)
		}
		hits := 0
		for _, t := range topK(ps, len(succ)) {
			if slices.Contains(succ, t) {
				hits++
			}
		}
		total += float64(hits) / float64(len(succ))
		counted++
	}
	if counted == 0 {
		return 0, nil
	}
	return total / float64(counted), nil
}

// topK returns the indices of the k highest scores, highest first, ties
// in increasing index order (the official torch.topk, with a fixed order
// for ties).
func topK(scores []float64, k int) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return scores[order[i]] > scores[order[j]] })
	return order[:min(max(k, 0), len(order))]
}

// sampledTransitions samples n sequences from BOS at temperature 1 and
// scores their transitions. With blockBOS the BOS token is never sampled,
// as in the official evaluation (generate with min_length = max_length and
// EOS = BOS).
func sampledTransitions(m *Model, f *tokfsm.FSM, n int, blockBOS bool) (acc, first float64) {
	if n <= 0 {
		return 0, 0
	}
	newTokens := min(f.Config().SeqLen-1, m.Config.Context-1) // a sequence is BOS + SeqLen-1 tokens
	var out [][]int64
	var err error
	if blockBOS {
		out, err = sampleWithout(m, n, newTokens, int64(f.BOS()))
	} else {
		prompts := make([][]int64, n)
		for i := range prompts {
			prompts[i] = []int64{int64(f.BOS())}
		}
		out, err = m.Generate(prompts, nn.GenerateOptions{MaxNew: newTokens, Stop: -1, Sampling: nn.Sampling{Temperature: 1}})
	}
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

// sampleWithout samples n continuations of newTokens tokens after the
// one-token prompt banned at temperature 1 with a KV cache, never emitting
// the token banned (its logit is −∞ at every step). It runs in eval mode
// without gradients.
func sampleWithout(m *Model, n, newTokens int, banned int64) ([][]int64, error) {
	out := make([][]int64, n)
	wasTraining := m.Store().Training()
	m.Store().Train(false)
	defer m.Store().Train(wasTraining)
	err := torch.Try(func() {
		torch.NoGrad(func() {
			s := torch.NewScope()
			defer s.Close()
			dev := deviceOf(m)
			cache := m.NewKVCache(n, 1+newTokens)
			defer cache.Close()
			V := m.Config.Vocab
			ban := make([]bool, V)
			ban[banned] = true
			mask := torch.FromSlice(ban, []int{1, V}, dev)
			first := make([]int64, n)
			for i := range first {
				first[i] = banned
			}
			logits := m.GPT.Forward(torch.FromSlice(first, []int{n, 1}, dev), &nn.ForwardOptions{Cache: cache}).Select(1, -1)
			for t := range newTokens {
				next := nn.Sampling{Temperature: 1}.Sample(logits.MaskedFill(mask, math.Inf(-1))).Int64s()
				for b, v := range next {
					out[b] = append(out[b], v)
				}
				if t == newTokens-1 {
					break
				}
				it := torch.NewScope()
				logits = m.GPT.Forward(torch.FromSlice(next, []int{n, 1}, dev), &nn.ForwardOptions{Cache: cache}).Select(1, -1)
				it.Keep(logits)
				it.Close()
			}
		})
	})
	return out, err
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

// purity measures code purity on the probes as the official tutorial
// does: per codebook (partition_input_space_with_codebook at one layer,
// point and group), the share of the codes active at the last position of
// the probes that one probe only activates. A site with G > 1 codebooks
// (attn_preproj) gets one row per codebook, named site[g], then a pooled
// row, "site (pooled)", whose counts are the sums over its codebooks (the
// pooled purity weighs codebooks by their active codes; it is not the mean
// of the per-codebook purities).
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
			pooled := SitePurity{Site: s.String() + " (pooled)", Probe: probe.name}
			for g := 0; g < l.G; g++ {
				col := make([][]int32, len(prefixes))
				for i := range prefixes {
					col[i] = codes[s][i][g]
				}
				pure, active, p := interp.Purity(col)
				out = append(out, SitePurity{Site: codebookName(s, l, g), Probe: probe.name, Pure: pure, Active: active, Purity: p})
				pooled.Pure += pure
				pooled.Active += active
			}
			if l.G > 1 {
				if pooled.Active > 0 {
					pooled.Purity = float64(pooled.Pure) / float64(pooled.Active)
				}
				out = append(out, pooled)
			}
		}
	}
	return out
}

// stateCodes finds, for each state X, the code that best marks "the second
// digit of state X" (highest F1 over every codebook) and the best neuron of
// the attention and MLP outputs at the same recall (§2.2), thresholded by
// the baseline rule (interp.OfficialBaseline by default).
func (a *FSMAnalysis) stateCodes(m *Model, f *tokfsm.FSM, seed uint64, n int, baseline interp.NeuronBaseline) {
	if n <= 0 {
		return
	}
	x, _ := f.EvalSet(seed+17, n)
	T := f.Config().SeqLen - 1
	D := f.Digits()
	// Per codebook, the ids at every position; per neuron, the activations.
	ids := map[string][][]int32{}
	var books []string
	numCodes := map[string]int{}
	var acts [][]float32
	var neuronNames []string
	var neuronLayer []int         // layer of each neuron column
	bookLayer := map[string]int{} // layer of each codebook
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
						bookLayer[name] = s.Layer
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
			var layers []int
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
						layers = append(layers, li)
					}
				}
			}
			for _, t := range captured {
				t.Free()
			}
			clear(captured)
			if neuronNames == nil {
				neuronNames, neuronLayer = names, layers
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
	// bestCode is the code of books with the highest F1 for state st.
	bestCode := func(st int, books []string) (StateCode, float64) {
		pcs := make([]interp.PositionCodes, len(books))
		for i, b := range books {
			pcs[i] = interp.PositionCodes{Codes: ids[b], NumCodes: numCodes[b]}
		}
		bi, cs, f1 := interp.BestCodeF1(pcs, matched[st])
		best := StateCode{State: st}
		if f1 > 0 {
			best.Codebook, best.Code, best.Precision, best.Recall = books[bi], cs.Code, cs.Precision, cs.Recall
		}
		return best, f1
	}
	for _, st := range states {
		best, f1 := bestCode(st, books)
		if f1 <= 0 {
			continue
		}
		if ns, err := index.BestWith(baseline, matched[st], best.Recall); err == nil {
			best.Neuron, best.NeuronPrecision = neuronNames[ns.Neuron], ns.Precision
		}
		a.States = append(a.States, best)
	}
	for _, s := range a.States {
		a.MeanCodePrecision += s.Precision / float64(len(a.States))
		a.MeanCodeRecall += s.Recall / float64(len(a.States))
		a.MeanNeuronPrec += s.NeuronPrecision / float64(len(a.States))
	}
	// The same within each layer.
	for li := range m.Blocks {
		var lbooks []string
		for _, b := range books {
			if bookLayer[b] == li {
				lbooks = append(lbooks, b)
			}
		}
		var cols []int
		for c, l := range neuronLayer {
			if l == li {
				cols = append(cols, c)
			}
		}
		if len(lbooks) == 0 || len(cols) == 0 {
			continue
		}
		sub := make([][]float32, len(acts))
		for i, row := range acts {
			sub[i] = make([]float32, len(cols))
			for j, c := range cols {
				sub[i][j] = row[c]
			}
		}
		lindex, err := interp.NewNeuronIndex(sub)
		if err != nil {
			continue
		}
		ls := LayerStateCodes{Layer: li}
		for _, st := range states {
			best, f1 := bestCode(st, lbooks)
			if f1 <= 0 {
				continue
			}
			ns, err := lindex.BestWith(baseline, matched[st], best.Recall)
			if err != nil {
				continue
			}
			ls.States++
			ls.CodePrecision += best.Precision
			ls.CodeRecall += best.Recall
			ls.NeuronPrecision += ns.Precision
		}
		if ls.States > 0 {
			n := float64(ls.States)
			ls.CodePrecision, ls.CodeRecall, ls.NeuronPrecision = ls.CodePrecision/n, ls.CodeRecall/n, ls.NeuronPrecision/n
			a.Layers = append(a.Layers, ls)
		}
	}
}

// interventionConditions lists the patching conditions: all MLP codebooks,
// each MLP layer alone, all attention codebooks, each attention layer
// alone, all codebooks (those that exist), in report order.
func interventionConditions(m *Model) ([]string, map[string][]nn.Site) {
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
	for _, s := range attn {
		add("attention layer "+fmt.Sprint(s.Layer), []nn.Site{s})
	}
	add("all codebooks", m.Sites)
	return order, conds
}

// patchLast sets, on every codebook of sites, an intervention that writes
// codes[site][group][slot] at the last position of every row.
func patchLast(m *Model, sites []nn.Site, codes map[nn.Site][][]int32) {
	for _, site := range sites {
		l := m.Layers[site]
		iv := &Intervention{}
		for g := 0; g < l.G; g++ {
			for k, c := range codes[site][g] {
				iv.Patches = append(iv.Patches, Patch{Group: g, Slot: k, Code: int(c), Positions: []int{-1}})
			}
		}
		l.Intervention = iv
	}
}

// batchProbs returns the model's next-token distributions after each of
// prefixes, which must have one length, in one forward.
func batchProbs(m *Model, prefixes [][]int32) [][]float64 {
	n, T := len(prefixes), len(prefixes[0])
	var out [][]float64
	torch.WithScope(func() {
		ids := make([]int64, 0, n*T)
		for _, p := range prefixes {
			for _, v := range p {
				ids = append(ids, int64(v))
			}
		}
		logits := m.Forward(torch.FromSlice(ids, []int{n, T}, deviceOf(m)))
		flat := logits.Select(1, -1).Softmax(-1).Float64s()
		V := len(flat) / n
		for i := range n {
			out = append(out, flat[i*V:(i+1)*V])
		}
	})
	return out
}

// officialInterventions is the intervention experiment of the official
// TokFSM tutorial (§"Steering the Network by Intervening on the State
// Codes", with its prefix_random_states_len = 0): the inputs are BOS and
// the digits of every state. For every state b, the target is the model's
// own next-token distribution on b's input; each condition patches b's
// codes (every slot of every codebook of the condition, at the last
// position) into every input a, and scores Σ_a JSD(patched_a, target_b) /
// (N − 1) (the a = b term included, as in the tutorial); "none" scores the
// unpatched inputs the same way. Scores are averaged over b and divided by
// the largest score of all conditions, "none" included (NormJSD, the
// tutorial's "Normalized JS Div"); Patched holds the unnormalised mean and
// Before the "none" mean. Trials is the number of target states.
func officialInterventions(m *Model, f *tokfsm.FSM) []InterventionResult {
	probes := f.Bigrams()
	N := len(probes)
	if N < 2 {
		return nil
	}
	inputs := make([][]int32, N)
	for i, p := range probes {
		inputs[i] = p.Tokens
	}
	order, conds := interventionConditions(m)
	codes := lastCodes(m, inputs) // [site][input][group][k]
	base := batchProbs(m, inputs)
	sums := map[string]float64{}
	const none = "none (unpatched)"
	for b := range N {
		target := base[b]
		for a := range N {
			sums[none] += interp.JSD(base[a], target) / float64(N-1)
		}
		for _, name := range order {
			cb := map[nn.Site][][]int32{}
			for _, site := range conds[name] {
				cb[site] = codes[site][b]
			}
			patchLast(m, conds[name], cb)
			patched := batchProbs(m, inputs)
			m.ClearInterventions()
			for a := range N {
				sums[name] += interp.JSD(patched[a], target) / float64(N-1)
			}
		}
	}
	largest := 0.0
	for _, v := range sums {
		largest = max(largest, v/float64(N))
	}
	var out []InterventionResult
	for _, name := range append([]string{none}, order...) {
		r := InterventionResult{Condition: name, Codebooks: len(conds[name]), Trials: N,
			Patched: sums[name] / float64(N), Before: sums[none] / float64(N)}
		if largest > 0 { // else every output is the same and the tutorial's ratio is 0/0: reported as 0
			r.NormJSD = r.Patched / largest
		}
		out = append(out, r)
	}
	return out
}

// interventions is the true_distribution target (hiddenlab's earlier
// experiment): over trials random transitions, it patches, at the last
// position of a sequence ending in state s, the codes the model uses at the
// end of a sequence ending in another state s', and measures how far the
// next-token distribution moves to the FSM's true one after s', for each
// condition: NormJSD = mean JSD(patched, target) / mean JSD(unpatched,
// target), and the median of the per-trial ratios.
func interventions(m *Model, f *tokfsm.FSM, seed uint64, trials int) []InterventionResult {
	order, conds := interventionConditions(m)
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
			cb := map[nn.Site][][]int32{}
			for _, site := range conds[name] {
				cb[site] = codesB[site][0]
			}
			patchLast(m, conds[name], cb)
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
	bos := "BOS blocked, as official"
	if a.Options.SampleBOS == BOSAllowed {
		bos = "BOS allowed"
	}
	fmt.Fprintf(&b, "| transition accuracy (sampled sequences, T=1, %s) | %.4f |\n", bos, a.TransitionAcc)
	fmt.Fprintf(&b, "| first-transition accuracy (sampled) | %.4f |\n", a.FirstTransitionAcc)
	ties := "official: hard top k, ties to the lower state"
	if a.Options.FirstTransitionTies == SharedTies {
		ties = "ties shared"
	}
	fmt.Fprintf(&b, "| exact first-transition accuracy (%s) | %.4f |\n", ties, a.ExactFirstAcc)
	fmt.Fprintf(&b, "| Bayes-optimal CE / accuracy of this FSM | %.4f / %.4f |\n", a.BayesCE, a.BayesAcc)
	if len(a.Purity) > 0 {
		b.WriteString("\n### Code purity\n\nPer codebook (as the official tutorial), the share of the codes active on the probe inputs (BOS + a state, or + a state and a successor's first digit) that are activated by exactly one input, at the last position; a site with several codebooks also gets a pooled row (summed counts):\n\n| codebook | probe | pure / active | purity |\n|---|---|---|---|\n")
		for _, p := range a.Purity {
			fmt.Fprintf(&b, "| %s | %s | %d / %d | %.3f |\n", p.Site, p.Probe, p.Pure, p.Active, p.Purity)
		}
	}
	if len(a.States) > 0 {
		rule := "official threshold: the ⌊r·M⌋-th largest matched activation, precision ⌊r·M⌋ / fires"
		if a.Options.NeuronBaseline == string(interp.MatchedRecallBaseline) {
			rule = "matched_recall threshold: the ⌈r·M⌉-th largest matched activation, precision hits / fires"
		}
		fmt.Fprintf(&b, "\n### State codes vs the best neuron (§2.2)\n\nFor each state X, the code (over every codebook) that best marks the second digit of X (highest F1), and the best single neuron of the attention and MLP outputs thresholded to the same recall r (%s). Mean over %d states: **code precision %.3f** (recall %.3f) vs **best-neuron precision %.3f** (paper: 0.971 vs 0.705).\n\n", rule, len(a.States), a.MeanCodePrecision, a.MeanCodeRecall, a.MeanNeuronPrec)
		b.WriteString("| state | codebook | code | precision | recall | best neuron | neuron precision |\n|---|---|---|---|---|---|---|\n")
		for _, s := range a.States {
			fmt.Fprintf(&b, "| %d | %s | %d | %.3f | %.3f | %s | %.3f |\n", s.State, s.Codebook, s.Code, s.Precision, s.Recall, s.Neuron, s.NeuronPrecision)
		}
		if len(a.Layers) > 0 {
			b.WriteString("\nPer layer (the best code among the layer's codebooks against the best neuron among the layer's attention and MLP outputs, same threshold rule):\n\n| layer | states | code precision | code recall | best-neuron precision |\n|---|---|---|---|---|\n")
			for _, l := range a.Layers {
				fmt.Fprintf(&b, "| %d | %d | %.3f | %.3f | %.3f |\n", l.Layer, l.States, l.CodePrecision, l.CodeRecall, l.NeuronPrecision)
			}
		}
	}
	if len(a.Interventions) > 0 && a.Options.InterventionTarget == TrueDistribution {
		b.WriteString("\n### Interventions (§2.2, target: true distribution)\n\nPatch the final position's codes of a sequence ending in state s with those of a sequence ending in s' (random states and prefix lengths); compare the next-token distribution with the true one after s'. Normalised JSD = mean JSD(patched, target) / mean JSD(unpatched, target): 1 = no effect, 0 = fully moved to s'.\n\n| condition | codebooks | normalised JSD | median per-trial ratio | mean JSD patched / unpatched | trials |\n|---|---|---|---|---|---|\n")
		for _, r := range a.Interventions {
			fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.4f / %.4f | %d |\n", r.Condition, r.Codebooks, r.NormJSD, r.MedianRatio, r.Patched, r.Before, r.Trials)
		}
	} else if len(a.Interventions) > 0 {
		b.WriteString("\n### Interventions (§2.2, official target)\n\nAs the official TokFSM tutorial: for every state b, patch b's final-position codes into the input (BOS + digits) of every state a and compare the next-token distribution with the model's own on b's input; JSD summed over a / (N − 1), averaged over b, then divided by the largest condition (\"none\" = unpatched): lower = the patch moves the model further towards b.\n\n| condition | codebooks | normalised JSD | mean JSD (nats) | target states |\n|---|---|---|---|---|\n")
		for _, r := range a.Interventions {
			fmt.Fprintf(&b, "| %s | %d | %.3f | %.4f | %d |\n", r.Condition, r.Codebooks, r.NormJSD, r.Patched, r.Trials)
		}
	}
	return b.String()
}
