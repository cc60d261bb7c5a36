package codebook

import (
	"fmt"
	"math"
	"strings"

	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/stats"
)

// StudyRun is one run of a TokFSM sweep (rundir.SweepRun).
type StudyRun = rundir.SweepRun

// studyConfig collects the completed runs of one configuration.
type studyConfig struct {
	name   string
	sums   []*rundir.Summary
	bayes  float64 // Bayes-optimal CE of the runs' FSM
	codes  int     // C of the runs' codebooks (0: none)
	layers int
}

// Study tabulates a TokFSM sweep of codebook models layer by layer (paper
// §2.2, Table 2's question at every depth): per configuration, how close the
// eval cross-entropy gets to the FSM's Bayes-optimal CE and how many codes
// stay alive; per configuration and layer, the best state code's precision
// against the best neuron's at the code's recall (the definitions the runs
// were analysed with; official by default), the intervention JSD of that
// layer's MLP and attention codebooks (official target: lower is a stronger
// move towards the patched-in state), and the share of live codes.
// Live codes are 1 − eval.dead/<site> at the last evaluation: the codes
// some training forward used since the previous evaluation. Values are
// means over seeds (± std with more than one). It returns Markdown.
func Study(runs []StudyRun) (string, error) {
	var cfgs []*studyConfig
	for _, g := range rundir.Completed(runs) {
		for i, s := range g.Sums {
			if s.Family != "codebook" {
				return "", fmt.Errorf("%s: a %q run, not a codebook run", g.Runs[i].Dir, s.Family)
			}
		}
		dir := g.Runs[0].Dir
		rec, err := rundir.LoadRecipe(dir)
		if err != nil {
			return "", err
		}
		mc := DefaultConfig()
		if err := rec.Decode("model", &mc); err != nil {
			return "", err
		}
		d, _, err := lm.LoadData(rec, dir, 0)
		if err != nil {
			return "", err
		}
		f, ok := d.(*lm.FSMData)
		if !ok {
			return "", fmt.Errorf("codebook study: %s is not a TokFSM run", dir)
		}
		c := &studyConfig{name: g.Config, sums: g.Sums, layers: mc.Layers, bayes: math.NaN()}
		c.bayes, _ = f.FSM.BayesExact()
		if len(mc.Codebook.At) > 0 {
			c.codes = mc.Codebook.Codes
		}
		cfgs = append(cfgs, c)
	}
	if len(cfgs) == 0 {
		return "", fmt.Errorf("codebook study: no completed runs")
	}
	var b strings.Builder
	b.WriteString("## Per configuration\n\nEval cross-entropy against the FSM's Bayes-optimal CE; mean best state code vs best neuron over all layers (per state, the code of highest F1 in any codebook, the neuron at its recall); live codes per codebook, averaged over layers; intervention JSD when every MLP (or every attention) codebook is patched at once (official target, normalised by the unpatched condition: lower = a stronger move towards the patched-in state).\n\n")
	b.WriteString("| config | seeds | C | eval CE | Bayes CE | CE − Bayes | transition accuracy | code precision | neuron precision | code − neuron | live MLP codes | live attention codes (per head) | JSD, all MLP codebooks | JSD, all attention codebooks |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cfgs {
		live := func(point string) string {
			if c.codes == 0 {
				return "–"
			}
			var per []float64
			for _, s := range c.sums {
				t, n := 0.0, 0
				for l := range c.layers {
					if v, ok := s.Eval[fmt.Sprintf("dead/blocks.%d.%s", l, point)]; ok {
						t += 1 - v
						n++
					}
				}
				if n > 0 {
					per = append(per, t/float64(n))
				}
			}
			return liveCell(per, c.codes)
		}
		ce := c.each(func(s *rundir.Summary) float64 { return s.Value("eval.loss") })
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.4f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.name, len(c.sums), codesCell(c.codes),
			meanCell(ce), c.bayes, meanCell(shift(ce, -c.bayes)),
			meanCell(c.each(func(s *rundir.Summary) float64 { return s.Value("extra.transition_accuracy") })),
			meanCell(c.each(func(s *rundir.Summary) float64 { return s.Value("extra.state_code_precision") })),
			meanCell(c.each(func(s *rundir.Summary) float64 { return s.Value("extra.best_neuron_precision") })),
			meanCell(c.each(func(s *rundir.Summary) float64 {
				return s.Value("extra.state_code_precision") - s.Value("extra.best_neuron_precision")
			})),
			live("mlp"), live("attn_preproj"),
			meanCell(c.each(func(s *rundir.Summary) float64 { return s.Value("extra.jsd all MLP codebooks") })),
			meanCell(c.each(func(s *rundir.Summary) float64 { return s.Value("extra.jsd all attention codebooks") })))
	}
	b.WriteString("\n## Per layer\n\nBest state code among the layer's codebooks vs the best neuron of the layer's attention and MLP outputs (neuron thresholded at the code's recall); intervention JSD of the layer's MLP codebook and of its attention codebooks (normalised by the largest condition, the unpatched one: lower = the patch moves the output further towards the patched-in state); live codes.\n\n")
	b.WriteString("| config | layer | code precision | neuron precision | code − neuron | JSD, MLP codebook | JSD, attention codebooks | live MLP codes | live attention codes |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cfgs {
		if c.codes == 0 {
			continue
		}
		for l := range c.layers {
			x := func(key string) []float64 {
				return c.each(func(s *rundir.Summary) float64 { return s.Value("extra." + key) })
			}
			code, neuron := x(fmt.Sprintf("state_code_precision_l%d", l)), x(fmt.Sprintf("best_neuron_precision_l%d", l))
			diff := make([]float64, len(code))
			for i := range diff {
				diff[i] = code[i] - neuron[i]
			}
			live := func(point string) string {
				return liveCell(c.each(func(s *rundir.Summary) float64 {
					return 1 - s.Value(fmt.Sprintf("eval.dead/blocks.%d.%s", l, point))
				}), c.codes)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", c.name, l, meanCell(code), meanCell(neuron), meanCell(diff),
				meanCell(x(fmt.Sprintf("jsd MLP layer %d", l))), meanCell(x(fmt.Sprintf("jsd attention layer %d", l))), live("mlp"), live("attn_preproj"))
		}
	}
	return b.String(), nil
}

// each evaluates f on every run of the configuration.
func (c *studyConfig) each(f func(s *rundir.Summary) float64) []float64 {
	out := make([]float64, len(c.sums))
	for i, s := range c.sums {
		out[i] = f(s)
	}
	return out
}

func shift(xs []float64, by float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x + by
	}
	return out
}

// meanCell renders the mean of the finite values, ± their std when there
// are several; "–" for none.
func meanCell(xs []float64) string {
	xs = stats.Finite(xs)
	switch len(xs) {
	case 0:
		return "–"
	case 1:
		return fmt.Sprintf("%.3f", xs[0])
	}
	m, s := stats.MeanStd(xs)
	return fmt.Sprintf("%.3f ± %.3f", m, s)
}

// liveCell renders a live share of C codes as "share (count)".
func liveCell(share []float64, codes int) string {
	share = stats.Finite(share)
	if len(share) == 0 {
		return "–"
	}
	m := stats.Mean(share)
	return fmt.Sprintf("%.3f (%.0f of %d)", m, m*float64(codes), codes)
}

func codesCell(c int) string {
	if c == 0 {
		return "–"
	}
	return fmt.Sprint(c)
}
