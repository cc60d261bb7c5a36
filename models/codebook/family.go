package codebook

import (
	"fmt"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/stats"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// Analysis is the codebook recipe's eval.analysis section: the TokFSM study
// run at the end of training (and its cheap parts at every evaluation).
type Analysis struct {
	Samples       int `key:"samples"`       // sampled sequences for transition accuracy
	StateSeqs     int `key:"state_seqs"`    // held-out sequences for state codes vs neurons
	Interventions int `key:"interventions"` // random transitions patched (intervention_target: true_distribution)
	// The definitions, official by default (DefaultAnalysis; fsm.go):
	// neuron_baseline official|matched_recall (interp.NeuronBaseline),
	// intervention_target official|true_distribution, first_transition_ties
	// official|shared, sample_bos blocked|allowed.
	NeuronBaseline      string `key:"neuron_baseline"`
	InterventionTarget  string `key:"intervention_target"`
	FirstTransitionTies string `key:"first_transition_ties"`
	SampleBOS           string `key:"sample_bos"`
}

// EvalConfig is a codebook recipe's eval section.
type EvalConfig struct {
	lm.EvalConfig `key:",inline"`
	Analysis      Analysis `key:"analysis"`
	// Steering, when present, runs the topic-steering experiment in the
	// report (see Steering; steer.go).
	Steering *Steering `key:"steering"`
}

// Family builds this family's experiments (registered by package families).
type Family struct{}

// experiment is an LM experiment of a codebook model, with dead-code
// replacement, k-means initialisation and the TokFSM analyses.
type codebookExperiment struct {
	*lm.Experiment
	m        *Model
	fsm      *lm.FSMData
	analysis Analysis
	seed     uint64
	result   *FSMAnalysis
	steering *Steering
	steered  *SteerReport
	usage    map[string][]float64 // code usage at the last evaluation (Histograms)
}

func (Family) Build(r *experiment.Recipe, env experiment.Env) (experiment.Experiment, error) {
	d, m, err := lm.BuildModel(r, env, Build)
	if err != nil {
		return nil, err
	}
	ev := EvalConfig{EvalConfig: lm.DefaultEval(), Analysis: DefaultAnalysis()}
	if err := r.Decode("eval", &ev); err != nil {
		m.Close()
		return nil, err
	}
	a := ev.Analysis
	if err := lm.CheckKeys(r,
		lm.Check{OK: a.Samples >= 0, Key: "eval.analysis.samples", Reason: fmt.Sprintf("must not be negative, got %d", a.Samples)},
		lm.Check{OK: a.StateSeqs >= 0, Key: "eval.analysis.state_seqs", Reason: fmt.Sprintf("must not be negative, got %d", a.StateSeqs)},
		lm.Check{OK: a.Interventions >= 0, Key: "eval.analysis.interventions", Reason: fmt.Sprintf("must not be negative, got %d", a.Interventions)},
	); err != nil {
		m.Close()
		return nil, err
	}
	if err := lm.CheckKeys(r, a.optionChecks()...); err != nil {
		m.Close()
		return nil, err
	}
	if err := lm.CheckEval(r, ev.EvalConfig); err != nil {
		m.Close()
		return nil, err
	}
	if ev.Batch == 0 {
		ev.Batch = r.Train.Batch
	}
	if ev.Steering != nil {
		ev.Steering.fill()
		if err := ev.Steering.check(); err != nil {
			m.Close()
			return nil, fmt.Errorf("%s: %w", r.Raw.Path, err)
		}
	}
	r.Record("eval", &ev)
	e := &codebookExperiment{
		Experiment: &lm.Experiment{M: m, D: d, Evaluation: ev.EvalConfig, Batch: r.Train.Batch, Device: env.Device},
		m:          m, analysis: ev.Analysis, seed: r.Train.Seed, steering: ev.Steering,
	}
	e.fsm, _ = d.(*lm.FSMData)
	return e, nil
}

// Groups implements experiment.Grouper.
func (e *codebookExperiment) Groups(o experiment.Optimizer) []*optim.Group { return e.m.Groups(o) }

// Loss initialises codes by k-means before the first step, replaces dead
// codes on the recipe's cadence, then computes the LM loss plus the
// codebooks' reconstruction losses.
func (e *codebookExperiment) Loss(step int) (*torch.Tensor, experiment.Logs) {
	s := e.m.Set
	if step == 0 && s.KMeansInit > 0 {
		e.kmeans()
	}
	replace := s.ReplaceEvery > 0 && len(e.m.Sites) > 0
	replaced := 0
	if replace && step > 0 && step%s.ReplaceEvery == 0 {
		// The previous step recorded its inputs; codes change before this
		// step's forward, never inside a graph.
		for _, site := range e.m.Sites {
			l := e.m.Layers[site]
			if in := l.Input(); in != nil {
				replaced += l.ReplaceDead(in, s.ReplaceRho)
			}
		}
	}
	// Record this step's inputs when the next step replaces codes.
	if replace && (step+1)%s.ReplaceEvery == 0 {
		e.m.SetRecord(true)
		defer e.m.SetRecord(false)
	}
	loss, logs := e.Experiment.Loss(step)
	if replace && step > 0 && step%s.ReplaceEvery == 0 {
		logs["replaced_codes"] = float64(replaced)
	}
	return loss, logs
}

// kmeans runs the model with the codebooks bypassed on the first training
// batches and fits each codebook's codes to its normalised inputs.
func (e *codebookExperiment) kmeans() {
	s := e.m.Set
	inputs := map[string][]*torch.Tensor{}
	for _, l := range e.m.Layers {
		l.Bypass, l.Record = true, true
	}
	torch.NoGrad(func() {
		for i := 0; i < s.KMeansInit; i++ {
			x, _ := e.D.Batch(i, e.Batch)
			torch.WithScope(func() {
				e.m.Forward(torch.FromSlice(x, []int{e.Batch, len(x) / e.Batch}, e.Device))
			})
			for _, site := range e.m.Sites {
				inputs[site.String()] = append(inputs[site.String()], e.m.Layers[site].Input().Clone().Retain())
			}
		}
	})
	for _, site := range e.m.Sites {
		l := e.m.Layers[site]
		l.Bypass, l.Record = false, false
		torch.WithScope(func() { l.KMeansInit(torch.Cat(inputs[site.String()], 0), s.KMeansIters) })
		for _, t := range inputs[site.String()] {
			t.Free()
		}
	}
}

// metrics adds, at every evaluation, each site's dead-code fraction since the
// previous evaluation and, on TokFSM, the sampled and exact transition
// accuracies.
func (e *codebookExperiment) metrics() experiment.Logs {
	logs := e.m.DeadFractions()
	e.usage = map[string][]float64{}
	for site, l := range e.m.Layers {
		e.usage["code_usage/"+site.String()] = l.Counts.To(torch.Float64).Float64s()
		l.ResetCounts()
	}
	if e.fsm != nil {
		a := &FSMAnalysis{}
		a.TransitionAcc, a.FirstTransitionAcc = sampledTransitions(e.m, e.fsm.FSM, e.analysis.Samples, e.analysis.SampleBOS != BOSAllowed)
		logs["transition_accuracy"], logs["first_transition_accuracy"] = a.TransitionAcc, a.FirstTransitionAcc
	}
	return logs
}

// Histograms implements experiment.Histogrammer: per codebook site, how
// many training forwards since the last evaluation used each code (all
// groups together); TensorBoard draws it as the code-usage histogram.
func (e *codebookExperiment) Histograms() map[string][]float64 { return e.usage }

// section runs the full analyses for the report.
func (e *codebookExperiment) section(dir string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "## Codebooks\n\n")
	if len(e.m.Sites) == 0 {
		b.WriteString("None (the no-codebook baseline).\n")
	} else {
		fmt.Fprintf(&b, "%d codebook site(s): %s; C = %d codes per codebook, k = %d; %s codebook parameters.\n",
			len(e.m.Sites), siteList(e.m), e.m.Set.Codes, e.m.Set.K,
			stats.Thousands(e.m.Store().NumParams(IsCodebookParam)))
	}
	if e.steering != nil && len(e.m.Sites) > 0 {
		rep, sec, err := steerSection(e.m, e.D, *e.steering, e.Batch, dir)
		if err != nil {
			return "", err
		}
		e.steered = rep
		b.WriteString("\n" + sec)
	}
	if e.fsm == nil {
		return b.String(), nil
	}
	a, err := AnalyzeFSMWith(e.m, e.fsm.FSM, e.seed, e.analysis)
	if err != nil {
		return "", err
	}
	e.result = a
	b.WriteString("\n" + a.Markdown())
	return b.String(), nil
}

// Extra implements the runner's summary extension: the headline analysis
// numbers, for sweep tables.
func (e *codebookExperiment) Extra() map[string]any {
	var out map[string]any
	if e.steered != nil {
		out = e.steered.Extra()
	}
	if e.result == nil {
		return out
	}
	if out == nil {
		out = map[string]any{}
	}
	out["transition_accuracy"] = e.result.TransitionAcc
	out["first_transition_accuracy"] = e.result.FirstTransitionAcc
	out["exact_first_transition"] = e.result.ExactFirstAcc
	if len(e.result.States) > 0 {
		out["state_code_precision"] = e.result.MeanCodePrecision
		out["state_code_recall"] = e.result.MeanCodeRecall
		out["best_neuron_precision"] = e.result.MeanNeuronPrec
	}
	for _, l := range e.result.Layers {
		out[fmt.Sprintf("state_code_precision_l%d", l.Layer)] = l.CodePrecision
		out[fmt.Sprintf("best_neuron_precision_l%d", l.Layer)] = l.NeuronPrecision
	}
	for _, iv := range e.result.Interventions {
		out["jsd "+iv.Condition] = iv.NormJSD
	}
	return out
}

func siteList(m *Model) string {
	var names []string
	for _, s := range m.Sites {
		l := m.Layers[s]
		n := s.String()
		if l.G > 1 {
			n += fmt.Sprintf(" (%d groups)", l.G)
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// Eval implements experiment.Experiment: the LM metrics plus the family's.
func (e *codebookExperiment) Eval() experiment.Logs {
	logs := e.Experiment.Eval()
	for k, v := range e.metrics() {
		logs[k] = v
	}
	return logs
}

// Report implements experiment.Experiment: the LM report (data, samples)
// followed by the family's section.
func (e *codebookExperiment) Report(dir string) (string, error) {
	return e.Experiment.ReportWith(dir, e.section)
}
