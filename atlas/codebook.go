package atlas

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/codebook/codesearch"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// LoadOptions say which features LoadCodebook builds; zero values take the
// defaults.
type LoadOptions struct {
	// Sites are the codebook sites to include ("blocks.0.attn_preproj");
	// empty: every site of the run.
	Sites []string
	// Seqs is the number of cached sequences to measure on: 0 takes the
	// run's saved code cache as it is (or builds one of 256 sequences when
	// there is none); fewer than the saved cache holds takes its first Seqs;
	// more builds a new cache (in memory, not saved).
	Seqs  int
	Batch int // sequences per forward pass (16)
	// Neurons adds the MLP hidden units (after the nonlinearity) of the
	// layers of the chosen sites.
	Neurons bool
	// Regexes are scored against every feature (exact precision and recall
	// over every cached position, interp.MatchPositions).
	Regexes []string
	// MinFires leaves out features active at fewer positions (1: dead codes
	// are left out).
	MinFires int
	// Top keeps the Top most frequent features of each codebook (and of
	// each layer's neurons); 0 keeps all.
	Top int
	// Logits is the number of promoted and of suppressed tokens listed (10).
	Logits int
	Fill   FillOptions
	// fresh ignores the run's saved code cache: a new one of the first
	// Seqs held-out sequences is built (LoadSAE's comparison, measured on
	// the SAE's corpus).
	fresh bool
}

// SteeringFile is the steering experiment's report in a codebook run (stage)
// directory, read for the codes' steering effect.
const SteeringFile = "steering.json"

// LogitNote says how the promoted and suppressed tokens are computed.
const LogitNote = "Promotes/suppresses: the feature's output direction in the residual stream " +
	"(a code vector through the attention output projection W_O for attention-head codebooks, as it is for codebooks on the residual width; " +
	"a neuron's MLP output column), centred and scaled by the final LayerNorm's gain γ (its 1/σ and bias β left out), times the unembedding W_U."

// LoadCodebook builds the features of the codebook run in dir (a run, stage
// or staged run directory, as codesearch.Open takes it): every code of the
// chosen codebooks that fires and, with Neurons, the MLP neurons of their
// layers, measured on the run's code cache (codesearch.LoadCache, or
// BuildCache when there is none).
//
// A code's activation is its cosine score s = a·c/‖c‖ (a the LayerNorm'd
// input of its codebook, c the code: the score the codebook ranks codes by)
// at the positions where it is among the k codes selected, 0 elsewhere. A
// neuron's activation is its MLP hidden activation after the nonlinearity;
// it counts as active where that is above 0. Promoted and suppressed tokens
// are a direct logit attribution of the feature's output direction (see
// LogitNote): for a code, the code vector as its codebook writes it into the
// residual stream (through the attention output projection W_O's columns of
// its head for attn_preproj, through the MLP's output projection for
// mlp_mid, as it is at mlp, attn and residual), for a neuron its output
// column of the MLP's projection; the final norm is reduced to its linear
// part (centring for LayerNorm, the gain γ), leaving out each position's
// 1/σ (a positive scale that does not change the ranking) and the bias β,
// and the result is multiplied by the unembedding W_U. This ignores the
// rest of the residual stream and every later layer: it shows what the
// feature writes directly, not its total effect. A code's steering effect
// comes from the run's steering.json when the report ran the steering
// experiment.
//
// Everything that touches tensors runs here: call it on one goroutine
// locked to its thread (torch.RunLocked).
func LoadCodebook(dir string, o LoadOptions) (*Site, error) {
	// Every temporary tensor of the load (weights copied out, activations)
	// belongs to this scope; the Site returned is plain Go.
	scope := torch.NewScope()
	defer scope.Close()
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.MinFires <= 0 {
		o.MinFires = 1
	}
	if o.Logits <= 0 {
		o.Logits = 10
	}
	var res []*regexp.Regexp
	for _, p := range o.Regexes {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("regex %q: %w", p, err)
		}
		res = append(res, re)
	}
	r, err := codesearch.Open(dir, torch.CPU)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	c, note, err := loadCache(r, dir, o)
	if err != nil {
		return nil, err
	}
	books, err := chooseBooks(c, o.Sites)
	if err != nil {
		return nil, err
	}
	corpus := &Corpus{Seqs: c.Seqs, Context: c.Context, Tokens: c.Tokens, Texts: c.Texts}
	fill := o.Fill
	fill.Regexes = o.Regexes
	fill.Matched = nil
	for _, re := range res {
		var m []bool
		for s := 0; s < c.Seqs; s++ {
			m = append(m, interp.MatchPositions(corpus.SeqTexts(s), re)...)
		}
		fill.Matched = append(fill.Matched, m)
	}
	var layers []int // of the neurons
	if o.Neurons {
		for _, b := range books {
			site, _ := nn.ParseSite(b.Site)
			if !slices.Contains(layers, site.Layer) {
				layers = append(layers, site.Layer)
			}
		}
		slices.Sort(layers)
	}
	pass, err := forward(r, c, books, layers, o.Batch)
	if err != nil {
		return nil, err
	}
	lg, err := newLogitLens(r.Model.GPT)
	if err != nil {
		return nil, err
	}
	steer, err := readSteering(filepath.Join(r.Dir, SteeringFile))
	if err != nil {
		return nil, err
	}

	s := &Site{
		Title:   fmt.Sprintf("%s · step %d", r.Recipe.Name, r.Step),
		Source:  r.Dir,
		Regexes: o.Regexes,
		Notes: []string{
			fmt.Sprintf("Measured on %d %s sequences × %d tokens (%d positions)%s.", c.Seqs, c.Source, c.Context, c.Seqs*c.Context, note),
			"Code activation: its cosine score a·c/‖c‖ where it is among the k codes selected. " +
				"Neuron activation: the MLP hidden unit after the nonlinearity, active where above 0.",
			LogitNote,
			"Regex precision typed in the page: the share of a feature's activations on listed top tokens the regex matches (a lower bound); " +
				"the P(…) columns are exact, over every position.",
		},
	}
	// Codes.
	for _, b := range books {
		site, _ := nn.ParseSite(b.Site)
		l := r.Model.Layers[site]
		ids, scores := c.Codes(b), pass.scores[b.Site]
		G, K := b.Info.Groups, b.Info.K
		g := max(b.Group, 0)
		acts := make([][]Activation, b.Info.Codes)
		for p, row := range ids {
			for k, id := range row {
				if id < 0 || int(id) >= len(acts) {
					continue
				}
				if n := len(acts[id]); n > 0 && acts[id][n-1].Pos == p {
					continue // listed twice at one position
				}
				acts[id] = append(acts[id], Activation{Pos: p, Act: scores[(p*G+g)*K+k]})
			}
		}
		var fs []Feature
		var dirs [][]float32
		for _, code := range keep(acts, o.MinFires, o.Top) {
			f := Feature{Kind: KindCode, Book: b.Name(), ID: code, ActLabel: "cosine score", Steering: steer[steerKey{b.Name(), code}]}
			corpus.Fill(&f, acts[code], fill)
			fs = append(fs, f)
			dirs = append(dirs, lg.codeDirection(r.Model, site, l, g, code))
		}
		if err := lg.fill(fs, dirs, c.Texts, o.Logits); err != nil {
			return nil, err
		}
		s.Features = append(s.Features, fs...)
	}
	// Neurons.
	for _, li := range layers {
		a := pass.neurons[li]
		H := r.Model.Blocks[li].MLP.Proj.Weight.Shape()[1]
		P := c.Seqs * c.Context
		acts := make([][]Activation, H)
		for p := 0; p < P; p++ {
			for j, v := range a[p*H : (p+1)*H] {
				if v > 0 {
					acts[j] = append(acts[j], Activation{Pos: p, Act: v})
				}
			}
		}
		book := nn.Site{Layer: li, Point: nn.MLPMid}.String()
		var fs []Feature
		var dirs [][]float32
		for _, j := range keep(acts, o.MinFires, o.Top) {
			f := Feature{Kind: KindNeuron, Book: book, ID: j, ActLabel: "activation"}
			corpus.Fill(&f, acts[j], fill)
			fs = append(fs, f)
			dirs = append(dirs, lg.neuronDirection(r.Model, li, j))
		}
		if err := lg.fill(fs, dirs, c.Texts, o.Logits); err != nil {
			return nil, err
		}
		s.Features = append(s.Features, fs...)
	}
	return s, nil
}

// keep lists the features (indices of acts) active at least minFires
// times, the top most frequent of them when top > 0, in increasing order.
func keep(acts [][]Activation, minFires, top int) []int {
	var out []int
	for i, a := range acts {
		if len(a) >= minFires {
			out = append(out, i)
		}
	}
	if top > 0 && len(out) > top {
		slices.SortStableFunc(out, func(a, b int) int { return cmp.Compare(len(acts[b]), len(acts[a])) })
		out = out[:top]
		slices.Sort(out)
	}
	return out
}

// loadCache returns the run's code cache as o asks (see LoadOptions.Seqs)
// and a note on where it came from.
func loadCache(r *codesearch.Run, dir string, o LoadOptions) (*codesearch.Cache, string, error) {
	c, err := codesearch.LoadCache(dir)
	if o.fresh {
		c, err = nil, codesearch.ErrNoCache
	}
	switch {
	case errors.Is(err, codesearch.ErrNoCache):
	case err != nil:
		return nil, "", err
	case c.Step != r.Step:
		c = nil // a stale cache
	case o.Seqs > c.Seqs:
		c = nil
	}
	if c == nil {
		seqs := o.Seqs
		if seqs <= 0 {
			seqs = 256
		}
		c, err = r.BuildCache(codesearch.CacheOptions{Seqs: seqs, Batch: o.Batch})
		if err != nil {
			return nil, "", err
		}
		return c, fmt.Sprintf(", run through the model at step %d", r.Step), nil
	}
	if o.Seqs > 0 && o.Seqs < c.Seqs {
		n := o.Seqs
		c.Seqs = n
		c.Tokens = c.Tokens[:n*c.Context]
		for _, b := range c.Books {
			c.IDs[b.Site] = c.IDs[b.Site][:n*c.Context*b.Groups*b.K]
		}
	}
	return c, fmt.Sprintf(", the run's code cache of step %d", c.Step), nil
}

// chooseBooks lists the codebooks of the chosen sites (all when sites is
// empty), in forward order.
func chooseBooks(c *codesearch.Cache, sites []string) ([]codesearch.Book, error) {
	var have []string
	for _, b := range c.Books {
		have = append(have, b.Site)
	}
	for _, s := range sites {
		if !slices.Contains(have, s) {
			return nil, fmt.Errorf("site %q: the run has no codebook there (have %v)", s, have)
		}
	}
	var out []codesearch.Book
	for _, b := range c.AllBooks() {
		if len(sites) == 0 || slices.Contains(sites, b.Site) {
			out = append(out, b)
		}
	}
	return out, nil
}

// pass is what one run of the model over the cache records: the cosine
// score of every cached code id (site → [positions, G, K], as the ids) and
// the hidden activations of the MLPs of some layers (layer →
// [positions, hidden]).
type pass struct {
	scores  map[string][]float32
	neurons map[int][]float32
}

// forward runs the model over the cache's sequences and records the cosine
// score of each cached code at the books' sites, and the MLP hidden
// activations of layers.
func forward(r *codesearch.Run, c *codesearch.Cache, books []codesearch.Book, layers []int, batch int) (*pass, error) {
	m := r.Model
	if c.Context != r.Data.Context() || c.Vocab != r.Data.Vocab() {
		return nil, fmt.Errorf("the code cache (context %d, vocab %d) does not fit the run (context %d, vocab %d)",
			c.Context, c.Vocab, r.Data.Context(), r.Data.Vocab())
	}
	out := &pass{scores: map[string][]float32{}, neurons: map[int][]float32{}}
	type table struct {
		codes []float32 // [G, C, d]
		norms []float32 // [G, C]
		info  codesearch.BookInfo
	}
	tables := map[string]*table{}
	for _, b := range books {
		if _, ok := tables[b.Site]; ok {
			continue
		}
		site, err := nn.ParseSite(b.Site)
		if err != nil {
			return nil, err
		}
		l := m.Layers[site]
		var codes []float32
		if err := torch.Try(func() { codes = l.Codes.Detach().Contiguous().Float32s() }); err != nil {
			return nil, err
		}
		d := l.D / l.G
		tb := &table{codes: codes, norms: make([]float32, l.G*l.C), info: b.Info}
		for i := range tb.norms {
			var s float64
			for _, v := range codes[i*d : (i+1)*d] {
				s += float64(v) * float64(v)
			}
			tb.norms[i] = float32(max(math.Sqrt(s), 1e-12))
		}
		tables[b.Site] = tb
		out.scores[b.Site] = make([]float32, 0, len(c.IDs[b.Site]))
	}
	captured := map[int]*torch.Tensor{}
	var removes []func()
	for _, li := range layers {
		li := li
		removes = append(removes, m.Hooks.Add(nn.Site{Layer: li, Point: nn.MLPMid}, func(t *torch.Tensor) *torch.Tensor {
			if old := captured[li]; old != nil {
				old.Free()
			}
			captured[li] = t.Detach().Retain()
			return t
		}))
	}
	defer func() {
		for _, rm := range removes {
			rm()
		}
		for _, t := range captured {
			t.Free()
		}
	}()
	m.SetRecord(true)
	defer m.SetRecord(false)
	sites := make([]string, 0, len(tables))
	for s := range tables {
		sites = append(sites, s)
	}
	slices.Sort(sites)
	err := torch.Try(func() {
		torch.NoGrad(func() {
			for start := 0; start < c.Seqs; start += batch {
				n := min(batch, c.Seqs-start)
				torch.WithScope(func() {
					x := make([]int64, n*c.Context)
					for i := range x {
						x[i] = int64(c.Tokens[start*c.Context+i])
					}
					m.Forward(torch.FromSlice(x, []int{n, c.Context}, m.WTE.Weight.Device()))
					for _, name := range sites {
						site, _ := nn.ParseSite(name)
						l, tb := m.Layers[site], tables[name]
						a := l.Normalize(l.Input()).Contiguous().Float32s() // [n, T, G, d]
						G, K, d := tb.info.Groups, tb.info.K, l.D/l.G
						ids := c.IDs[name][start*c.Context*G*K : (start+n)*c.Context*G*K]
						for i, id := range ids {
							pg := i / K // position × G + group
							g := pg % G
							if id < 0 || int(id) >= tb.info.Codes {
								out.scores[name] = append(out.scores[name], 0)
								continue
							}
							row := (g*tb.info.Codes + int(id))
							out.scores[name] = append(out.scores[name], dot(a[pg*d:(pg+1)*d], tb.codes[row*d:(row+1)*d])/tb.norms[row])
						}
					}
					for _, li := range layers {
						t := captured[li]
						if t == nil {
							panic(fmt.Sprintf("no MLP activation recorded at layer %d", li))
						}
						out.neurons[li] = append(out.neurons[li], t.Contiguous().Float32s()...)
					}
				})
			}
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// logitLens maps output directions in the residual stream to vocabulary
// logits: W_U (γ ⊙ centre(v)); see LogitNote.
type logitLens struct {
	wu     *torch.Tensor // [V, D]
	gamma  []float32     // [D], nil: 1
	centre bool
	width  int
	// cached weights
	proj map[string][]float32
}

func newLogitLens(m *nn.GPT) (*logitLens, error) {
	lg := &logitLens{width: m.Config.Width, proj: map[string][]float32{}}
	lg.wu = m.WTE.Weight
	if m.Head != nil {
		lg.wu = m.Head.Weight
	}
	err := torch.Try(func() {
		switch n := m.LNF.(type) {
		case *nn.LayerNorm:
			lg.gamma, lg.centre = n.Weight.Detach().Float32s(), true
		case *nn.RMSNorm:
			lg.gamma = n.Weight.Detach().Float32s()
		}
	})
	return lg, err
}

// weights returns a cached float copy of a weight ([out, in] for a
// projection: its width is in) and the size of its dimension 1.
func (lg *logitLens) weights(key string, t *torch.Tensor) ([]float32, int) {
	w, ok := lg.proj[key]
	if !ok {
		torch.WithScope(func() { w = t.Detach().Contiguous().Float32s() })
		lg.proj[key] = w
	}
	return w, t.Shape()[1]
}

// codeDirection is what code (of group g of l at site) writes into the
// residual stream, per unit of the code.
func (lg *logitLens) codeDirection(m *codebook.Model, site nn.Site, l *codebook.Layer, g, code int) []float32 {
	d := l.D / l.G
	all, _ := lg.weights("codes."+site.String(), l.Codes)
	row := g*l.C + code
	c := all[row*d : (row+1)*d]
	var w []float32
	var in, off int
	switch site.Point {
	case nn.AttnPreProj:
		w, in = lg.weights(fmt.Sprintf("attn.%d", site.Layer), m.Blocks[site.Layer].Attn.Proj.Weight)
		off = g * d
	case nn.MLPMid:
		w, in = lg.weights(fmt.Sprintf("mlp.%d", site.Layer), m.Blocks[site.Layer].MLP.Proj.Weight)
		off = g * d
	default: // residual width: the code is the direction (a vanilla codebook, or group g's slice)
		v := make([]float32, lg.width)
		copy(v[g*d:], c)
		return v
	}
	v := make([]float32, lg.width)
	for o := range v {
		row := w[o*in+off : o*in+off+d]
		v[o] = dot(row, c)
	}
	return v
}

// neuronDirection is MLP neuron j's output column at layer li.
func (lg *logitLens) neuronDirection(m *codebook.Model, li, j int) []float32 {
	w, in := lg.weights(fmt.Sprintf("mlp.%d", li), m.Blocks[li].MLP.Proj.Weight)
	v := make([]float32, lg.width)
	for o := range v {
		v[o] = w[o*in+j]
	}
	return v
}

// fill sets the promoted and suppressed tokens of fs from their directions.
func (lg *logitLens) fill(fs []Feature, dirs [][]float32, texts [][]byte, n int) error {
	if len(fs) == 0 {
		return nil
	}
	D := lg.width
	flat := make([]float32, 0, len(dirs)*D)
	for _, v := range dirs {
		if lg.centre {
			var mean float32
			for _, x := range v {
				mean += x
			}
			mean /= float32(D)
			for i := range v {
				v[i] -= mean
			}
		}
		if lg.gamma != nil {
			for i := range v {
				v[i] *= lg.gamma[i]
			}
		}
		flat = append(flat, v...)
	}
	var logits []float32
	err := torch.Try(func() {
		torch.WithScope(func() {
			x := torch.FromSlice(flat, []int{len(dirs), D}, lg.wu.Device())
			logits = x.Matmul(lg.wu.Detach().T()).Contiguous().Float32s()
		})
	})
	if err != nil {
		return err
	}
	V := len(logits) / len(fs)
	for i := range fs {
		fs[i].Promotes, fs[i].Suppresses = TopLogits(logits[i*V:(i+1)*V], texts, n)
	}
	return nil
}

// steerKey is a code of a codebook.
type steerKey struct {
	book string
	code int
}

// readSteering reads a steering report (codebook.SteerReport) into the
// steering rows of every patched code; no file is no rows.
func readSteering(path string) (map[steerKey][]Steering, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rep codebook.SteerReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[steerKey][]Steering{}
	for _, t := range rep.Topics {
		for _, tc := range t.Codes {
			k := steerKey{tc.Book(), tc.Code}
			out[k] = append(out[k], Steering{Topic: t.Topic, Regex: t.Regex, Precision: tc.Precision,
				Baseline: t.Baseline, OneCode: t.OneCode, OneCodeN: t.OneCodeN, AllCodes: t.AllCodes, AllCodesN: t.AllCodesN})
		}
	}
	return out, nil
}
