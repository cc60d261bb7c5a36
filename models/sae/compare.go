package sae

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// CompareConfig is eval.compare: the codes vs SAE latents vs neurons table
// on a codebook source: per FSM state on TokFSM (Compare), per regex
// feature on text when Regexes is set (CompareRegexes).
type CompareConfig struct {
	// Seqs is the held-out TokFSM sequences or text windows (256 when 0).
	Seqs int `key:"seqs"`
	// NeuronBaseline thresholds latents and neurons at the code's recall:
	// official (default) or matched_recall (interp.NeuronBaseline).
	NeuronBaseline string `key:"neuron_baseline"`
	// Regexes are the text features, e.g. codebook-tinystories.yaml's
	// steering topics.
	Regexes []RegexFeature `key:"regexes"`
	// Pick chooses a regex feature's best code: f1 (default) or precision
	// (codesearch's rule); see PickF1 and PickPrecision.
	Pick string `key:"pick"`
}

func (c *CompareConfig) fill() {
	if c.Seqs == 0 {
		c.Seqs = 256
	}
	if c.NeuronBaseline == "" {
		c.NeuronBaseline = string(interp.OfficialBaseline)
	}
	if c.Pick == "" {
		c.Pick = PickF1
	}
}

// check validates the section (eval.compare).
func (c *CompareConfig) check() error {
	if c.Seqs < 0 {
		return fmt.Errorf("eval.compare.seqs: must not be negative, got %d", c.Seqs)
	}
	if _, err := interp.ParseNeuronBaseline(c.NeuronBaseline); err != nil {
		return fmt.Errorf("eval.compare.neuron_baseline: %w", err)
	}
	if c.Pick != "" && c.Pick != PickF1 && c.Pick != PickPrecision {
		return fmt.Errorf("eval.compare.pick: want %s or %s, got %q", PickF1, PickPrecision, c.Pick)
	}
	_, err := c.regexes()
	return err
}

// StateRow compares, for one FSM state X and the feature "this token is the
// last digit of state X", the best code with the best SAE latent and the
// best neuron of the SAE's site at the code's recall.
type StateRow struct {
	State                 int
	Codebook              string
	Code                  int
	CodePrec, CodeRecall  float64
	Latent                int
	LatentPrec, LatentRec float64
	Neuron                int // dimension of the site's activation
	NeuronPrec, NeuronRec float64
}

// Comparison is the table over every state that some code marks.
type Comparison struct {
	Site     string
	Baseline interp.NeuronBaseline
	Seqs     int
	Rows     []StateRow
	// Means over the rows.
	CodePrec, CodeRecall, LatentPrec, NeuronPrec float64
}

// Compare builds the comparison when the source is a codebook model on
// TokFSM data (nil otherwise). The best code per state is the codebook
// analysis's (highest F1 over every codebook, interp.CodePrecisionRecall);
// the SAE latents and the site's dimensions are then thresholded at that
// code's recall and the most precise wins (interp.NeuronIndex.BestWith with
// the baseline rule: precision at matched recall, the codebook-features
// repo's definition under "official"). The feature and the held-out set are
// the codebook analysis's (the state's last digit, EvalSet(seed+17)).
func (e *Experiment) Compare(cc CompareConfig) (*Comparison, error) {
	cc.fill()
	fsm, ok := e.Src.LM.D.(*lm.FSMData)
	if !ok {
		return nil, nil
	}
	cm, ok := e.Src.LM.M.(*codebook.Model)
	if !ok || len(cm.Sites) == 0 {
		return nil, nil
	}
	baseline, err := interp.ParseNeuronBaseline(cc.NeuronBaseline)
	if err != nil {
		return nil, err
	}
	f := fsm.FSM
	n := cc.Seqs
	x, _ := f.EvalSet(e.Src.Run.Recipe.Train.Seed+17, n)
	T := f.Config().SeqLen - 1
	D := f.Digits()
	fa, err := e.collect(cm, cm.Sites, x, n, T, 64)
	if err != nil {
		return nil, err
	}
	ids, numCodes, books, latents, neurons := fa.ids, fa.numCodes, fa.books, fa.latents, fa.neurons
	matched := map[int][]bool{}
	for r := 0; r < n; r++ {
		for t := 0; t < T; t++ {
			if t < D || (t-1)%D != D-1 { // x[0] is BOS; the last digit of a state
				continue
			}
			state := 0
			for j := t - D + 1; j <= t; j++ {
				state = state*f.Config().Base + int(x[r*T+j])
			}
			if matched[state] == nil {
				matched[state] = make([]bool, n*T)
			}
			matched[state][r*T+t] = true
		}
	}
	latentIndex, err := interp.NewNeuronIndex(latents)
	if err != nil {
		return nil, err
	}
	neuronIndex, err := interp.NewNeuronIndex(neurons)
	if err != nil {
		return nil, err
	}
	states := make([]int, 0, len(matched))
	for s := range matched {
		states = append(states, s)
	}
	sort.Ints(states)
	out := &Comparison{Site: e.Cfg.Site, Baseline: baseline, Seqs: n}
	pcs := make([]interp.PositionCodes, len(books))
	for i, b := range books {
		pcs[i] = interp.PositionCodes{Codes: ids[b], NumCodes: numCodes[b]}
	}
	for _, st := range states {
		row := StateRow{State: st}
		bi, cs, f1 := interp.BestCodeF1(pcs, matched[st])
		if f1 <= 0 {
			continue
		}
		row.Codebook, row.Code, row.CodePrec, row.CodeRecall = books[bi], cs.Code, cs.Precision, cs.Recall
		ls, err := latentIndex.BestWith(baseline, matched[st], row.CodeRecall)
		if err != nil {
			return nil, err
		}
		ns, err := neuronIndex.BestWith(baseline, matched[st], row.CodeRecall)
		if err != nil {
			return nil, err
		}
		row.Latent, row.LatentPrec, row.LatentRec = ls.Neuron, ls.Precision, ls.Recall
		row.Neuron, row.NeuronPrec, row.NeuronRec = ns.Neuron, ns.Precision, ns.Recall
		out.Rows = append(out.Rows, row)
	}
	for _, r := range out.Rows {
		k := float64(len(out.Rows))
		out.CodePrec += r.CodePrec / k
		out.CodeRecall += r.CodeRecall / k
		out.LatentPrec += r.LatentPrec / k
		out.NeuronPrec += r.NeuronPrec / k
	}
	return out, nil
}

// Markdown is the comparison table.
func (c *Comparison) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Codes vs SAE latents vs neurons per FSM state\n\n")
	fmt.Fprintf(&b, "Feature: \"the last digit of state X\" on %d held-out sequences. Best code: highest F1 over every codebook; "+
		"the SAE latents and the neurons (dimensions of `%s`, the SAE's input) are thresholded at that code's recall (%s rule) and the most precise is shown.\n\n",
		c.Seqs, c.Site, c.Baseline)
	b.WriteString("| state | best code | code precision | code recall | best SAE latent | latent precision | best neuron | neuron precision |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "| %d | %s:%d | %.3f | %.3f | %d | %.3f | %d | %.3f |\n",
			r.State, r.Codebook, r.Code, r.CodePrec, r.CodeRecall, r.Latent, r.LatentPrec, r.Neuron, r.NeuronPrec)
	}
	fmt.Fprintf(&b, "| **mean** (%d states) | | **%.3f** | %.3f | | **%.3f** | | **%.3f** |\n", len(c.Rows), c.CodePrec, c.CodeRecall, c.LatentPrec, c.NeuronPrec)
	return b.String()
}

// Extra is the comparison's summary numbers.
func (c *Comparison) Extra() map[string]any {
	return map[string]any{"states": len(c.Rows), "code_precision": c.CodePrec, "code_recall": c.CodeRecall,
		"latent_precision": c.LatentPrec, "neuron_precision": c.NeuronPrec}
}

// featureActs are, per held-out position, the code ids of every codebook
// (group) of the compared sites, the SAE's latents and the site's own
// activations (its "neurons").
type featureActs struct {
	ids              map[string][][]int32 // per codebook name, [positions][K]
	numCodes         map[string]int
	books            []string // codebook names in forward order
	latents, neurons [][]float32
}

// collect runs the source model over the n windows of T tokens in x, batch
// windows at a time, and gathers the featureActs of the codebooks at sites.
func (e *Experiment) collect(cm *codebook.Model, sites []nn.Site, x []int64, n, T, batch int) (*featureActs, error) {
	fa := &featureActs{ids: map[string][][]int32{}, numCodes: map[string]int{}}
	a := e.SAE
	a.NormalizeDecoder()
	cm.SetRecord(true)
	defer cm.SetRecord(false)
	for start := 0; start < n; start += batch {
		rows := min(batch, n-start)
		err := torch.Try(func() {
			torch.NoGrad(func() {
				torch.WithScope(func() {
					X := torch.FromSlice(x[start*T:(start+rows)*T], []int{rows, T}, e.Src.Device())
					_, acts := e.Src.Forward(X, nil)
					for _, s := range sites {
						l := cm.Layers[s]
						v := l.IDs().To(torch.CPU).Int64s() // [rows, T, G, K]
						for g := 0; g < l.G; g++ {
							name := codebook.BookName(s, g)
							if _, ok := fa.numCodes[name]; !ok {
								fa.books = append(fa.books, name)
								fa.numCodes[name] = l.C
							}
							for i := 0; i < rows*T; i++ {
								row := make([]int32, l.K)
								for k := range row {
									row[k] = int32(v[(i*l.G+g)*l.K+k])
								}
								fa.ids[name] = append(fa.ids[name], row)
							}
						}
					}
					z := a.Encode(acts.MulScalar(a.scaleValue())).To(torch.CPU).Float32s()
					h := acts.To(torch.Float32).To(torch.CPU).Float32s()
					L, d := a.DSAE(), a.DIn()
					for i := 0; i < rows*T; i++ {
						fa.latents = append(fa.latents, z[i*L:(i+1)*L])
						fa.neurons = append(fa.neurons, h[i*d:(i+1)*d])
					}
				})
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return fa, nil
}
