package atlas

import (
	"fmt"
	"regexp"

	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/models/sae"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// SAEFamily is the recipe family of the runs LoadSAE reads.
const SAEFamily = "sae"

// IsSAE reports whether dir (a run, stage or staged run directory) is a
// sparse-autoencoder run: its recipe's (its last stage's) family is sae.
func IsSAE(dir string) bool {
	sdir, err := rundir.ResolveDir(dir, "")
	if err != nil {
		return false
	}
	r, err := rundir.LoadRecipe(sdir)
	return err == nil && r.Family == SAEFamily
}

// SAELogitNote says how an SAE latent's promoted and suppressed tokens are
// computed.
const SAELogitNote = "Promotes/suppresses of an SAE latent: its decoder column (divided by the SAE's input scale c: what one unit of the latent adds to the site's activation) " +
	"mapped into the residual stream — as it is for a residual-stream site (resid_pre/mid/post, attn_out, mlp_out), through the attention output projection W_O for attn.hook_z " +
	"(and attn_preproj), through the MLP's output projection for mlp.hook_post — then centred and scaled by the final LayerNorm's gain γ (its 1/σ and bias β left out), times the unembedding W_U. " +
	"Other sites (q, k, v, LayerNorm outputs, MLP pre-activations, the final norm) have no such direct path: their latents list none."

// LoadSAE builds the features of the sparse-autoencoder run in dir (a run,
// stage or staged run directory of family sae): one per latent of the SAE
// that fires (o.MinFires, o.Top as for codes), measured on the first o.Seqs
// (256 when 0) windows of the held-out split of the source run's data.
// o.Sites may only name the SAE's site; o.Fill.Regexes is not used;
// o.Regexes are scored as by LoadCodebook.
//
// When the source is a codebook run with codebooks in the SAE site's layer,
// the site also holds their codes and, with o.Neurons, the MLP neurons of
// that layer, as LoadCodebook builds them (o.MinFires, o.Top and o.Logits
// alike) on a code cache of the same held-out windows, so that one atlas
// compares codes, neurons and latents.
//
// A latent's activation is its post-activation value z_i (sae.SAE.Latents:
// ReLU, after the top-k for a topk SAE, of W_enc(c·x − b_dec) + b_enc) on
// the source model's activation x at the SAE's site (sae.Source.Acts, the
// model reopened at the checkpoint the SAE was trained on); it is active
// where z_i > 0.
//
// Promoted and suppressed tokens are the direct logit attribution of the
// latent's output direction, the simplification LoadCodebook uses for codes
// and neurons (see SAELogitNote and LogitNote): the decoder column
// W_dec[:, i]/c (what one unit of z_i adds to x in the site's units) is
// mapped into the residual stream — unchanged at a residual-stream site
// (hook_resid_pre, hook_resid_mid, hook_resid_post, hook_attn_out,
// hook_mlp_out, attn_plus_mlp), through the attention output projection W_O
// of its layer at attn.hook_z (all heads flattened, as the SAE reads them)
// or attn_preproj, through the MLP's output projection at mlp.hook_post —
// then reduced by the final norm's linear part (centring for LayerNorm, the
// gain γ) and multiplied by the unembedding W_U. Latents of other sites (q,
// k, v, normalised inputs, MLP pre-activations, the final norm), and of
// sources that are not GPT-style models (gpt, codebook), list none.
//
// Everything that touches tensors runs here: call it on one goroutine
// locked to its thread (torch.RunLocked).
func LoadSAE(dir string, o LoadOptions) (*Site, error) {
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
	seqs := o.Seqs
	if seqs <= 0 {
		seqs = 256
	}
	var res []*regexp.Regexp
	for _, p := range o.Regexes {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("regex %q: %w", p, err)
		}
		res = append(res, re)
	}
	r, err := rundir.Open(dir, rundir.OpenOptions{Device: torch.CPU, Family: SAEFamily})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	e, ok := r.Experiment.(*sae.Experiment)
	if !ok {
		return nil, fmt.Errorf("%s: a %s run is not an SAE run", dir, r.Recipe.Family)
	}
	a, src := e.SAE, e.Src
	d := src.LM.D
	for _, name := range o.Sites {
		if s, err := nn.ParseSite(name); err != nil || !s.Same(src.Site) {
			return nil, fmt.Errorf("site %q: the SAE run %s reads only %s", name, r.Dir, e.Cfg.Site)
		}
	}

	// The corpus: the first seqs held-out windows.
	T := d.Context()
	var x []int64
	for b := range d.Eval(o.Batch) {
		x = append(x, b.X...)
		if len(x) >= seqs*T {
			break
		}
	}
	n := min(seqs, len(x)/T)
	if n == 0 {
		return nil, fmt.Errorf("%s: the source's held-out split has no window of %d tokens", dir, T)
	}
	x = x[:n*T]
	corpus := &Corpus{Seqs: n, Context: T, Tokens: make([]int32, len(x)), Texts: make([][]byte, d.Vocab())}
	for i, id := range x {
		corpus.Tokens[i] = int32(id)
	}
	for id := range corpus.Texts {
		corpus.Texts[id] = []byte(d.Decode([]int64{int64(id)}))
	}
	fill := o.Fill
	fill.Regexes = o.Regexes
	fill.Matched = nil
	for _, re := range res {
		var m []bool
		for s := 0; s < n; s++ {
			m = append(m, interp.MatchPositions(corpus.SeqTexts(s), re)...)
		}
		fill.Matched = append(fill.Matched, m)
	}

	// The latents over the corpus.
	L := a.DSAE()
	acts := make([][]Activation, L)
	a.NormalizeDecoder()
	for start := 0; start < n; start += o.Batch {
		rows := min(o.Batch, n-start)
		err := torch.Try(func() {
			torch.NoGrad(func() {
				torch.WithScope(func() {
					X := torch.FromSlice(x[start*T:(start+rows)*T], []int{rows, T}, src.Device())
					z := a.Latents(src.Acts(X)).To(torch.Float32).To(torch.CPU).Contiguous().Float32s()
					for p := 0; p < rows*T; p++ {
						for j, v := range z[p*L : (p+1)*L] {
							if v > 0 {
								acts[j] = append(acts[j], Activation{Pos: start*T + p, Act: v})
							}
						}
					}
				})
			})
		})
		if err != nil {
			return nil, err
		}
	}

	site := src.Site
	s := &Site{
		Title:   fmt.Sprintf("%s · step %d", r.Recipe.Name, r.Step),
		Source:  r.Dir,
		Regexes: o.Regexes,
		Notes: []string{
			fmt.Sprintf("SAE (%s, %d latents) on %s of the %s run %s (step %d). Measured on the first %d held-out windows × %d tokens (%d positions) of its data.",
				e.Cfg.Kind, L, site, src.Run.Recipe.Family, src.Run.Dir, src.Run.Step, n, T, n*T),
			"SAE latent activation: its post-activation value (ReLU, after the top-k for topk) on the source model's activation at the site, active where above 0.",
			SAELogitNote,
			"Regex precision typed in the page: the share of a feature's activations on listed top tokens the regex matches (a lower bound); " +
				"the P(…) columns are exact, over every position.",
		},
	}
	book := e.Cfg.Site
	var fs []Feature
	for _, j := range keep(acts, o.MinFires, o.Top) {
		f := Feature{Kind: KindSAE, Book: book, ID: j, ActLabel: "activation"}
		corpus.Fill(&f, acts[j], fill)
		fs = append(fs, f)
	}
	if g := sourceGPT(src.LM.M); g != nil && len(fs) > 0 {
		lg, err := newLogitLens(g)
		if err != nil {
			return nil, err
		}
		dirs, err := saeDirections(lg, g, a, site, fs)
		if err != nil {
			return nil, err
		}
		if dirs != nil {
			if err := lg.fill(fs, dirs, corpus.Texts, o.Logits); err != nil {
				return nil, err
			}
		}
	}
	s.Features = fs

	// The source's codes (and neurons) of the SAE's layer, on the same windows.
	if cm, ok := src.LM.M.(*codebook.Model); ok {
		var names []string
		for _, cs := range cm.Sites {
			if cs.Layer == site.Layer {
				names = append(names, cs.String())
			}
		}
		if len(names) > 0 {
			co := o
			co.Sites, co.Seqs, co.fresh = names, n, true
			cb, err := LoadCodebook(e.Cfg.Source, co)
			if err != nil {
				return nil, fmt.Errorf("the source's codes: %w", err)
			}
			what := "codes"
			if o.Neurons {
				what = "codes and MLP neurons"
			}
			s.Notes = append(s.Notes, fmt.Sprintf("Also the source's %s of layer %d (codebooks %v), measured on the same windows (%s): ", what, site.Layer, names, cb.Source)+cb.Notes[1], LogitNote)
			s.Features = append(s.Features, cb.Features...)
		}
	}
	return s, nil
}

// sourceGPT is the GPT of a source model (gpt and codebook families), nil
// for others.
func sourceGPT(m lm.Model) *nn.GPT {
	switch x := m.(type) {
	case *gpt.Model:
		return x.GPT
	case *codebook.Model:
		return x.GPT
	}
	return nil
}

// saeDirections are the output directions in the residual stream of the
// latents of fs (see LoadSAE), nil when the site has no direct path to it.
func saeDirections(lg *logitLens, g *nn.GPT, a *sae.SAE, site nn.Site, fs []Feature) ([][]float32, error) {
	var w []float32 // the projection into the residual stream, [width, in]; nil: identity
	in := a.DIn()
	switch site.Point.Canonical() {
	case nn.ResidPre, nn.ResidMid, nn.Residual, nn.AttnOut, nn.MLPOut, nn.AttnPlusMLP, nn.HookEmbed, nn.HookPosEmbed:
		if in != lg.width {
			return nil, nil
		}
	case nn.AttnZ, nn.AttnPreProj:
		if site.Layer < 0 || site.Layer >= len(g.Blocks) {
			return nil, nil
		}
		var err error
		if err = torch.Try(func() { w, in = lg.weights(fmt.Sprintf("attn.%d", site.Layer), g.Blocks[site.Layer].Attn.Proj.Weight) }); err != nil {
			return nil, err
		}
	case nn.MLPMid:
		if site.Layer < 0 || site.Layer >= len(g.Blocks) {
			return nil, nil
		}
		if err := torch.Try(func() { w, in = lg.weights(fmt.Sprintf("mlp.%d", site.Layer), g.Blocks[site.Layer].MLP.Proj.Weight) }); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	if in != a.DIn() {
		return nil, nil
	}
	var dec []float32 // [d_in, d_sae]
	if err := torch.Try(func() {
		torch.WithScope(func() { dec = a.WDec.Detach().To(torch.Float32).To(torch.CPU).Contiguous().Float32s() })
	}); err != nil {
		return nil, err
	}
	c := float32(a.InputScale())
	L := a.DSAE()
	out := make([][]float32, len(fs))
	for k, f := range fs {
		col := make([]float32, in)
		for i := range col {
			col[i] = dec[i*L+f.ID] / c
		}
		if w == nil {
			out[k] = col
			continue
		}
		v := make([]float32, lg.width)
		for o := range v {
			v[o] = dot(w[o*in:(o+1)*in], col)
		}
		out[k] = v
	}
	return out, nil
}
