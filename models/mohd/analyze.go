package mohd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/plot"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Tracer runs a trained model over token ids [B, T] and shows each
// sublayer's state to see, in forward order; stats, when not nil,
// accumulates the router choices.
type Tracer interface {
	Trace(ids *torch.Tensor, see func(Observation), stats *RouterStats)
}

// Trace implements Tracer.
func (m *Model) Trace(ids *torch.Tensor, see func(Observation), stats *RouterStats) {
	m.Observe, m.Stats = see, stats
	defer func() { m.Observe, m.Stats = nil, nil }()
	m.Forward(ids)
}

// GPTTracer traces an nn.GPT (the gpt family): the sublayer inputs are its
// norms' outputs, recomputed from the residual stream its hooks expose.
type GPTTracer struct{ GPT *nn.GPT }

// Trace implements Tracer (there are no routers).
func (t GPTTracer) Trace(ids *torch.Tensor, see func(Observation), _ *RouterStats) {
	g := t.GPT
	L, T := len(g.Blocks), ids.Size(1)
	res, attn := make([]*torch.Tensor, L), make([]*torch.Tensor, L)
	var removes []func()
	for i := 0; i < L; i++ {
		removes = append(removes,
			g.Hooks.Add(nn.Site{Layer: i, Point: nn.Residual}, func(x *torch.Tensor) *torch.Tensor { res[i] = x; return x }),
			g.Hooks.Add(nn.Site{Layer: i, Point: nn.AttnOut}, func(x *torch.Tensor) *torch.Tensor { attn[i] = x; return x }))
	}
	defer func() {
		for _, r := range removes {
			r()
		}
	}()
	g.Forward(ids, nil)
	x := g.Embed(ids)
	if g.WPE != nil {
		x = x.Add(g.WPE.Weight.Narrow(0, 0, T))
	}
	for i, b := range g.Blocks {
		see(Observation{Layer: i, Sublayer: "attn", X: x, U: b.LN1.Forward(x)})
		mid := x
		if !b.Parallel {
			mid = x.Add(attn[i])
		}
		see(Observation{Layer: i, Sublayer: "ffn", X: mid, U: b.LN2.Forward(mid)})
		x = res[i]
	}
}

// SiteFlow is the activation flow at one site: the normed input u of a
// sublayer ("attn.u", "ffn.u") or the residual stream entering a block ("x").
type SiteFlow struct {
	Layer int
	Site  string
	Flow
}

// Analysis is the activation-flow and router-health study of a model
// (brief §3, §7) on held-out sequences.
type Analysis struct {
	Model   string // what was analysed
	Seqs    int
	Context int
	Groups  int // N for the group-level persistence (1: none)
	Sites   []SiteFlow
	Routers []RouterHealth
}

// Analyze traces seqs held-out sequences of d through tr and measures the
// activation flow at every sublayer input and block input, and the health
// of every router. groups > 1 adds the group-level persistence.
func Analyze(tr Tracer, d lm.Data, seqs, groups int, seed uint64) (*Analysis, error) {
	var ids []int64
	for b := range d.Eval(seqs) {
		ids = b.X
		break
	}
	T := d.Context()
	B := len(ids) / T
	if B < 2 {
		return nil, fmt.Errorf("analysis: the held-out split has %d sequence(s) of %d tokens; need at least 2", B, T)
	}
	a := &Analysis{Seqs: B, Context: T, Groups: groups}
	type key struct {
		layer int
		site  string
	}
	acts := map[key][]float32{}
	var order []key
	keep := func(k key, t *torch.Tensor) {
		if _, ok := acts[k]; !ok {
			order = append(order, k)
		}
		acts[k] = t.Float32s()
	}
	stats := NewRouterStats(seed)
	D := 0
	err := torch.Try(func() {
		torch.NoGrad(func() {
			torch.WithScope(func() {
				tr.Trace(torch.FromSlice(ids, []int{B, T}), func(o Observation) {
					D = o.U.Size(-1)
					if o.Sublayer == "attn" {
						keep(key{o.Layer, "x"}, o.X)
					}
					keep(key{o.Layer, o.Sublayer + ".u"}, o.U)
				}, stats)
			})
		})
	})
	if err != nil {
		return nil, err
	}
	for _, k := range order {
		g := groups
		if k.site == "x" {
			g = 1
		}
		a.Sites = append(a.Sites, SiteFlow{Layer: k.layer, Site: k.site, Flow: FlowOf(Acts{B: B, T: T, D: D, V: acts[k]}, g, seed)})
	}
	a.Routers = stats.Health()
	return a, nil
}

// Summary averages the flow over layers per site kind (for sweep tables):
// q50, active, cons, rand of the sublayer inputs u, and q50 of x.
func (a *Analysis) Summary() map[string]float64 {
	out := map[string]float64{}
	n := 0.0
	for _, s := range a.Sites {
		if s.Site == "x" {
			continue
		}
		n++
		out["flow_q50"] += s.Q50
		out["flow_active"] += s.Active
		out["flow_cons"] += s.Cons
		out["flow_rand"] += s.Rand
		out["flow_shared"] += s.Shared
		out["flow_specialized"] += s.Specialized
	}
	for k := range out {
		out[k] /= n
	}
	consAbove := 0.0
	for _, s := range a.Sites {
		if s.Site != "x" && s.Cons > s.Rand {
			consAbove++
		}
	}
	out["flow_cons_above_rand"] = consAbove / n
	for k, v := range routerSummary(a.Routers) {
		out[k] = v
	}
	return out
}

// routerSummary is the worst router's health: the lowest normalised
// entropy, the highest CV, the dead groups in all, and the mean persistence.
func routerSummary(hs []RouterHealth) map[string]float64 {
	if len(hs) == 0 {
		return nil
	}
	out := map[string]float64{"router_entropy_min": 1, "router_cv_max": 0, "router_dead": 0}
	for _, h := range hs {
		out["router_entropy_min"] = min(out["router_entropy_min"], h.Entropy)
		out["router_cv_max"] = max(out["router_cv_max"], h.CV)
		out["router_dead"] += float64(h.Dead)
		out["router_persistence"] += h.Persistence / float64(len(hs))
		out["router_persistence_rand"] += h.Random / float64(len(hs))
	}
	return out
}

// Markdown renders the analysis as report sections.
func (a *Analysis) Markdown(plots []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Activation flow (brief §3)\n\n%s on %d held-out sequences of %d tokens. q_p: mean fraction of dimensions carrying p of the L1 mass (i.i.d. Gaussian: q_0.5 = %.3f); active: |u_i| > 1.5·RMS; J_cons / J_rand: Jaccard of the top-10%% dimensions of consecutive tokens / random pairs from other sequences; shared: dimensions in the top 10%% for ≥ 50%% of tokens; specialized: for some but ≤ 5%%; run: mean consecutive-membership run.",
		a.Model, a.Seqs, a.Context, GaussianQ50)
	if a.Groups > 1 {
		fmt.Fprintf(&b, " Group level (N = %d contiguous groups, top quarter by energy): J_cons^g / J_rand^g.", a.Groups)
	}
	b.WriteString("\n\n| layer | site | q_0.5 | q_0.8 | q_0.9 | active | J_cons | J_rand | shared | specialized | run | J_cons^g | J_rand^g |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range a.Sites {
		group := "– | –"
		if s.Site != "x" && a.Groups > 1 {
			group = fmt.Sprintf("%.3f | %.3f", s.GroupCons, s.GroupRand)
		}
		fmt.Fprintf(&b, "| %d | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %s |\n", s.Layer, s.Site,
			s.Q50, s.Q80, s.Q90, s.Active, s.Cons, s.Rand, s.Shared, s.Specialized, s.Run, group)
	}
	if len(a.Routers) > 0 {
		b.WriteString("\n" + routersMarkdown(a.Routers))
	}
	if len(plots) > 0 {
		b.WriteString("\n")
		for _, p := range plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", filepath.Base(p), p)
		}
	}
	return b.String()
}

// routersMarkdown is the router-health table.
func routersMarkdown(hs []RouterHealth) string {
	var b strings.Builder
	b.WriteString("### Router health (brief §7)\n\nPer router (layer.sublayer): load f_j per routed group, CV = std/mean, normalised entropy H(f)/ln N_r, min/max load, dead groups (f_j < 0.1/N_r), and the persistence Jaccard(T_t, T_{t+1}) against random pairs.\n\n| router | entropy | CV | min f | max f | dead | J(T_t, T_t+1) | J random | load |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, h := range hs {
		loads := make([]string, len(h.Load))
		for i, f := range h.Load {
			loads[i] = fmt.Sprintf("%.3f", f)
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f | %d | %.3f | %.3f | %s |\n", h.Name, h.Entropy, h.CV, h.MinLoad, h.MaxLoad,
			h.Dead, h.Persistence, h.Random, strings.Join(loads, " "))
	}
	return b.String()
}

// WritePlots draws the analysis into dir/plots and returns the files'
// paths relative to dir.
func (a *Analysis) WritePlots(dir string) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, rundir.PlotsDir), 0o755); err != nil {
		return nil, err
	}
	var out []string
	draw := func(name string, f func(path string) error) error {
		rel := filepath.Join(rundir.PlotsDir, name)
		if err := f(filepath.Join(dir, rel)); err != nil {
			return err
		}
		out = append(out, rel)
		return nil
	}
	series := func(site string, y func(SiteFlow) float64, dashed bool, name string) plot.Series {
		s := plot.Series{Name: name, Dashed: dashed}
		for _, f := range a.Sites {
			if f.Site == site {
				s.X, s.Y = append(s.X, float64(f.Layer)), append(s.Y, y(f))
			}
		}
		return s
	}
	q50 := func(f SiteFlow) float64 { return f.Q50 }
	gauss := plot.Series{Name: "i.i.d. Gaussian", Dashed: true}
	for _, f := range a.Sites {
		if f.Site == "x" {
			gauss.X, gauss.Y = append(gauss.X, float64(f.Layer)), append(gauss.Y, GaussianQ50)
		}
	}
	err := errors.Join(
		draw("mohd_flow_concentration.png", func(p string) error {
			return plot.Lines(p, plot.Figure{Title: "Concentration: share of dims carrying half the |activation|", XLabel: "layer", YLabel: "q_0.5"},
				series("attn.u", q50, false, "attn input u"), series("ffn.u", q50, false, "FFN input u"), series("x", q50, false, "residual x"), gauss)
		}),
		draw("mohd_flow_persistence.png", func(p string) error {
			return plot.Lines(p, plot.Figure{Title: "Top-10% dims: consecutive tokens vs random pairs", XLabel: "layer", YLabel: "Jaccard"},
				series("attn.u", func(f SiteFlow) float64 { return f.Cons }, false, "attn u, consecutive"),
				series("attn.u", func(f SiteFlow) float64 { return f.Rand }, true, "attn u, random"),
				series("ffn.u", func(f SiteFlow) float64 { return f.Cons }, false, "FFN u, consecutive"),
				series("ffn.u", func(f SiteFlow) float64 { return f.Rand }, true, "FFN u, random"))
		}),
		draw("mohd_flow_frequency.png", func(p string) error {
			var freq []float64
			for _, f := range a.Sites {
				if f.Site != "x" {
					freq = append(freq, f.Freq...)
				}
			}
			return plot.Histogram(p, plot.Figure{Title: "Share of tokens with a dim in its top 10% (all sublayer inputs)", XLabel: "share of tokens", YLabel: "dims"}, freq, 25)
		}),
	)
	if err != nil {
		return out, err
	}
	if len(a.Routers) == 0 {
		return out, nil
	}
	var rows []string
	var load [][]float64
	var cols []string
	ent := plot.BarGroup{Name: "normalised entropy"}
	pers := plot.BarGroup{Name: "J(T_t, T_t+1)"}
	rnd := plot.BarGroup{Name: "J random pairs"}
	for _, h := range a.Routers {
		rows = append(rows, h.Name)
		load = append(load, h.Load)
		for _, g := range []*plot.BarGroup{&ent, &pers, &rnd} {
			g.Labels = append(g.Labels, h.Name)
		}
		ent.Values, pers.Values, rnd.Values = append(ent.Values, h.Entropy), append(pers.Values, h.Persistence), append(rnd.Values, h.Random)
	}
	for j := range a.Routers[0].Load {
		cols = append(cols, fmt.Sprint(j))
	}
	err = errors.Join(
		draw("mohd_router_load.png", func(p string) error {
			return plot.Heatmap(p, plot.Figure{Title: "Router load f_j (uniform = 1/N_r)", XLabel: "routed group", YLabel: "router", ColorLabel: "share of the router's tokens sent to the group"}, rows, cols, load)
		}),
		draw("mohd_router_health.png", func(p string) error {
			return plot.Bars(p, plot.Figure{Title: "Router health", YLabel: "value"}, ent, pers, rnd)
		}),
	)
	return out, err
}

// WriteFiles writes the analysis into run directory dir: mohd_analysis.json,
// mohd_analysis.md and the plots; it returns the Markdown.
func (a *Analysis) WriteFiles(dir string) (string, error) {
	plots, err := a.WritePlots(dir)
	if err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicio.WriteFile(filepath.Join(dir, "mohd_analysis.json"), js, 0o644); err != nil {
		return "", err
	}
	md := a.Markdown(plots)
	return md, atomicio.WriteFile(filepath.Join(dir, "mohd_analysis.md"), []byte("# "+a.Model+"\n\n"+md), 0o644)
}

// Opened is a trained model rebuilt from a run directory.
type Opened struct {
	Tracer Tracer
	Data   lm.Data
	Recipe *experiment.Recipe
	Groups int // N of a MoHD model (1 for others)
	run    *rundir.Run
}

// Close frees the model.
func (o *Opened) Close() { o.run.Close() }

// Open rebuilds a run's model with rundir.Open (its recipe.yaml and latest
// checkpoint): mohd and gpt runs can be traced. Call Close when done, on
// the thread that opened it (torch.RunLocked).
func Open(dir string) (*Opened, error) {
	run, err := rundir.Open(dir, rundir.OpenOptions{Device: torch.CPU})
	if err != nil {
		return nil, err
	}
	o := &Opened{Recipe: run.Recipe, Groups: 1, run: run}
	x, ok := run.Experiment.(lm.Opened)
	if !ok {
		run.Close()
		return nil, fmt.Errorf("%s: model.family: %s runs cannot be analysed (mohd and gpt can)", dir, run.Recipe.Family)
	}
	o.Data = x.LM().D
	switch m := x.LM().M.(type) {
	case *Model:
		o.Tracer, o.Groups = m, m.Config.Groups
	case *gpt.Model:
		o.Tracer = GPTTracer{m.GPT}
	default:
		run.Close()
		return nil, fmt.Errorf("%s: model.family: %s runs cannot be analysed (mohd and gpt can)", dir, run.Recipe.Family)
	}
	return o, nil
}

// AnalyzeRun opens run directory dir (see Open), analyses its model on seqs
// held-out sequences and writes mohd_analysis.{md,json} and the plots into
// dir. It runs on a locked OS thread.
func AnalyzeRun(dir string, seqs int, seed uint64) (*Analysis, error) {
	var a *Analysis
	var err error
	torch.RunLocked(func() {
		var o *Opened
		if o, err = Open(dir); err != nil {
			return
		}
		defer o.Close()
		if a, err = Analyze(o.Tracer, o.Data, seqs, o.Groups, seed); err != nil {
			return
		}
		a.Model = fmt.Sprintf("%s (family %s, %s)", o.Recipe.Name, o.Recipe.Family, dir)
		_, err = a.WriteFiles(dir)
	})
	return a, err
}
