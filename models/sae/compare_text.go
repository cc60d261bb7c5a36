package sae

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/plot"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// RegexFeature is one entry of eval.compare.regexes: a named regex whose
// matches (interp.MatchPositions: every token a match covers) are the
// feature, e.g. {name: dog, regex: '\bdogs?\b'}.
type RegexFeature struct {
	Name  string `key:"name"`
	Regex string `key:"regex"`
}

// The rules that pick a feature's best code (eval.compare.pick).
const (
	// PickF1: the code with the highest F1 (as Compare's per-state table).
	PickF1 = "f1"
	// PickPrecision: codesearch's rule (`hiddenlab codebook search`): the
	// most precise code with recall > interp.RegexMinRecall (the higher
	// recall on ties).
	PickPrecision = "precision"
)

// RegexRow compares, for one regex feature, the best code of the codebooks
// at the SAE site's layer with the best SAE latent and the best neuron (a
// dimension of the SAE's input) thresholded at the code's recall.
type RegexRow struct {
	Name, Regex string
	Matched     int // positions the regex marks
	Codebook    string
	Code        int
	CodePrec    float64
	CodeRecall  float64
	CodeFires   int
	Latent      int
	LatentPrec  float64
	LatentRec   float64
	LatentFires int
	Neuron      int
	NeuronPrec  float64
	NeuronRec   float64
	NeuronFires int
	Found       bool // some code fires on a matched position
}

// RegexComparison is the table over eval.compare.regexes on a text
// codebook source.
type RegexComparison struct {
	Site      string
	Books     []string // the codebooks searched
	Baseline  interp.NeuronBaseline
	Pick      string
	Seqs      int
	Positions int
	Dims      int // the site's dimensions (the neurons)
	Rows      []RegexRow
	// Means over the rows with a code.
	CodePrec, CodeRecall, LatentPrec, NeuronPrec float64
	Figure                                       string `json:",omitempty"` // the bar chart's file name
}

// regexes compiles cc.Regexes.
func (cc CompareConfig) regexes() ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, len(cc.Regexes))
	for i, r := range cc.Regexes {
		if r.Name == "" || r.Regex == "" {
			return nil, fmt.Errorf("eval.compare.regexes[%d]: name and regex are required", i)
		}
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return nil, fmt.Errorf("eval.compare.regexes[%d] (%s): %w", i, r.Name, err)
		}
		out[i] = re
	}
	return out, nil
}

// CompareRegexes builds the regex comparison when the source is a codebook
// model on text (not TokFSM) data and eval.compare.regexes is set (nil
// otherwise). Positions: the first cc.Seqs windows of the held-out split.
// Codes: every codebook whose site is in the SAE site's layer (every
// codebook when none is), with interp.CodePrecisionRecall (a code fires
// where it is among a position's k active codes); the best code by cc.Pick.
// The SAE latents and the site's dimensions are thresholded at that code's
// recall by the baseline rule (interp.NeuronIndex.BestWith; "official" is
// the codebook-features repo's) and the most precise is shown.
func (e *Experiment) CompareRegexes(cc CompareConfig) (*RegexComparison, error) {
	cc.fill()
	if len(cc.Regexes) == 0 {
		return nil, nil
	}
	if _, ok := e.Src.LM.D.(*lm.FSMData); ok {
		return nil, nil
	}
	cm, ok := e.Src.LM.M.(*codebook.Model)
	if !ok || len(cm.Sites) == 0 {
		return nil, nil
	}
	res, err := cc.regexes()
	if err != nil {
		return nil, err
	}
	baseline, err := interp.ParseNeuronBaseline(cc.NeuronBaseline)
	if err != nil {
		return nil, err
	}
	var sites []nn.Site
	for _, s := range cm.Sites {
		if s.Layer == e.Src.Site.Layer {
			sites = append(sites, s)
		}
	}
	if len(sites) == 0 {
		sites = cm.Sites
	}
	d := e.Src.LM.D
	T := d.Context()
	var x []int64
	for b := range d.Eval(16) {
		x = append(x, b.X...)
		if len(x) >= cc.Seqs*T {
			break
		}
	}
	n := min(cc.Seqs, len(x)/T)
	if n == 0 {
		return nil, fmt.Errorf("eval.compare: the held-out split has no window of %d tokens", T)
	}
	x = x[:n*T]
	texts := make([][]byte, d.Vocab())
	for id := range texts {
		texts[id] = []byte(d.Decode([]int64{int64(id)}))
	}

	fa, err := e.collect(cm, sites, x, n, T, 16)
	if err != nil {
		return nil, err
	}
	ids, numCodes, books, latents, neurons := fa.ids, fa.numCodes, fa.books, fa.latents, fa.neurons
	latentIndex, err := interp.NewNeuronIndex(latents)
	if err != nil {
		return nil, err
	}
	latents = nil
	neuronIndex, err := interp.NewNeuronIndex(neurons)
	if err != nil {
		return nil, err
	}
	neurons = nil

	out := &RegexComparison{Site: e.Cfg.Site, Books: books, Baseline: baseline, Pick: cc.Pick, Seqs: n, Positions: n * T, Dims: e.Src.DIn}
	for i, re := range res {
		matched := make([]bool, 0, n*T)
		seq := make([][]byte, T)
		for s := 0; s < n; s++ {
			for t := range seq {
				seq[t] = texts[x[s*T+t]]
			}
			matched = append(matched, interp.MatchPositions(seq, re)...)
		}
		row := RegexRow{Name: cc.Regexes[i].Name, Regex: cc.Regexes[i].Regex}
		for _, m := range matched {
			if m {
				row.Matched++
			}
		}
		if row.Matched > 0 {
			best := -1.0
			for _, b := range books {
				stats, err := interp.CodePrecisionRecall(ids[b], matched, numCodes[b])
				if err != nil {
					return nil, err
				}
				for _, cs := range stats {
					if cs.Fires == 0 || cs.Hits == 0 {
						continue
					}
					score := 2 * cs.Precision * cs.Recall / (cs.Precision + cs.Recall)
					if cc.Pick == PickPrecision {
						if cs.Recall <= interp.RegexMinRecall {
							continue
						}
						score = cs.Precision + 1e-9*cs.Recall
					}
					if score > best {
						best = score
						row.Found = true
						row.Codebook, row.Code = b, cs.Code
						row.CodePrec, row.CodeRecall, row.CodeFires = cs.Precision, cs.Recall, cs.Fires
					}
				}
			}
		}
		if row.Found {
			ls, err := latentIndex.BestWith(baseline, matched, row.CodeRecall)
			if err != nil {
				return nil, err
			}
			ns, err := neuronIndex.BestWith(baseline, matched, row.CodeRecall)
			if err != nil {
				return nil, err
			}
			row.Latent, row.LatentPrec, row.LatentRec, row.LatentFires = ls.Neuron, ls.Precision, ls.Recall, ls.Fires
			row.Neuron, row.NeuronPrec, row.NeuronRec, row.NeuronFires = ns.Neuron, ns.Precision, ns.Recall, ns.Fires
		}
		out.Rows = append(out.Rows, row)
	}
	k := 0.0
	for _, r := range out.Rows {
		if r.Found {
			k++
		}
	}
	for _, r := range out.Rows {
		if r.Found {
			out.CodePrec += r.CodePrec / k
			out.CodeRecall += r.CodeRecall / k
			out.LatentPrec += r.LatentPrec / k
			out.NeuronPrec += r.NeuronPrec / k
		}
	}
	return out, nil
}

// neuronName names dimension j of the site's activation (head.dim for a
// per-head site).
func (e *Experiment) neuronName(j int) string {
	if len(e.Src.Shape) == 2 {
		return fmt.Sprintf("%d (h%d.%d)", j, j/e.Src.Shape[1], j%e.Src.Shape[1])
	}
	return fmt.Sprint(j)
}

// Save writes the comparison as JSON and its bar chart (code / SAE latent /
// neuron precision per regex) into dir; it records the chart's file name.
func (c *RegexComparison) Save(dir string) error {
	const fig = "compare_regex.png"
	var labels []string
	var code, latent, neuron []float64
	for _, r := range c.Rows {
		if !r.Found {
			continue
		}
		labels = append(labels, r.Name)
		code = append(code, r.CodePrec)
		latent = append(latent, r.LatentPrec)
		neuron = append(neuron, r.NeuronPrec)
	}
	if len(labels) > 0 {
		err := plot.Bars(filepath.Join(dir, fig), plot.Figure{
			Title:  fmt.Sprintf("Precision at the best code's recall (%s)", c.Site),
			XLabel: "regex feature", YLabel: "precision",
		},
			plot.BarGroup{Name: "best code", Labels: labels, Values: code},
			plot.BarGroup{Name: "best SAE latent", Labels: labels, Values: latent},
			plot.BarGroup{Name: "best neuron", Labels: labels, Values: neuron})
		if err != nil {
			return err
		}
		c.Figure = fig
	}
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(filepath.Join(dir, "compare_regex.json"), append(js, '\n'), 0o644)
}

// Markdown is the comparison table (with the figure when saved); name
// labels the neurons.
func (c *RegexComparison) Markdown(name func(int) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Codes vs SAE latents vs neurons per regex feature\n\n")
	rule := "highest F1"
	if c.Pick == PickPrecision {
		rule = fmt.Sprintf("highest precision with recall > %g (`hiddenlab codebook search`'s rule)", interp.RegexMinRecall)
	}
	fmt.Fprintf(&b, "Feature: the tokens a regex match covers (interp.MatchPositions) in the first %d held-out windows (%d positions). "+
		"Best code: %s over the codebooks %s (a code fires where it is among the k active codes, interp.CodePrecisionRecall); "+
		"the SAE latents and the neurons (the %d dimensions of `%s`, the SAE's input) are thresholded at that code's recall (%s rule) and the most precise is shown. "+
		"P = precision, R = recall.\n\n",
		c.Seqs, c.Positions, rule, strings.Join(c.Books, ", "), c.Dims, c.Site, c.Baseline)
	b.WriteString("| feature | regex | matched | best code | code P | code R | best SAE latent | latent P | latent R | best neuron | neuron P | neuron R |\n")
	b.WriteString("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range c.Rows {
		re := "`" + strings.ReplaceAll(r.Regex, "|", `\|`) + "`"
		if !r.Found {
			fmt.Fprintf(&b, "| %s | %s | %d | — | | | | | | | | |\n", r.Name, re, r.Matched)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s:%d | %.3f | %.3f | %d | %.3f | %.3f | %s | %.3f | %.3f |\n",
			r.Name, re, r.Matched, r.Codebook, r.Code, r.CodePrec, r.CodeRecall, r.Latent, r.LatentPrec, r.LatentRec,
			name(r.Neuron), r.NeuronPrec, r.NeuronRec)
	}
	found := 0
	for _, r := range c.Rows {
		if r.Found {
			found++
		}
	}
	fmt.Fprintf(&b, "| **mean** (%d features) | | | | **%.3f** | %.3f | | **%.3f** | | | **%.3f** | |\n",
		found, c.CodePrec, c.CodeRecall, c.LatentPrec, c.NeuronPrec)
	if c.Figure != "" {
		fmt.Fprintf(&b, "\n![code vs SAE latent vs neuron precision per regex feature](%s)\n", c.Figure)
	}
	return b.String()
}

// Extra is the comparison's summary numbers.
func (c *RegexComparison) Extra() map[string]any {
	found := 0
	for _, r := range c.Rows {
		if r.Found {
			found++
		}
	}
	out := map[string]any{"features": len(c.Rows), "found": found, "code_precision": c.CodePrec, "code_recall": c.CodeRecall,
		"latent_precision": c.LatentPrec, "neuron_precision": c.NeuronPrec}
	for _, r := range c.Rows {
		if r.Found && !math.IsNaN(r.CodePrec) {
			out[r.Name] = map[string]any{"code": r.CodePrec, "latent": r.LatentPrec, "neuron": r.NeuronPrec, "recall": r.CodeRecall}
		}
	}
	return out
}
