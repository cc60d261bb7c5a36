package codebook

import (
	"fmt"
	"strings"

	"hiddenlab/models/lm"
	"hiddenlab/runner"
	"hiddenlab/torch"
	"hiddenlab/torch/optim"
)

func init() { runner.Register("codebook", family{}) }

// Analysis is the codebook recipe's eval.analysis section: the TokFSM study
// run at the end of training (and its cheap parts at every evaluation).
type Analysis struct {
	Samples       int `key:"samples"`       // sampled sequences for transition accuracy
	StateSeqs     int `key:"state_seqs"`    // held-out sequences for state codes vs neurons
	Interventions int `key:"interventions"` // random transitions patched
}

// EvalConfig is a codebook recipe's eval section.
type EvalConfig struct {
	lm.EvalConfig `key:",inline"`
	Analysis      Analysis `key:"analysis"`
	// Steering, when present, runs the topic-steering experiment in the
	// report (see Steering; steer.go).
	Steering *Steering `key:"steering"`
}

type family struct{}

// experiment is an LM experiment of a codebook model, with dead-code
// replacement, k-means initialisation and the TokFSM analyses.
type experiment struct {
	*lm.Experiment
	m        *Model
	fsm      *lm.FSMData
	analysis Analysis
	seed     uint64
	result   *FSMAnalysis
	steering *Steering
	steered  *SteerReport
}

func (family) Build(r *runner.Recipe, env runner.Env) (runner.Experiment, error) {
	d, _, err := lm.LoadData(r, env.Dir, r.Train.Seed)
	if err != nil {
		return nil, err
	}
	m, err := Build(r, env, d)
	if err != nil {
		return nil, err
	}
	ev := EvalConfig{EvalConfig: lm.DefaultEval(), Analysis: Analysis{Samples: 100, StateSeqs: 256, Interventions: 200}}
	if err := r.Decode("eval", &ev); err != nil {
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
	e := &experiment{
		Experiment: &lm.Experiment{M: m, D: d, Evaluation: ev.EvalConfig, Batch: r.Train.Batch, Device: env.Device},
		m:          m, analysis: ev.Analysis, seed: r.Train.Seed, steering: ev.Steering,
	}
	e.fsm, _ = d.(*lm.FSMData)
	e.Metrics = e.metrics
	e.Section = e.section
	return e, nil
}

// Groups implements runner.Grouper.
func (e *experiment) Groups(o runner.Optimizer) []*optim.Group { return e.m.Groups(o) }

// Loss initialises codes by k-means before the first step, replaces dead
// codes on the recipe's cadence, then computes the LM loss plus the
// codebooks' reconstruction losses.
func (e *experiment) Loss(step int) (*torch.Tensor, runner.Logs) {
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
func (e *experiment) kmeans() {
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
func (e *experiment) metrics() runner.Logs {
	logs := e.m.DeadFractions()
	for _, l := range e.m.Layers {
		l.ResetCounts()
	}
	if e.fsm != nil {
		a := &FSMAnalysis{}
		a.TransitionAcc, a.FirstTransitionAcc = sampledTransitions(e.m, e.fsm.FSM, e.analysis.Samples)
		logs["transition_accuracy"], logs["first_transition_accuracy"] = a.TransitionAcc, a.FirstTransitionAcc
	}
	return logs
}

// section runs the full analyses for the report.
func (e *experiment) section(dir string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "## Codebooks\n\n")
	if len(e.m.Sites) == 0 {
		b.WriteString("None (the no-codebook baseline).\n")
	} else {
		fmt.Fprintf(&b, "%d codebook site(s): %s; C = %d codes per codebook, k = %d; %s codebook parameters.\n",
			len(e.m.Sites), siteList(e.m), e.m.Set.Codes, e.m.Set.K,
			runner.Thousands(e.m.Store().NumParams(IsCodebookParam)))
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
	a, err := AnalyzeFSM(e.m, e.fsm.FSM, e.seed, e.analysis.Samples, e.analysis.StateSeqs, e.analysis.Interventions)
	if err != nil {
		return "", err
	}
	e.result = a
	b.WriteString("\n" + a.Markdown())
	return b.String(), nil
}

// Extra implements the runner's summary extension: the headline analysis
// numbers, for sweep tables.
func (e *experiment) Extra() map[string]any {
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
