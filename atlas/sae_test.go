package atlas

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/models/sae"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// runRecipe writes recipe into tmp and runs it to completion.
func runRecipe(t *testing.T, tmp, name, recipe string) string {
	t.Helper()
	path := filepath.Join(tmp, name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(recipe), 0o644))
	dir, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(tmp, name)}})
	require.NoError(t, err)
	return dir
}

// TestSAERun trains a tiny GPT on text and two tiny SAEs on it (topk on the
// residual stream, relu on attn.hook_z), builds their atlases and checks
// that every feature is an SAE latent with contexts and promoted tokens,
// that the activations recorded are the latents recomputed by hand from the
// SAE's weights, and that the written index lists them with pages.
func TestSAERun(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	tmp := t.TempDir()
	var b strings.Builder
	for i := 0; i < 80; i++ {
		b.WriteString([]string{"the cat sat on the mat in the sun.\n", "a dog ran to the park with a ball.\n",
			"the bird sang in the tall green tree.\n"}[i%3])
	}
	corpus := filepath.Join(tmp, "stories.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(b.String()), 0o644))
	src := runRecipe(t, tmp, "src", `
name: src
model: {family: gpt, width: 16, layers: 2, heads: 2}
data: {kind: text, text: {train: `+corpus+`, tokenizer: byte, context: 32, valid_fraction: 0.25}}
train: {steps: 5, batch: 4, threads: 1, log_every: 5}
eval: {samples: 0}
output: {progress: false, tensorboard: false}
`)
	require.False(t, IsSAE(src))
	cb := runRecipe(t, tmp, "cb", `
name: cb
model: {family: gpt, width: 16, layers: 2, heads: 2}
data: {kind: text, text: {train: `+corpus+`, tokenizer: byte, context: 32, valid_fraction: 0.25}}
train: {steps: 3, batch: 4, threads: 1, log_every: 3}
eval: {samples: 0}
output: {progress: false, tensorboard: false}
stages:
  - name: pre
  - name: cb
    model: {family: codebook, codebook: {at: [attn_preproj], codes: 16, k: 2}}
    train: {init_from: pre}
`)
	for _, c := range []struct{ name, model string }{
		{"topk", `{family: sae, source: ` + src + `, site: blocks.1.hook_resid_post, kind: topk, latents: 32, k: 4}`},
		// On a codebook source: its codes and neurons of layer 0 come along.
		{"relu", `{family: sae, source: ` + cb + `, site: blocks.0.attn.hook_z, kind: relu, latents: 24, l1: 0.5}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := runRecipe(t, tmp, c.name, `
name: `+c.name+`
model: `+c.model+`
train: {steps: 10, batch: 4, optimizer: {name: adamw, lr: 3.0e-3, weight_decay: 0}, threads: 1, log_every: 10}
eval: {max_batches: 1}
output: {progress: false, tensorboard: false}
`)
			require.True(t, IsSAE(dir))
			var site *Site
			var err error
			torch.RunLocked(func() {
				site, err = LoadSAE(dir, LoadOptions{Seqs: 6, Batch: 4, Neurons: true, Regexes: []string{"the"}, Fill: FillOptions{Contexts: 30}})
			})
			require.NoError(t, err)
			require.NotEmpty(t, site.Features)
			kinds := map[string]int{}
			var latents []Feature
			for _, f := range site.Features {
				kinds[string(f.Kind)+" "+f.Book]++
				if f.Kind == KindSAE {
					latents = append(latents, f)
				}
				require.Positive(t, f.Fires, f.Name())
				require.Equal(t, 6*32, f.Positions)
				require.NotEmpty(t, f.Contexts)
				require.Len(t, f.Promotes, 10, f.Name())
				require.Len(t, f.Suppresses, 10)
				require.GreaterOrEqual(t, f.Promotes[0].Value, f.Suppresses[0].Value)
				require.Len(t, f.Regex, 1)
				for _, x := range f.Contexts {
					require.Equal(t, x.Act, x.Tokens[x.Center].Act)
				}
			}
			t.Logf("%s: %v", c.name, kinds)
			if c.name == "topk" {
				require.Len(t, kinds, 1, "a gpt source: latents only")
			} else {
				require.Positive(t, kinds["code blocks.0.attn_preproj[0]"])
				require.Positive(t, kinds["code blocks.0.attn_preproj[1]"])
				require.Positive(t, kinds["neuron blocks.0.mlp_mid"])
				require.Len(t, kinds, 4, "nothing of layer 1")
			}
			require.Positive(t, kinds["sae "+site.Features[0].Book])

			// The activations are the latents recomputed by hand.
			torch.RunLocked(func() {
				r, err := rundir.Open(dir, rundir.OpenOptions{Device: torch.CPU})
				require.NoError(t, err)
				defer r.Close()
				e := r.Experiment.(*sae.Experiment)
				a := e.SAE
				var windows []int64
				for b := range e.Src.LM.D.Eval(4) {
					windows = append(windows, b.X...)
				}
				var wenc, benc, bdec []float32
				var xs []float32
				torch.WithScope(func() {
					wenc = a.WEnc.Detach().Contiguous().Float32s()
					benc = a.BEnc.Detach().Float32s()
					bdec = a.BDec.Detach().Float32s()
					ids := torch.FromSlice(windows[:6*32], []int{6, 32}, torch.CPU)
					xs = e.Src.Acts(ids).Contiguous().Float32s()
				})
				sc := float32(a.InputScale())
				L, D := a.DSAE(), a.DIn()
				byHand := func(p int) []float32 {
					z := make([]float32, L)
					for j := range z {
						s := benc[j]
						for i := 0; i < D; i++ {
							s += wenc[j*D+i] * (sc*xs[p*D+i] - bdec[i])
						}
						z[j] = s
					}
					if a.Kind == sae.TopK {
						sorted := slices.Clone(z)
						slices.Sort(sorted)
						cut := sorted[L-a.K]
						for j := range z {
							if z[j] < cut {
								z[j] = 0
							}
						}
					}
					for j := range z {
						z[j] = max(z[j], 0)
					}
					return z
				}
				checked := 0
				// Every feature is measured on the same windows.
				for _, f := range site.Features {
					x := f.Contexts[0]
					p := x.Seq*32 + x.Pos
					require.Equal(t, DisplayText([]byte(e.Src.LM.D.Decode(windows[p:p+1]))), x.Tokens[x.Center].Text, f.Name())
				}
				for _, f := range latents[:min(5, len(latents))] {
					for _, x := range f.Contexts[:min(3, len(f.Contexts))] {
						p := x.Seq*32 + x.Pos
						require.Equal(t, DisplayText([]byte(e.Src.LM.D.Decode(windows[p:p+1]))), x.Tokens[x.Center].Text)
						z := byHand(p)
						require.InDelta(t, z[f.ID], x.Act, 1e-4*math.Max(1, float64(z[f.ID])), "%s at %d", f.Name(), p)
						// A token of the window where the latent is off shows 0.
						for k, tok := range x.Tokens {
							want := byHand(p - x.Center + k)[f.ID]
							require.InDelta(t, want, tok.Act, 1e-4*math.Max(1, float64(want)))
						}
						checked++
					}
				}
				require.Positive(t, checked)

				// The first latent's top promoted token, by hand: W_U γ ⊙
				// centre(P W_dec[:, i]/c), P = W_O at attn.hook_z.
				f := latents[0]
				g := sourceGPT(e.Src.LM.M)
				require.NotNil(t, g)
				var dec, wo, wu, gamma []float32
				torch.WithScope(func() {
					dec = a.WDec.Detach().Contiguous().Float32s()
					wo = g.Blocks[0].Attn.Proj.Weight.Detach().Contiguous().Float32s()
					wu = g.WTE.Weight.Detach().Contiguous().Float32s()
					if g.Head != nil {
						wu = g.Head.Weight.Detach().Contiguous().Float32s()
					}
					gamma = g.LNF.(*nn.LayerNorm).Weight.Detach().Float32s()
				})
				W := g.Config.Width
				col := make([]float32, D)
				for i := range col {
					col[i] = dec[i*L+f.ID] / sc
				}
				v := col
				if c.name == "relu" {
					v = make([]float32, W)
					for o := range v {
						v[o] = dot(wo[o*D:(o+1)*D], col)
					}
				}
				var mean float32
				for _, y := range v {
					mean += y / float32(W)
				}
				best, bestID := float32(math.Inf(-1)), -1
				for tok := 0; tok < len(wu)/W; tok++ {
					var l float32
					for o := range v {
						l += wu[tok*W+o] * gamma[o] * (v[o] - mean)
					}
					if l > best {
						best, bestID = l, tok
					}
				}
				require.InDelta(t, best, f.Promotes[0].Value, 1e-4)
				require.Equal(t, DisplayText([]byte(e.Src.LM.D.Decode([]int64{int64(bestID)}))), f.Promotes[0].Text)
			})

			// The written index lists the latents, each with its page.
			out := filepath.Join(tmp, c.name+"-atlas")
			st, err := Write(out, site, Options{})
			require.NoError(t, err)
			require.Equal(t, len(site.Features), st.Features)
			t.Logf("%s: %d features, %d files, %d bytes", c.name, st.Features, st.Files, st.Bytes)
			index, err := os.ReadFile(filepath.Join(out, "index.html"))
			require.NoError(t, err)
			require.Contains(t, string(index), "sae")
			shard, err := os.ReadFile(filepath.Join(out, "data", "index-0.js"))
			require.NoError(t, err)
			for _, f := range site.Features {
				require.Contains(t, string(shard), `"f/`+f.Slug()+`.html"`, f.Name())
				_, err := os.Stat(filepath.Join(out, "f", f.Slug()+".html"))
				require.NoError(t, err, f.Name())
			}
		})
	}
}
