package hrpo

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/plot"
	"github.com/hiddenlab/hiddenlab/rundir"
)

// Per-prompt tables of the final evaluation in a run directory, read by
// the paired tests of [Study]: greedy results (PromptsFile) and sampled
// ones (SampledFile: correct samples of k at τ per problem).
const (
	PromptsFile = "eval_prompts.csv"
	SampledFile = "eval_sampled.csv"
)

// finalEval is the report's evaluation.
type finalEval struct {
	hybrid, off       []Result // off: nil unless the arm feeds latents
	hybridSum, offSum *Summary
	sampled           []Sampled // nil without eval.pass_k
	stepS             float64   // median wall seconds per training step
}

// Report implements experiment.Experiment: the final evaluation on
// eval.final_per_k problems per K (hybrid and latent-off, per-prompt
// results in eval_prompts.csv), pass@k, samples, and the curves of the
// training metrics (reward, hidden ratio, lengths, KL, entropy, accuracy by
// K) in plots/.
func (e *Experiment) Report(dir string) (string, error) {
	ec := e.eval
	f := &finalEval{stepS: stepSeconds(dir)}
	if ec.FinalPerK > 0 {
		set, err := e.evalProblems(ec.FinalPerK)
		if err != nil {
			return "", err
		}
		o := RolloutOptions{MaxNew: ec.MaxNew, Greedy: true}
		if f.hybrid, err = e.M.Evaluate(set, o, ec.Batch); err != nil {
			return "", err
		}
		f.hybridSum = Summarize(f.hybrid)
		if e.M.Arm.Latent() {
			o.LatentOff = true
			if f.off, err = e.M.Evaluate(set, o, ec.Batch); err != nil {
				return "", err
			}
			f.offSum = Summarize(f.off)
		}
		if err := writePrompts(filepath.Join(dir, PromptsFile), f.hybrid, f.off); err != nil {
			return "", err
		}
		if ec.PassK > 0 && ec.PassPrompts > 0 {
			var pass []reasoning.Problem
			for i, p := range set {
				if i%ec.FinalPerK < ec.PassPrompts {
					pass = append(pass, p)
				}
			}
			if f.sampled, err = e.M.Sample(pass, ec.PassK, ec.MaxNew, ec.Batch); err != nil {
				return "", err
			}
			if err := writeSampled(filepath.Join(dir, SampledFile), f.sampled); err != nil {
				return "", err
			}
		}
	}
	e.final = f
	figs := e.plots(dir)

	var b strings.Builder
	if e.data.Phase == "sft" {
		fmt.Fprintf(&b, "## SFT warm-up\n\nTask %s, K in [%d, %d]; mix: %.0f%% full, %.0f%% skip, %.0f%% direct traces, HopChain share %.0f%%, trace noise %.0f%%. Plain token inputs (no gate).\n\n",
			e.task, e.data.K.Min, e.data.K.Max, 100*e.data.SFT.Full, 100*e.data.SFT.Skip, 100*e.data.SFT.Direct, 100*e.data.SFT.HopShare, 100*e.data.SFT.Noise)
	} else {
		fmt.Fprintf(&b, "## HRPO: arm %s\n\n%s\n\nτ = %g (sampling, top-k %d), loss temperature %g, β = %g, G = %d, %d prompts per step, max %d new tokens; gate c = %g, r ∈ [%g, %g], %s init, LRs: policy (train.optimizer.lr), gate %g, Λ %g, weight decay %g.",
			e.M.Arm, armDescription(e.M.Arm), e.model.Tau, e.model.TopK, e.model.LossTemperature, e.model.Beta, e.data.Group, e.batch, e.data.MaxNew,
			e.model.Gate.C, e.model.Gate.RMin, e.model.Gate.RMax, e.model.Gate.Init, e.model.Gate.LR, e.model.Gate.LambdaLR, e.model.Gate.WeightDecay)
		if f.stepS > 0 {
			fmt.Fprintf(&b, " Median step time %.2f s (rollout, teacher-forced and reference forwards, backward, update).", f.stepS)
		}
		b.WriteString("\n\n")
	}
	if f.hybridSum != nil {
		fmt.Fprintf(&b, "### Final evaluation\n\n%d held-out problems per K, greedy; ĥ from p = softmax(z/τ). Per-prompt results: `%s`.\n\n", ec.FinalPerK, PromptsFile)
		b.WriteString(byKTable(f))
		if f.sampled != nil {
			l := SampledLogs(f.sampled)
			fmt.Fprintf(&b, "\nSampled evaluation (%d samples at τ = %g of %d problems per K, `%s`): accuracy %.3f, pass@%d %.3f.\n\n| K |", ec.PassK, e.model.Tau, ec.PassPrompts, SampledFile, l["sampled_acc"], ec.PassK, l["pass_at_k"])
			ks := f.hybridSum.Ks()
			for _, k := range ks {
				fmt.Fprintf(&b, " %d |", k)
			}
			b.WriteString("\n|---|" + strings.Repeat("---|", len(ks)) + "\n| sampled accuracy |")
			for _, k := range ks {
				fmt.Fprintf(&b, " %.3f |", l[fmt.Sprintf("sampled_acc_k%d", k)])
			}
			fmt.Fprintf(&b, "\n| pass@%d |", ec.PassK)
			for _, k := range ks {
				fmt.Fprintf(&b, " %.3f |", l[fmt.Sprintf("pass_at_k_k%d", k)])
			}
			b.WriteString("\n")
		}
		if ec.Samples > 0 {
			b.WriteString("\n### Samples (greedy, hybrid input)\n\n```\n")
			shown := map[int]int{}
			v := reasoning.Vocab{}
			for _, r := range f.hybrid {
				if shown[r.Problem.K] >= ec.Samples {
					continue
				}
				shown[r.Problem.K]++
				mark := "✗"
				if r.Correct {
					mark = "✓"
				}
				fmt.Fprintf(&b, "K=%-2d %s  →  %s   %s (answer %s)\n", r.Problem.K, v.String(r.Problem.Prompt), v.String(r.Completion), mark, v.Token(r.Problem.Answer))
			}
			b.WriteString("```\n")
		}
	}
	if len(figs) > 0 {
		b.WriteString("\n### HRPO curves\n\n")
		for _, p := range figs {
			fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(filepath.Base(p), ".png"), p)
		}
	}
	return b.String(), nil
}

// armDescription says what an arm feeds at think positions.
func armDescription(a Arm) string {
	switch a {
	case GRPO:
		return "Think-span input: the sampled token's embedding ê (the GRPO baseline)."
	case HRPO:
		return "Think-span input: a ⊙ ê + √(1 − a² + 1e-8) ⊙ (i ⊙ ĥ), ĥ = pᵀE/‖p‖₂, a = σ(Λ)^(c·r)."
	case InterpOnly:
		return "Think-span input: ĥ = pᵀE/‖p‖₂ alone (interpolation only)."
	case RawHidden:
		return "Think-span input: the previous position's final post-norm hidden state (raw hidden)."
	case FrozenGate:
		return "Think-span input: the HRPO hybrid with W_r, b_r, W_i, b_i and Λ frozen at their initialisation."
	}
	return ""
}

// byKTable renders accuracy, length and think length by K, hybrid and
// latent-off.
func byKTable(f *finalEval) string {
	var b strings.Builder
	b.WriteString("| K | accuracy | completion length | think length | faithfulness |")
	if f.offSum != nil {
		b.WriteString(" accuracy, latent off | length, latent off |")
	}
	b.WriteString("\n|---|---|---|---|---|")
	if f.offSum != nil {
		b.WriteString("---|---|")
	}
	b.WriteString("\n")
	row := func(label string, h, o *reasoning.Stats) {
		fmt.Fprintf(&b, "| %s | %.3f | %.2f | %.2f | %.3f |", label, h.Accuracy(), h.MeanLength(), h.MeanThinkLength(), h.Faithfulness())
		if o != nil {
			fmt.Fprintf(&b, " %.3f | %.2f |", o.Accuracy(), o.MeanLength())
		}
		b.WriteString("\n")
	}
	for _, k := range f.hybridSum.Ks() {
		var o *reasoning.Stats
		if f.offSum != nil {
			o = f.offSum.ByK[k]
		}
		row(strconv.Itoa(k), f.hybridSum.ByK[k], o)
	}
	var o *reasoning.Stats
	if f.offSum != nil {
		o = &f.offSum.All
	}
	row("all", &f.hybridSum.All, o)
	fmt.Fprintf(&b, "\nFormat-valid rate %.3f; skip rate %.3f", f.hybridSum.All.FormatRate(), f.hybridSum.All.MeanSkipRate())
	if h := f.hybridSum.HiddenRatio(); !math.IsNaN(h) {
		fmt.Fprintf(&b, "; hidden ratio of the evaluation rollouts %.4f", h)
	}
	b.WriteString(".\n")
	return b.String()
}

// Extra implements the runner's summary extension: the final evaluation's
// headline numbers (extra.acc, extra.acc_k<K>, extra.off_acc_k<K>,
// extra.length, extra.hidden_ratio, extra.sampled_acc, extra.pass_at_k,
// extra.step_s, …) for
// sweep tables.
func (e *Experiment) Extra() map[string]any {
	f := e.final
	if f == nil || f.hybridSum == nil {
		return nil
	}
	// k_max is the longest chain of the training data: the study splits
	// its paired differences into the trained range and beyond it.
	out := map[string]any{"arm": string(e.M.Arm), "k_max": float64(e.data.K.Max)}
	for k, v := range f.hybridSum.Logs("") {
		out[k] = v
	}
	if f.offSum != nil {
		for k, v := range f.offSum.Logs("off_") {
			out[k] = v
		}
	}
	if f.sampled != nil {
		for k, v := range SampledLogs(f.sampled) {
			out[k] = v
		}
	}
	if f.stepS > 0 {
		out["step_s"] = f.stepS
	}
	return out
}

// writePrompts writes the per-prompt final results; off may be nil.
func writePrompts(path string, hybrid, off []Result) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(file)
	w.Write([]string{"index", "k", "answer", "correct", "correct_off", "length", "think_len", "hidden_ratio", "completion"})
	v := reasoning.Vocab{}
	for i, r := range hybrid {
		co := ""
		if off != nil {
			co = boolDigit(off[i].Correct)
		}
		hr := ""
		if !math.IsNaN(r.HiddenRatio) {
			hr = strconv.FormatFloat(r.HiddenRatio, 'g', 6, 64)
		}
		w.Write([]string{strconv.Itoa(i), strconv.Itoa(r.Problem.K), v.Token(r.Problem.Answer), boolDigit(r.Correct), co,
			strconv.Itoa(reasoning.CompletionLength(r.Completion)), strconv.Itoa(reasoning.ThinkLength(r.Completion)), hr,
			v.String(r.Completion)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// writeSampled writes the per-problem sampled results.
func writeSampled(path string, s []Sampled) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(file)
	w.Write([]string{"index", "k", "samples", "correct"})
	for i, x := range s {
		w.Write([]string{strconv.Itoa(i), strconv.Itoa(x.Problem.K), strconv.Itoa(x.K), strconv.Itoa(x.Correct)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// stepSeconds is the median wall time between consecutive training logs
// one step apart (evaluations excluded), 0 if unknown.
func stepSeconds(dir string) float64 {
	recs, err := rundir.ReadMetrics(dir)
	if err != nil {
		return 0
	}
	var diffs []float64
	prevStep, prevAt := -1, 0.0
	for _, r := range recs {
		if r.Split != "train" {
			prevStep = -1
			continue
		}
		if prevStep >= 0 && r.Step == prevStep+1 {
			diffs = append(diffs, r.At-prevAt)
		}
		prevStep, prevAt = r.Step, r.At
	}
	if len(diffs) == 0 {
		return 0
	}
	sort.Float64s(diffs)
	return diffs[len(diffs)/2]
}

// plots draws the run's HRPO curves from metrics.jsonl into plots/ and
// returns their paths relative to dir.
func (e *Experiment) plots(dir string) []string {
	recs, err := rundir.ReadMetrics(dir)
	if err != nil || len(recs) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, rundir.PlotsDir), 0o755); err != nil {
		return nil
	}
	series := func(split, key, name string, dashed bool) plot.Series {
		s := rundir.Curve(recs, split, key, name)
		s.Dashed = dashed
		return s
	}
	var out []string
	draw := func(name, title, ylabel string, ss ...plot.Series) {
		if rel, ok := rundir.DrawCurves(dir, name, plot.Figure{Title: title, XLabel: "step", YLabel: ylabel}, ss...); ok {
			out = append(out, rel)
		}
	}
	arm := string(e.M.Arm)
	if e.data.Phase == "rl" {
		reward := series("train", "reward", "reward", true)
		draw("reward", "Reward ("+arm+")", "mean reward",
			reward, ema(reward, 0.1, "reward (EMA 0.1)"), series("train", "zero_var", "zero-variance groups", true))
		draw("hidden_ratio", "Hidden ratio √(1 − a²) ("+arm+")", "hidden ratio",
			series("train", "hidden_ratio", "hidden_ratio (code's definition)", false),
			series("train", "hidden_q10", "elementwise q10", true), series("train", "hidden_q50", "elementwise q50", true),
			series("train", "hidden_q90", "elementwise q90", true))
		draw("decay", "σ(Λ)^c over dimensions ("+arm+")", "σ(Λ)^c",
			series("train", "decay_q10", "q10", false), series("train", "decay_q50", "q50", false), series("train", "decay_q90", "q90", false))
		draw("length", "Completion and think length ("+arm+")", "tokens",
			series("train", "length", "completion length", false), series("train", "think_len", "think length", false))
		draw("kl", "k3 KL to the reference ("+arm+")", "KL", series("train", "kl", "kl", false))
		draw("entropy", "Think-span entropy of p ("+arm+")", "nats", series("train", "entropy", "entropy", false))
	}
	var acc []plot.Series
	for k := e.eval.K.Min; k <= e.eval.K.Max; k++ {
		acc = append(acc, series("eval", fmt.Sprintf("acc_k%d", k), fmt.Sprintf("K=%d", k), k > e.data.K.Max))
	}
	draw("eval_acc_by_k", "Held-out greedy accuracy by K ("+arm+")", "accuracy", acc...)
	if f := e.final; f != nil && f.hybridSum != nil {
		var labels []string
		var hv, ov []float64
		for _, k := range f.hybridSum.Ks() {
			labels = append(labels, "K="+strconv.Itoa(k))
			hv = append(hv, f.hybridSum.ByK[k].Accuracy())
			if f.offSum != nil {
				ov = append(ov, f.offSum.ByK[k].Accuracy())
			}
		}
		groups := []plot.BarGroup{{Name: "input of the arm", Labels: labels, Values: hv}}
		if f.offSum != nil {
			groups = append(groups, plot.BarGroup{Name: "latent off", Labels: labels, Values: ov})
		}
		rel := filepath.Join(rundir.PlotsDir, "final_acc_by_k.png")
		if err := plot.Bars(filepath.Join(dir, rel), plot.Figure{Title: "Final accuracy by K (" + arm + ")", YLabel: "accuracy"}, groups...); err == nil {
			out = append(out, rel)
		}
	}
	return out
}

// ema smooths a series with an exponential moving average of weight alpha.
func ema(s plot.Series, alpha float64, name string) plot.Series {
	out := plot.Series{Name: name, X: s.X}
	v := 0.0
	for i, y := range s.Y {
		if i == 0 {
			v = y
		} else {
			v = alpha*y + (1-alpha)*v
		}
		out.Y = append(out.Y, v)
	}
	return out
}
