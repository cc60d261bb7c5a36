// Package runner turns a recipe into a run: it builds the model family's
// experiment, trains it with the recipe's optimizer and schedule on the device
// goroutine, evaluates and checkpoints on the recipe's cadence, and writes a
// self-describing run directory (resolved recipe, environment, metrics,
// summary, checkpoints, plots and a report). Runs are reproducible (same
// recipe, seed and thread count: identical metrics), resumable after SIGINT
// or SIGTERM, and sweeps run many of them in parallel worker processes.
package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"hiddenlab/internal/atomicio"
	"hiddenlab/recipe"
	"hiddenlab/torch"
	"hiddenlab/torch/checkpoint"
	"hiddenlab/torch/dist"
	"hiddenlab/torch/nn"
	"hiddenlab/torch/optim"
)

// Options say what to run.
type Options struct {
	Recipe     string   // path or name in RecipesDir
	RecipesDir string   // default "recipes"
	ConfigsDir string   // default "configs"
	Overrides  []string // key.path=value
	Env        []string // environment (os.Environ())
	Resume     string   // a run directory to continue
	Log        func(format string, args ...any)
	// StopAfter stops the run as SIGINT would (checkpoint, status
	// interrupted) once this many steps are done; 0: never. For time-boxed
	// runs and tests.
	StopAfter int
}

// ErrInterrupted reports a run stopped by SIGINT or SIGTERM after saving a
// checkpoint; resume it with Options.Resume.
var ErrInterrupted = errors.New("interrupted (checkpoint saved; resume with RESUME=<run dir>)")

// stop is set by SIGINT/SIGTERM; the training loop checks it between steps.
var stop atomic.Bool

// Run runs a recipe (all its stages) and returns the run directory.
func Run(o Options) (string, error) {
	if o.RecipesDir == "" {
		o.RecipesDir = "recipes"
	}
	if o.ConfigsDir == "" {
		o.ConfigsDir = "configs"
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	var raw *recipe.Raw
	var dir string
	if o.Resume != "" {
		// A resumed run reads the resolved recipe it saved.
		dir = o.Resume
		path := filepath.Join(dir, RecipeFile)
		if _, err := os.Stat(path); err != nil {
			return dir, fmt.Errorf("resume %s: not a run directory (no %s)", dir, RecipeFile)
		}
		var err error
		if raw, err = recipe.Load(path, o.ConfigsDir, o.Env, o.Overrides); err != nil {
			return dir, err
		}
	} else {
		path, err := recipe.Find(o.Recipe, o.RecipesDir)
		if err != nil {
			return "", err
		}
		if raw, err = recipe.Load(path, o.ConfigsDir, o.Env, o.Overrides); err != nil {
			return "", err
		}
	}

	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(ch)
	stop.Store(false)
	go func() {
		for range ch {
			if stop.Load() {
				// A second signal does not wait for the step (or an evaluation
				// or report in progress): the last checkpoint stays the latest.
				o.Log("\nsecond signal: exiting now; resume from the last checkpoint")
				os.Exit(130)
			}
			o.Log("\nsignal received: finishing the step, saving a checkpoint and stopping (again to exit at once)")
			stop.Store(true)
		}
	}()

	group, err := joinGroup(raw, o)
	if err != nil {
		return dir, err
	}
	defer group.Close()
	stages := raw.Stages()
	if len(stages) == 0 {
		r, err := newRecipe(raw)
		if err != nil {
			return dir, err
		}
		if dir == "" {
			dir = runDir(r)
		}
		return dir, runStage(r, dir, o.Resume != "", o.StopAfter, o.Log, group)
	}
	// A staged recipe: one subdirectory per stage, each starting from the
	// previous stage's final weights when its init_from names that stage.
	var recs []*Recipe
	for i := range stages {
		sraw, err := raw.WithStage(i)
		if err != nil {
			return dir, err
		}
		r, err := newRecipe(sraw)
		if err != nil {
			return dir, fmt.Errorf("stage %q: %w", stages[i], err)
		}
		recs = append(recs, r)
	}
	if dir == "" {
		dir = runDir(recs[0])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dir, err
	}
	if o.Resume == "" && group.IsRoot() {
		b, err := recipe.Marshal(raw.Merged())
		if err != nil {
			return dir, err
		}
		head := fmt.Sprintf("# Staged recipe of this run (from %s, with overrides applied); each stage directory holds its resolved recipe.\n", raw.Path)
		if err := atomicio.WriteFile(filepath.Join(dir, RecipeFile), append([]byte(head), b...), 0o644); err != nil {
			return dir, err
		}
	}
	for i, r := range recs {
		sdir := filepath.Join(dir, fmt.Sprintf("%d-%s", i, stages[i]))
		if s, err := ReadSummary(sdir); err == nil && s.Status == StatusCompleted {
			o.Log("stage %s: already completed, skipping", stages[i])
			continue
		}
		_, statErr := os.Stat(filepath.Join(sdir, RecipeFile))
		if r.Train.InitFrom != "" {
			for j := 0; j < i; j++ {
				if r.Train.InitFrom == stages[j] {
					r.Train.InitFrom = filepath.Join(dir, fmt.Sprintf("%d-%s", j, stages[j]))
				}
			}
		}
		o.Log("stage %d/%d: %s", i+1, len(recs), stages[i])
		if err := runStage(r, sdir, statErr == nil, o.StopAfter, o.Log, group); err != nil {
			return dir, fmt.Errorf("stage %s: %w", stages[i], err)
		}
	}
	if !group.IsRoot() {
		return dir, nil
	}
	return dir, writeStagedReport(dir, raw, stages)
}

// RunDir is the directory a run of o would write: output.dir, or
// runs/<name>/<time>. Launchers use it to point every process at one place.
func RunDir(o Options) (string, error) {
	if o.RecipesDir == "" {
		o.RecipesDir = "recipes"
	}
	if o.ConfigsDir == "" {
		o.ConfigsDir = "configs"
	}
	path, err := recipe.Find(o.Recipe, o.RecipesDir)
	if err != nil {
		return "", err
	}
	raw, err := recipe.Load(path, o.ConfigsDir, o.Env, o.Overrides)
	if err != nil {
		return "", err
	}
	name, _ := raw.Merged()["name"].(string)
	if name == "" {
		name = trimExt(path)
	}
	var out Output
	if err := raw.Decode("output", &out); err != nil {
		return "", err
	}
	if out.Dir != "" {
		return out.Dir, nil
	}
	return filepath.Join("runs", name, time.Now().Format("20060102-150405")), nil
}

func runDir(r *Recipe) string {
	if r.Output.Dir != "" {
		return r.Output.Dir
	}
	return filepath.Join("runs", r.Name, time.Now().Format("20060102-150405"))
}

// runStage trains one recipe into dir (resuming from its checkpoint when asked).
func runStage(r *Recipe, dir string, resume bool, stopAfter int, logf func(string, ...any), group *dist.Group) error {
	if group.IsRoot() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	device, err := parseDevice(r.Train.Device)
	if err != nil {
		return &recipe.SourceError{Source: r.Raw.Path, Err: &recipe.KeyError{Key: "train.device", Reason: err.Error()}}
	}
	if err := torch.SetNumThreads(r.Train.Threads); err != nil {
		return err
	}
	if err := torch.SetTF32(r.Train.TF32); err != nil {
		return err
	}
	var runErr error
	torch.RunLocked(func() {
		runErr = train(r, dir, resume, device, stopAfter, logf, group)
	})
	return runErr
}

// joinGroup joins the data-parallel process group the torchrun variables
// describe (nil for one process), on the device type of the recipe's train
// section.
func joinGroup(raw *recipe.Raw, o Options) (*dist.Group, error) {
	lookup := func(k string) (string, bool) {
		for _, kv := range o.Env {
			if name, v, ok := strings.Cut(kv, "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}
	e, ok, err := dist.FromEnvironment(lookup)
	if err != nil || !ok {
		return nil, err
	}
	devType := torch.DeviceCPU
	if sec := raw.Section("train"); sec != nil {
		if d, _ := sec["device"].(string); d != "" {
			if dev, err := parseDevice(d); err == nil {
				devType = dev.Type
			}
		}
	}
	timeout := 30 * time.Minute
	if v, ok := lookup("HIDDENLAB_DIST_TIMEOUT"); ok {
		if s, err := time.ParseDuration(v); err == nil {
			timeout = s
		}
	}
	o.Log("data-parallel: rank %d of %d (local rank %d), rendezvous %s:%d, timeout %v", e.Rank, e.World, e.Local, e.Addr, e.Port, timeout)
	return dist.Join(e, devType, timeout)
}

func parseDevice(s string) (torch.Device, error) {
	if s == "auto" {
		if torch.CUDADeviceCount() > 0 {
			return torch.CUDA(0), nil
		}
		return torch.CPU, nil
	}
	return torch.ParseDevice(s)
}

// trainer holds one stage's state.
type trainer struct {
	r       *Recipe
	dir     string
	exp     Experiment
	opt     optim.Optimizer
	sched   optim.Schedule
	metrics *metricsWriter
	start   time.Time
	offset  float64 // elapsed seconds before a resume
	step    int
	tokens  float64
	last    Record // last train log
	eval    Record // last evaluation
	logf    func(string, ...any)
	// stopAfter interrupts the run after this many steps (0: never).
	stopAfter int
	device    torch.Device
	// group is the data-parallel process group (nil: one process); stopping
	// is agreed across it.
	group   *dist.Group
	stopAll bool
}

func train(r *Recipe, dir string, resume bool, device torch.Device, stopAfter int, logf func(string, ...any), group *dist.Group) (err error) {
	t := &trainer{r: r, dir: dir, start: time.Now(), logf: logf, stopAfter: stopAfter, device: device, group: group}
	torch.ManualSeed(r.Train.Seed)
	fam := families[r.Family]
	env := Env{Dir: dir, Device: device, Log: logf, World: 1}
	if group != nil {
		env.Rank, env.World = group.Rank, group.World
		if group.Rank != 0 {
			env.Dir = "" // only rank 0 writes
		}
	}
	exp, err := fam.Build(r, env)
	if err != nil {
		return err
	}
	t.exp = exp
	defer exp.Close()
	if group != nil {
		if s, ok := exp.(Sharder); ok {
			if err := s.SetShard(group.Rank, group.World); err != nil {
				return &recipe.SourceError{Source: r.Raw.Path, Err: err}
			}
		}
	}
	if !group.IsRoot() {
		return t.follow(resume)
	}
	// Every section the recipe has must have been read by the family.
	for _, sec := range []string{"model", "data", "eval"} {
		if _, read := r.resolved[sec]; r.Raw.Section(sec) != nil && !read {
			return &recipe.SourceError{Source: r.Raw.Path, Err: &recipe.KeyError{Key: sec,
				Reason: fmt.Sprintf("family %s takes no %s section", r.Family, sec)}}
		}
	}
	if err := t.writeEnvironment(device, resume); err != nil {
		return err
	}
	if !resume {
		if err := t.writeRecipe(); err != nil {
			return err
		}
	}

	// Optimizer and schedule.
	var groups []*optim.Group
	if g, ok := exp.(Grouper); ok {
		groups = g.Groups(r.Train.Optimizer)
	} else {
		groups = defaultGroups(exp.Store(), r.Train.Optimizer)
	}
	if r.Train.Optimizer.Name == "sgd" {
		t.opt, err = optim.NewSGD(groups...)
	} else {
		t.opt, err = optim.NewAdamW(groups...)
	}
	if err != nil {
		return err
	}
	defer t.opt.Close()
	s := r.Train.Schedule
	if t.sched, err = optim.NewSchedule(s.Name, s.Warmup, r.Train.Steps, s.MinFactor); err != nil {
		return &recipe.SourceError{Source: r.Raw.Path, Err: &recipe.KeyError{Key: "train.schedule", Reason: err.Error()}}
	}

	ckpts := filepath.Join(dir, CheckpointDir)
	keep := -1
	if resume {
		latest, lerr := checkpoint.Latest(ckpts)
		switch {
		case lerr == nil:
			st, err := checkpoint.Load(latest, exp.Store(), t.opt, nn.LoadOptions{})
			if err != nil {
				return fmt.Errorf("resume: %w", err)
			}
			t.step = int(st.Step)
			t.restoreExtra(st)
			logf("resuming %s from step %d", dir, t.step)
		case errors.Is(lerr, checkpoint.ErrNoCheckpoint):
			logf("resuming %s: no checkpoint yet, starting over", dir)
			if err := t.initWeights(); err != nil {
				return err
			}
		default:
			return lerr
		}
		keep = t.step
	} else {
		if err := t.initWeights(); err != nil {
			return err
		}
		keep = 0
	}
	if err := t.broadcastWeights(); err != nil {
		return err
	}
	if t.metrics, err = openMetrics(dir, keep); err != nil {
		return err
	}
	if resume { // the summary's final numbers if nothing is left to run
		recs, _ := ReadMetrics(dir)
		for _, rec := range recs {
			if rec.Split == "train" {
				t.last = rec
			} else if rec.Split == "eval" {
				t.eval = rec
			}
		}
	}
	defer t.metrics.Close()
	t.writeSummary(StatusRunning, nil)

	runErr := t.loop()
	status := StatusCompleted
	switch {
	case errors.Is(runErr, ErrInterrupted):
		status = StatusInterrupt
	case runErr != nil:
		status = StatusFailed
	}
	var extra map[string]any
	if status == StatusCompleted {
		var report string
		if err := t.safely(func() {
			var rerr error
			report, rerr = exp.Report(dir)
			if rerr != nil {
				panic(rerr)
			}
		}); err != nil {
			runErr, status = fmt.Errorf("report: %w", err), StatusFailed
		}
		if x, ok := exp.(interface{ Extra() map[string]any }); ok {
			extra = x.Extra()
		}
		t.finish(status, runErr, report, extra)
	} else {
		t.finish(status, runErr, "", extra)
	}
	return runErr
}

// initWeights loads train.init_from, when set.
func (t *trainer) initWeights() error {
	src := t.r.Train.InitFrom
	if src == "" {
		return nil
	}
	path, err := weightsPath(src)
	if err != nil {
		return &recipe.SourceError{Source: t.r.Raw.Path, Err: &recipe.KeyError{Key: "train.init_from", Reason: err.Error()}}
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
	for _, dir := range []string{filepath.Join(src, CheckpointDir), src} {
		if latest, err := checkpoint.Latest(dir); err == nil {
			return filepath.Join(latest, checkpoint.ModelFile), nil
		}
	}
	if _, err := os.Stat(filepath.Join(src, checkpoint.ModelFile)); err == nil {
		return filepath.Join(src, checkpoint.ModelFile), nil
	}
	return "", fmt.Errorf("%s holds no checkpoint or model.safetensors", src)
}

// writeEnvironment records where the run runs; a resume appends its time.
func (t *trainer) writeEnvironment(device torch.Device, resume bool) error {
	path := filepath.Join(t.dir, EnvFile)
	env := currentEnvironment(device.String(), torch.NumThreads())
	if resume {
		if b, err := os.ReadFile(path); err == nil {
			var prev Environment
			if json.Unmarshal(b, &prev) == nil {
				prev.Resumes = append(prev.Resumes, env.Started)
				env = prev
			}
		}
	}
	return writeJSON(path, env)
}

func (t *trainer) writeRecipe() error {
	res := t.r.Resolved()
	res["model"] = mergeFamily(res["model"], t.r.Family)
	b, err := recipe.Marshal(res)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("# Resolved recipe of this run (from %s, with defaults and overrides applied).\n", t.r.Raw.Path)
	return atomicio.WriteFile(filepath.Join(t.dir, RecipeFile), append([]byte(head), b...), 0o644)
}

func mergeFamily(model any, family string) any {
	m, _ := model.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	m["family"] = family
	return m
}

// safely runs f, turning a panic into an error.
func (t *trainer) safely(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			switch x := p.(type) {
			case error:
				err = x
			default:
				err = fmt.Errorf("panic: %v", x)
			}
		}
	}()
	f()
	return nil
}

// loop trains from t.step to the recipe's steps.
func (t *trainer) loop() error {
	tr := t.r.Train
	var bar progress
	if t.r.Output.Progress {
		bar = newProgress(os.Stderr, t.r.Name, t.step, tr.Steps)
	}
	params := t.exp.Store().Params()
	window, windowTokens := time.Now(), 0.0
	for t.step < tr.Steps {
		if t.stopping() {
			if err := t.checkpoint(); err != nil {
				return fmt.Errorf("saving the checkpoint on interrupt: %w", err)
			}
			return ErrInterrupted
		}
		root := t.group.IsRoot()
		var logs Logs
		var loss float64
		err := t.safely(func() {
			s := torch.NewScope()
			defer s.Close()
			var l *torch.Tensor
			var lg Logs
			t.forward(func() { l, lg = t.exp.Loss(t.step) })
			loss, logs = l.Item(), lg
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				panic(fmt.Errorf("loss is %v at step %d: stopping before the update; the last good checkpoint is kept (lower train.optimizer.lr or raise train.clip)", loss, t.step))
			}
			t.exp.Store().ZeroGrad(true)
			l.Backward()
			if t.group != nil {
				if logs == nil {
					logs = Logs{}
				}
				global, err := t.syncStep(params, logs, loss)
				if err != nil {
					panic(err)
				}
				loss = global
			}
			gn := 0.0
			if tr.Clip > 0 {
				gn = optim.ClipGradNorm(params, tr.Clip)
			}
			factor := t.sched.Factor(t.step)
			t.opt.Step(factor)
			if logs == nil {
				logs = Logs{}
			}
			logs["loss"], logs["lr"] = loss, tr.Optimizer.LR*factor
			if tr.Clip > 0 {
				logs["grad_norm"] = gn
			}
		})
		if err != nil {
			return fmt.Errorf("step %d: %w", t.step, err)
		}
		t.step++
		t.tokens += logs["tokens"]
		windowTokens += logs["tokens"]
		last := t.step == tr.Steps
		status := ""
		if root && tr.LogEvery > 0 && (t.step%tr.LogEvery == 0 || last) {
			rate := windowTokens / time.Since(window).Seconds()
			window, windowTokens = time.Now(), 0
			logs["tok_per_s"] = rate
			t.last = Record{Step: t.step, Split: "train", Values: logs, At: t.elapsed()}
			if err := t.metrics.write(t.last); err != nil {
				return err
			}
			status = fmt.Sprintf("loss %.4f %.0f tok/s", loss, rate)
		}
		if root && ((tr.EvalEvery > 0 && t.step%tr.EvalEvery == 0) || last) {
			if err := t.evaluate(); err != nil {
				return err
			}
		}
		if (tr.CheckpointEvery > 0 && t.step%tr.CheckpointEvery == 0) || last {
			if err := t.checkpoint(); err != nil {
				return fmt.Errorf("checkpoint at step %d: %w", t.step, err)
			}
		}
		if bar != nil {
			bar.Set(t.step, status)
		}
	}
	if bar != nil {
		bar.Finish()
	}
	return nil
}

func (t *trainer) evaluate() error {
	var logs Logs
	err := t.safely(func() {
		s := torch.NewScope()
		defer s.Close()
		wasTraining := t.exp.Store().Training()
		t.exp.Store().Train(false)
		defer t.exp.Store().Train(wasTraining)
		torch.NoGrad(func() { t.forward(func() { logs = t.exp.Eval() }) })
	})
	if err != nil {
		return fmt.Errorf("eval at step %d: %w", t.step, err)
	}
	t.eval = Record{Step: t.step, Split: "eval", Values: logs, At: t.elapsed()}
	return t.metrics.write(t.eval)
}

// stopping reports whether to stop before the next step: on SIGINT/SIGTERM or
// after StopAfter steps, agreed by every data-parallel rank at the last step.
func (t *trainer) stopping() bool {
	local := stop.Load() || (t.stopAfter > 0 && t.step >= t.stopAfter)
	if t.group == nil {
		return local
	}
	return t.stopAll || (t.step == 0 && local)
}

// syncStep is a data-parallel step's communication: the gradients are
// averaged over the ranks (bucketed), and the logs averaged (tokens summed)
// together with the loss and the stop flag, so every rank logs the global
// batch's numbers and stops at the same step. It returns the global loss.
func (t *trainer) syncStep(params []*nn.Param, logs Logs, loss float64) (float64, error) {
	var grads []*torch.Tensor
	for _, p := range params {
		if g := p.T.Grad(); g != nil {
			grads = append(grads, g)
		}
	}
	if err := t.group.AllReduceMean(grads); err != nil {
		return 0, err
	}
	keys := sortedKeys(logs)
	vals := []float64{0, loss}
	if stop.Load() || (t.stopAfter > 0 && t.step+1 >= t.stopAfter) {
		vals[0] = 1
	}
	for _, k := range keys {
		vals = append(vals, logs[k])
	}
	v := torch.FromSlice(vals, nil)
	if err := t.group.AllReduceSum([]*torch.Tensor{v}); err != nil {
		return 0, err
	}
	sum := v.Float64s()
	t.stopAll = sum[0] > 0
	W := float64(t.group.World)
	for i, k := range keys {
		if k == "tokens" {
			logs[k] = sum[2+i]
		} else {
			logs[k] = sum[2+i] / W
		}
	}
	return sum[1] / W, nil
}

// follow is the loop of a data-parallel rank other than 0: the same steps
// and communication as rank 0, but no files, evaluations or reports.
func (t *trainer) follow(resume bool) error {
	groups := defaultGroups(t.exp.Store(), t.r.Train.Optimizer)
	if g, ok := t.exp.(Grouper); ok {
		groups = g.Groups(t.r.Train.Optimizer)
	}
	var err error
	if t.r.Train.Optimizer.Name == "sgd" {
		t.opt, err = optim.NewSGD(groups...)
	} else {
		t.opt, err = optim.NewAdamW(groups...)
	}
	if err != nil {
		return err
	}
	defer t.opt.Close()
	s := t.r.Train.Schedule
	if t.sched, err = optim.NewSchedule(s.Name, s.Warmup, t.r.Train.Steps, s.MinFactor); err != nil {
		return err
	}
	if resume {
		latest, err := checkpoint.Latest(filepath.Join(t.dir, CheckpointDir))
		if err == nil {
			st, err := checkpoint.Load(latest, t.exp.Store(), t.opt, nn.LoadOptions{})
			if err != nil {
				return fmt.Errorf("rank %d: resume: %w", t.group.Rank, err)
			}
			t.step = int(st.Step)
		}
	} else if err := t.initWeights(); err != nil {
		return err
	}
	if err := t.broadcastWeights(); err != nil {
		return err
	}
	t.r.Output.Progress = false
	return t.loop()
}

// broadcastWeights makes every rank start from rank 0's parameters.
func (t *trainer) broadcastWeights() error {
	if t.group == nil {
		return nil
	}
	var ts []*torch.Tensor
	for _, p := range t.exp.Store().StateDict() {
		ts = append(ts, p.T)
	}
	return t.group.Broadcast(ts, 0)
}

// forward runs a forward pass in the recipe's precision: bf16 autocast on
// the run's device, or plain fp32.
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
	if !t.group.IsRoot() {
		return nil
	}
	st := checkpoint.State{Step: int64(t.step), Extra: map[string]json.RawMessage{}}
	st.Extra["tokens"], _ = json.Marshal(t.tokens)
	st.Extra["elapsed_s"], _ = json.Marshal(t.elapsed())
	_, err := checkpoint.Save(filepath.Join(t.dir, CheckpointDir), t.exp.Store(), t.opt, st, t.r.Output.KeepCheckpoints)
	return err
}

func (t *trainer) restoreExtra(st checkpoint.State) {
	json.Unmarshal(st.Extra["tokens"], &t.tokens)
	json.Unmarshal(st.Extra["elapsed_s"], &t.offset)
}

func (t *trainer) writeSummary(status string, runErr error) Summary {
	s := Summary{
		Name: t.r.Name, Family: t.r.Family, Status: status, Steps: t.step, StepsPlan: t.r.Train.Steps,
		Params: t.exp.Store().NumParams(nil), WallS: t.elapsed(), Train: finite(t.last.Values), Eval: finite(t.eval.Values),
	}
	if s.WallS > 0 {
		s.TokPerS = t.tokens / s.WallS
	}
	if runErr != nil {
		s.Error = runErr.Error()
	}
	writeJSON(filepath.Join(t.dir, SummaryFile), s)
	return s
}

func (t *trainer) finish(status string, runErr error, familyReport string, extra map[string]any) {
	s := t.writeSummary(status, runErr)
	if extra != nil {
		s.Extra = extra
		writeJSON(filepath.Join(t.dir, SummaryFile), s)
	}
	plots := writePlots(t.dir)
	if err := writeReport(t.dir, t.r, s, plots, familyReport); err != nil {
		t.logf("report: %v", err)
	}
}
