package runner

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/hf"
	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/dist"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// trainer is one stage's training state: the experiment and its optimizer,
// where the loop is, and where its outputs go.
type trainer struct {
	r      *experiment.Recipe
	dir    string // empty on ranks other than 0: they write nothing
	home   string // the stage directory on every rank (checkpoints are read from it)
	runID  string // the run's id, kept across resumes (env.json)
	params int
	device torch.Device
	group  *dist.Group // nil: one process
	logf   func(string, ...any)

	exp   experiment.Experiment
	opt   optim.Optimizer
	sched optim.Schedule
	sinks []experiment.Sink

	step      int
	tokens    float64 // tokens trained on, all ranks together
	start     time.Time
	offset    float64           // elapsed seconds before a resume
	last      experiment.Record // last train log
	eval      experiment.Record // last evaluation
	stopAfter int               // interrupt after this many steps (0: never)
	stopAll   bool              // every rank agreed to stop
}

// guard runs f, the family's code, and turns a tensor failure (a
// *torch.Error panic: out of memory, a shape mismatch) into an error. That
// is the engine's one error boundary; other panics are bugs and keep their
// stack.
func guard(f func() error) error {
	var err error
	if terr := torch.Try(func() { err = f() }); terr != nil {
		return terr
	}
	return err
}

// train builds the stage's experiment and trains it: the same loop on every
// rank, rank 0 alone writing.
func train(r *experiment.Recipe, dir string, resume bool, device torch.Device, o Options, group *dist.Group) (err error) {
	t := &trainer{r: r, dir: dir, home: dir, device: device, group: group, logf: o.Log, start: time.Now(), stopAfter: o.StopAfter}
	if !group.IsRoot() {
		t.dir = ""
	}
	// A bug in a family must not leave a run without a summary.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("step %d: internal error: %v", t.step, p)
			t.logf("%s\n%s", err, debug.Stack())
			t.finish(rundir.StatusFailed, err, "")
		}
	}()
	if t.dir != "" {
		if err := t.writeEnvironment(resume); err != nil {
			return err
		}
	}
	if err := t.build(); err != nil {
		err = fmt.Errorf("building the %s experiment: %w", r.Family, err)
		t.finish(rundir.StatusFailed, err, "")
		return err
	}
	defer t.exp.Close()
	if err := t.setup(resume); err != nil {
		// A resume that cannot start (no checkpoint verifies, damaged
		// metrics) leaves the run as it was: marking it failed would let a
		// sweep delete a directory whose checkpoints may still be rescued.
		if !resume {
			t.finish(rundir.StatusFailed, err, "")
		}
		return err
	}
	defer t.opt.Close()
	defer t.closeSinks()
	t.writeSummary(rundir.StatusRunning, nil)

	runErr := t.loop()
	if runErr == nil {
		runErr = t.finalEval()
	}
	switch {
	case errors.Is(runErr, ErrInterrupted):
		t.finish(rundir.StatusInterrupt, runErr, "")
	case runErr != nil:
		t.finish(rundir.StatusFailed, runErr, "")
	default:
		var report string
		if t.dir != "" {
			runErr = guard(func() (err error) { report, err = t.exp.Report(t.dir); return err })
		}
		if runErr != nil {
			runErr = fmt.Errorf("report: %w", runErr)
			t.finish(rundir.StatusFailed, runErr, "")
		} else {
			t.finish(rundir.StatusCompleted, nil, report)
		}
	}
	return runErr
}

// build asks the family for the experiment, under the error boundary, and
// checks it read every section the recipe has.
func (t *trainer) build() error {
	r := t.r
	fam, ok := experiment.Lookup(r.Family)
	if !ok {
		return fmt.Errorf("model.family %q is not registered", r.Family)
	}
	torch.ManualSeed(r.Train.Seed)
	env := experiment.Env{Dir: t.dir, Device: t.device, Log: t.logf, World: 1}
	if t.group != nil {
		env.Rank, env.World = t.group.Rank, t.group.World
	}
	err := guard(func() (err error) { t.exp, err = fam.Build(r, env); return err })
	if err != nil {
		return err
	}
	t.params = t.exp.Store().NumParams(nil)
	if t.group != nil {
		if s, ok := t.exp.(experiment.Sharder); ok {
			if err := s.SetShard(t.group.Rank, t.group.World); err != nil {
				t.exp.Close()
				return &recipe.SourceError{Source: r.Raw.Path, Err: err}
			}
		}
	}
	for _, sec := range []string{"model", "data", "eval"} {
		if r.Raw.Section(sec) != nil && !r.Decoded(sec) {
			t.exp.Close()
			return &recipe.SourceError{Source: r.Raw.Path, Err: &recipe.KeyError{Key: sec,
				Reason: fmt.Sprintf("family %s takes no %s section", r.Family, sec)}}
		}
	}
	return nil
}

// setup makes the optimizer and schedule, restores a checkpoint or the
// initial weights, aligns the ranks and opens the sinks.
func (t *trainer) setup(resume bool) error {
	r := t.r
	groups := experiment.DefaultGroups(t.exp.Store(), r.Train.Optimizer)
	if g, ok := t.exp.(experiment.Grouper); ok {
		groups = g.Groups(r.Train.Optimizer)
	}
	var err error
	if r.Train.Optimizer.Name == "sgd" {
		t.opt, err = optim.NewSGD(groups...)
	} else {
		t.opt, err = optim.NewAdamW(groups...)
	}
	if err != nil {
		return err
	}
	s := r.Train.Schedule
	if t.sched, err = optim.NewSchedule(s.Name, s.Warmup, r.Train.Steps, s.MinFactor); err != nil {
		t.opt.Close()
		return &recipe.SourceError{Source: r.Raw.SourceOf("train.schedule"), Err: &recipe.KeyError{Key: "train.schedule", Reason: err.Error()}}
	}
	fail := func(err error) error { t.opt.Close(); return err }
	if t.dir != "" { // debris of checkpoint writes a kill interrupted
		if err := checkpoint.CleanStale(filepath.Join(t.dir, rundir.CheckpointDir)); err != nil {
			return fail(err)
		}
	}
	if err := t.restore(resume); err != nil {
		return fail(err)
	}
	if err := t.broadcastWeights(); err != nil {
		return fail(err)
	}
	if t.dir == "" {
		return nil
	}
	var recipeYAML string
	if !resume {
		if recipeYAML, err = t.writeRecipe(); err != nil {
			return fail(err)
		}
	}
	mw, err := rundir.OpenMetrics(t.dir, t.step, t.runID)
	if err != nil {
		return fail(err)
	}
	if mw.Torn {
		t.logf("resume: dropped a torn last line of %s", filepath.Join(t.dir, rundir.MetricsFile))
	}
	t.sinks = append(t.sinks, mw)
	if resume { // the summary's final numbers if nothing is left to run
		recs, _ := rundir.ReadMetrics(t.dir)
		for _, rec := range recs {
			switch rec.Split {
			case "train":
				t.last = rec
			case "eval":
				t.eval = rec
			}
		}
	}
	if r.Output.TensorBoard {
		tb, err := newTBSink(t.dir, recipeYAML)
		if err != nil {
			t.closeSinks()
			return fail(err)
		}
		t.sinks = append(t.sinks, tb)
	}
	t.sinks = append(t.sinks, newConsole(os.Stderr, r.Name, t.step, r.Train.Steps, r.Output.Progress))
	return nil
}

// restore loads the newest verified checkpoint of a resumed run (falling
// back past damaged ones), or the initial weights of train.init_from.
func (t *trainer) restore(resume bool) error {
	root := filepath.Join(t.home, rundir.CheckpointDir)
	if resume {
		latest, notes, err := checkpoint.LatestVerified(root)
		for _, n := range notes {
			t.logf("resume: %s", n)
		}
		switch {
		case err == nil:
			st, err := checkpoint.Load(latest, t.exp.Store(), t.opt, nn.LoadOptions{})
			if err != nil {
				return fmt.Errorf("resume: %w", err)
			}
			t.step = int(st.Step)
			json.Unmarshal(st.Extra["tokens"], &t.tokens)
			json.Unmarshal(st.Extra["elapsed_s"], &t.offset)
			t.logf("resuming %s from step %d", t.home, t.step)
			return nil
		case errors.Is(err, checkpoint.ErrNoCheckpoint):
			t.logf("resuming %s: no checkpoint yet, starting from step 0", t.home)
		default:
			return fmt.Errorf("resume: %w", err)
		}
	}
	return t.initWeights()
}

// initWeights loads train.init_from, when set.
func (t *trainer) initWeights() error {
	src := t.r.Train.InitFrom
	if src == "" {
		return nil
	}
	if dir, ok := strings.CutPrefix(src, "hf:"); ok {
		if err := initFromHF(dir, t.exp.Store()); err != nil {
			return &recipe.SourceError{Source: t.r.Raw.SourceOf("train.init_from"), Err: &recipe.KeyError{Key: "train.init_from", Reason: err.Error()}}
		}
		t.logf("initialised from the Hugging Face model in %s", dir)
		return nil
	}
	path, err := weightsPath(src)
	if err != nil {
		return &recipe.SourceError{Source: t.r.Raw.SourceOf("train.init_from"), Err: &recipe.KeyError{Key: "train.init_from", Reason: err.Error()}}
	}
	// Parameters the source lacks keep their initialisation (inserted
	// modules); everything the source has must match.
	err = checkpoint.LoadWeights(path, t.exp.Store(), nn.LoadOptions{AllowMissing: func(string) bool { return true }})
	if err != nil {
		return fmt.Errorf("train.init_from: %w", err)
	}
	t.logf("initialised from %s", path)
	return nil
}

// weightsPath finds the model weights of a run dir, stage dir, checkpoint dir
// or file.
func weightsPath(src string) (string, error) {
	if strings.HasSuffix(src, ".safetensors") {
		if _, err := os.Stat(src); err != nil {
			return "", err
		}
		return src, nil
	}
	for _, dir := range []string{filepath.Join(src, rundir.CheckpointDir), src} {
		if latest, _, err := checkpoint.LatestVerified(dir); err == nil {
			return filepath.Join(latest, checkpoint.ModelFile), nil
		}
	}
	if _, err := os.Stat(filepath.Join(src, checkpoint.ModelFile)); err == nil {
		return filepath.Join(src, checkpoint.ModelFile), nil
	}
	return "", fmt.Errorf("%s holds no checkpoint or model.safetensors", src)
}

// loop trains from t.step to the recipe's steps: step, log, checkpoint,
// evaluate, in that order, so a failing evaluation never costs the step's
// checkpoint.
func (t *trainer) loop() error {
	tr := t.r.Train
	params := t.exp.Store().Params()
	window, windowTokens := time.Now(), 0.0
	for t.step < tr.Steps {
		if t.stopping() {
			if err := t.checkpoint(); err != nil {
				return fmt.Errorf("saving the checkpoint on interrupt: %w", err)
			}
			return ErrInterrupted
		}
		logs, err := t.trainStep(params)
		if err != nil {
			return fmt.Errorf("step %d: %w", t.step, err)
		}
		t.step++
		t.tokens += logs["tokens"]
		windowTokens += logs["tokens"]
		last := t.step == tr.Steps
		if tr.LogEvery > 0 && (t.step%tr.LogEvery == 0 || last) {
			logs["tok_per_s"] = windowTokens / time.Since(window).Seconds()
			logs["tokens_seen"] = t.tokens
			window, windowTokens = time.Now(), 0
			t.last = t.record("train", logs)
			if err := t.emit(t.last); err != nil {
				return err
			}
		}
		if (tr.CheckpointEvery > 0 && t.step%tr.CheckpointEvery == 0) || last {
			if err := t.checkpoint(); err != nil {
				return fmt.Errorf("checkpoint at step %d: %w", t.step, err)
			}
		}
		if tr.EvalEvery > 0 && t.step%tr.EvalEvery == 0 && !last {
			if err := t.evaluate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// trainStep is one optimizer step: forward and backward in the recipe's
// precision, the data-parallel gradient average, clipping and the update.
func (t *trainer) trainStep(params []*nn.Param) (experiment.Logs, error) {
	tr := t.r.Train
	var logs experiment.Logs
	err := guard(func() error {
		s := torch.NewScope()
		defer s.Close()
		var l *torch.Tensor
		var err error
		t.forward(func() { err = guard(func() error { l, logs = t.exp.Loss(t.step); return nil }) })
		if err != nil {
			return err
		}
		if logs == nil {
			logs = experiment.Logs{}
		}
		loss := l.Item()
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fmt.Errorf("loss is %v: stopping before the update; the last good checkpoint is kept (lower train.optimizer.lr or raise train.clip)", loss)
		}
		t.exp.Store().ZeroGrad(true)
		l.Backward()
		if t.group != nil {
			if loss, err = t.syncStep(params, logs, loss); err != nil {
				return err
			}
		}
		if tr.Clip > 0 {
			logs["grad_norm"] = optim.ClipGradNorm(params, tr.Clip)
		}
		factor := t.sched.Factor(t.step)
		t.opt.Step(factor)
		logs["loss"], logs["lr"] = loss, tr.Optimizer.LR*factor
		return nil
	})
	return logs, err
}

// evaluate scores the model (rank 0) without disturbing training: eval
// mode, no autograd, and the RNG state restored afterwards, so evaluation
// cadence never changes the training run.
func (t *trainer) evaluate() error {
	if t.dir == "" {
		return nil
	}
	var logs experiment.Logs
	err := guard(func() error {
		s := torch.NewScope()
		defer s.Close()
		rng := torch.RNGState() // not scoped: freed here
		defer func() { torch.SetRNGState(rng); rng.Free() }()
		store := t.exp.Store()
		wasTraining := store.Training()
		store.Train(false)
		defer store.Train(wasTraining)
		var err error
		torch.NoGrad(func() { t.forward(func() { err = guard(func() error { logs = t.exp.Eval(); return nil }) }) })
		return err
	})
	if err != nil {
		return fmt.Errorf("eval at step %d: %w", t.step, err)
	}
	t.eval = t.record("eval", logs)
	if h, ok := t.exp.(experiment.Histogrammer); ok {
		t.eval.Histograms = h.Histograms()
	}
	return t.emit(t.eval)
}

// finalEval evaluates the final weights unless that evaluation is on record
// (a run resumed after its last checkpoint and evaluation).
func (t *trainer) finalEval() error {
	if t.dir == "" || (t.eval.Split == "eval" && t.eval.Step == t.step) {
		return nil
	}
	return t.evaluate()
}

func (t *trainer) record(split string, logs experiment.Logs) experiment.Record {
	return experiment.Record{Step: t.step, Split: split, Values: logs, At: t.elapsed(), Time: time.Now()}
}

// emit hands a record to every sink (rank 0 only has sinks).
func (t *trainer) emit(rec experiment.Record) error {
	for _, s := range t.sinks {
		if err := s.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

func (t *trainer) closeSinks() {
	for _, s := range t.sinks {
		s.Close()
	}
	t.sinks = nil
}

// localStop reports whether this process wants to stop before step next: on
// SIGINT/SIGTERM or after StopAfter steps.
func (t *trainer) localStop(next int) bool {
	return stop.Load() || (t.stopAfter > 0 && next >= t.stopAfter)
}

// stopping reports whether to stop before the next step; data-parallel
// ranks agree on it in the previous step's all-reduce.
func (t *trainer) stopping() bool {
	if t.group == nil {
		return t.localStop(t.step)
	}
	return t.stopAll || (t.step == 0 && t.localStop(t.step))
}

// forward runs f in the recipe's precision: bf16 autocast on the run's
// device, or plain fp32.
func (t *trainer) forward(f func()) {
	if t.r.Train.Precision == "bf16" {
		torch.Autocast(t.device.Type, torch.BFloat16, f)
		return
	}
	f()
}

func (t *trainer) elapsed() float64 { return t.offset + time.Since(t.start).Seconds() }

// checkpoint saves the model, optimizer, RNG and loop state (rank 0 only).
func (t *trainer) checkpoint() error {
	if t.dir == "" {
		return nil
	}
	st := checkpoint.State{Step: int64(t.step), Extra: map[string]json.RawMessage{}}
	st.Extra["tokens"], _ = json.Marshal(t.tokens)
	st.Extra["elapsed_s"], _ = json.Marshal(t.elapsed())
	return guard(func() error {
		_, err := checkpoint.Save(filepath.Join(t.dir, rundir.CheckpointDir), t.exp.Store(), t.opt, st, t.r.Output.KeepCheckpoints)
		return err
	})
}

// writeEnvironment records where the run runs; a resume appends its time.
func (t *trainer) writeEnvironment(resume bool) error {
	path := filepath.Join(t.dir, rundir.EnvFile)
	env := rundir.CurrentEnvironment(t.device.String(), torch.NumThreads())
	env.RunID = newRunID()
	if resume {
		if b, err := os.ReadFile(path); err == nil {
			var prev rundir.Environment
			if json.Unmarshal(b, &prev) == nil {
				prev.Resumes = append(prev.Resumes, env.Started)
				if prev.RunID == "" {
					prev.RunID = env.RunID
				}
				env = prev
			}
		}
	}
	t.runID = env.RunID
	return rundir.WriteJSON(path, env)
}

// writeRecipe writes the resolved recipe and returns its YAML.
func (t *trainer) writeRecipe() (string, error) {
	res := t.r.Resolved()
	m, _ := res["model"].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	m["family"] = t.r.Family
	res["model"] = m
	b, err := recipe.Marshal(res)
	if err != nil {
		return "", err
	}
	head := fmt.Sprintf("# Resolved recipe of this run (from %s, with defaults and overrides applied).\n", t.r.Raw.Path)
	return string(b), atomicio.WriteFile(filepath.Join(t.dir, rundir.RecipeFile), append([]byte(head), b...), 0o644)
}

func (t *trainer) summary(status string, runErr error) rundir.Summary {
	s := rundir.Summary{
		Name: t.r.Name, Family: t.r.Family, Status: status, Steps: t.step, StepsPlan: t.r.Train.Steps,
		WallS: t.elapsed(), Train: rundir.Finite(t.last.Values), Eval: rundir.Finite(t.eval.Values),
		RunID: t.runID, Params: t.params,
	}
	if s.WallS > 0 {
		s.TokPerS = t.tokens / s.WallS
	}
	if runErr != nil {
		s.Error = runErr.Error()
	}
	return s
}

func (t *trainer) writeSummary(status string, runErr error) {
	if t.dir != "" {
		rundir.WriteJSON(filepath.Join(t.dir, rundir.SummaryFile), t.summary(status, runErr))
	}
}

// finish writes the summary, the plots and report.md (rank 0).
func (t *trainer) finish(status string, runErr error, familyReport string) {
	if t.dir == "" {
		return
	}
	t.closeSinks()
	s := t.summary(status, runErr)
	if x, ok := t.exp.(experiment.Summarizer); ok && status == rundir.StatusCompleted {
		s.Extra = x.Extra()
	}
	rundir.WriteJSON(filepath.Join(t.dir, rundir.SummaryFile), s)
	plots := writePlots(t.dir)
	if err := writeReport(t.dir, t.r, s, plots, familyReport); err != nil {
		t.logf("report: %v", err)
	}
}

// newRunID is a random 8-hex-digit id that names a run in metrics and
// trackers (kept across resumes).
func newRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// initFromHF loads the Hugging Face model in dir (package hf) and copies its
// weights into store by hiddenlab's names; parameters the model lacks
// (inserted modules) keep their initialisation.
func initFromHF(dir string, store *nn.Store) error {
	cfg, _, err := hf.ReadConfig(dir)
	if err != nil {
		return err
	}
	g, err := nn.NewGPT(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := hf.LoadInto(dir, g.Store); err != nil {
		return err
	}
	sd := map[string]*torch.Tensor{}
	for _, p := range g.Store.StateDict() {
		sd[p.Name] = p.T
	}
	return store.LoadStateDict(sd, nn.LoadOptions{AllowMissing: func(string) bool { return true }})
}
