package atlas

import (
	"encoding/json"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/codebook/codesearch"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// trainTiny trains a tiny staged codebook run (pretrain, then codebooks at
// attn_preproj and mlp) for a few steps, as codesearch's test does, and
// returns its directory.
func trainTiny(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 80; i++ {
		b.WriteString([]string{"the cat sat on the mat in the sun.\n", "a dog ran to the park with a ball.\n",
			"the bird sang in the tall green tree.\n"}[i%3])
	}
	corpus := filepath.Join(dir, "stories.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(b.String()), 0o644))
	recipe := `
name: tiny
model: {family: gpt, width: 16, layers: 2, heads: 2}
data: {kind: text, text: {train: ` + corpus + `, tokenizer: byte, context: 32, valid_fraction: 0.25}}
train: {steps: 3, batch: 4, threads: 1, log_every: 1}
eval: {samples: 0}
output: {progress: false}
stages:
  - name: pre
  - name: cb
    model: {family: codebook, codebook: {at: [attn_preproj, mlp], codes: 16, k: 2}}
    train: {init_from: pre}
`
	path := filepath.Join(dir, "tiny.yaml")
	require.NoError(t, os.WriteFile(path, []byte(recipe), 0o644))
	runDir, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(dir, "run")}})
	require.NoError(t, err)
	return runDir
}

// TestCodebookRun builds the atlas of a tiny trained codebook run: every
// firing code of every codebook and the neurons of both layers, with
// contexts, histograms, promoted tokens, regex stats and the steering rows
// of a steering.json; then writes it and loads it in headless chromium.
func TestCodebookRun(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	runDir := trainTiny(t)
	stage := filepath.Join(runDir, "1-cb")
	// A steering report naming every code of one codebook.
	topic := codebook.SteerResult{Topic: "cat", Regex: `\bcat\b`, Baseline: 0.25, OneCode: 0.5, OneCodeN: 16, AllCodes: 0.75, AllCodesN: 1}
	for code := range 16 {
		topic.Codes = append(topic.Codes, codebook.TopicCode{Site: nn.Site{Layer: 0, Point: nn.AttnPreProj}, Group: 1, Code: code, Precision: 0.5})
	}
	rep := codebook.SteerReport{Method: "context", Samples: 4, Topics: []codebook.SteerResult{topic}}
	require.NoError(t, rep.Save(filepath.Join(stage, SteeringFile)))

	var site *Site
	var err error
	torch.RunLocked(func() {
		site, err = LoadCodebook(runDir, LoadOptions{Seqs: 6, Batch: 4, Neurons: true, Regexes: []string{"the", "a"},
			Fill: FillOptions{Contexts: 30}})
	})
	require.NoError(t, err)
	require.Equal(t, stage, site.Source)
	require.Equal(t, []string{"the", "a"}, site.Regexes)
	books := map[string]int{}
	steered := 0
	for _, f := range site.Features {
		books[f.Book]++
		require.Positive(t, f.Fires, f.Name())
		require.Equal(t, 6*32, f.Positions)
		require.NotEmpty(t, f.Contexts)
		require.LessOrEqual(t, len(f.Contexts), 30)
		require.Len(t, f.Promotes, 10)
		require.Len(t, f.Suppresses, 10)
		require.GreaterOrEqual(t, f.Promotes[0].Value, f.Suppresses[0].Value)
		require.Len(t, f.Regex, 2)
		require.False(t, math.IsNaN(float64(f.MaxAct)))
		for _, x := range f.Contexts {
			require.Equal(t, x.Act, x.Tokens[x.Center].Act)
			require.LessOrEqual(t, x.Act, f.MaxAct)
		}
		if f.Kind == KindCode {
			require.Less(t, f.ID, 16)
			// A cosine score a·c/‖c‖ is at most ‖a‖, about √d for a
			// LayerNorm'd chunk of d features (gain ≈ 1 after 3 steps).
			d := 8.0
			if strings.HasSuffix(f.Book, ".mlp") {
				d = 16
			}
			require.Less(t, float64(f.MaxAct), 1.5*math.Sqrt(d), f.Name())
		}
		if len(f.Steering) > 0 {
			steered++
			require.Equal(t, "blocks.0.attn_preproj[1]", f.Book)
			require.Equal(t, "cat", f.Steering[0].Topic)
		}
	}
	for _, b := range []string{"blocks.0.attn_preproj[0]", "blocks.0.attn_preproj[1]", "blocks.0.mlp",
		"blocks.1.attn_preproj[0]", "blocks.1.attn_preproj[1]", "blocks.1.mlp"} {
		require.Positive(t, books[b], b)
		require.LessOrEqual(t, books[b], 16, b)
	}
	require.Positive(t, books["blocks.0.mlp_mid"])
	require.LessOrEqual(t, books["blocks.1.mlp_mid"], 64)
	require.Equal(t, books["blocks.0.attn_preproj[1]"], steered, "every firing code of the steered codebook")

	// One site, the top 3 features per codebook, no neurons.
	torch.RunLocked(func() {
		site, err = LoadCodebook(runDir, LoadOptions{Seqs: 4, Sites: []string{"blocks.1.mlp"}, Top: 3})
	})
	require.NoError(t, err)
	require.Len(t, site.Features, 3)
	for i, f := range site.Features {
		require.Equal(t, "blocks.1.mlp", f.Book)
		if i > 0 {
			require.Less(t, site.Features[i-1].ID, f.ID)
		}
	}
	torch.RunLocked(func() { _, err = LoadCodebook(runDir, LoadOptions{Sites: []string{"blocks.7.mlp"}}) })
	require.ErrorContains(t, err, `site "blocks.7.mlp": the run has no codebook there`)

	// The site in a browser.
	torch.RunLocked(func() {
		site, err = LoadCodebook(runDir, LoadOptions{Seqs: 6, Neurons: true, Regexes: []string{"the"}})
	})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "atlas")
	st, err := Write(out, site, Options{})
	require.NoError(t, err)
	require.Less(t, st.Largest, int64(200_000), st.LargestFile)
	t.Logf("tiny run's atlas: %d features, %d files, %d bytes (largest %s, %d bytes)", st.Features, st.Files, st.Bytes, st.LargestFile, st.Largest)
	var mark map[string]any
	b, err := os.ReadFile(filepath.Join(out, Marker))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &mark))
	require.Equal(t, float64(len(site.Features)), mark["features"])

	br := newBrowser(t)
	dom := br.dom(filepath.Join(out, "index.html"), "")
	require.Len(t, rows(dom), len(site.Features))
	dom = br.dom(filepath.Join(out, "index.html"), "q=mlp_mid")
	got := rows(dom)
	require.NotEmpty(t, got)
	for _, r := range got {
		require.Contains(t, r, "mlp_mid neuron")
	}
	first := site.Features[0]
	page := filepath.Join(out, "f", first.Slug()+".html")
	dom = br.dom(page, "")
	require.Contains(t, dom, `<span class="h9 c"`, "the top context's centre is highlighted")
	require.Equal(t, min(len(first.Contexts), 20), strings.Count(dom, `<li class="ctx"`))
	br.screenshot(filepath.Join(out, "index.html"), "", "run-index.png", 1280, 800)
	br.screenshot(page, "", "run-feature.png", 1280, 1000)
}

// RunEnv names a codebook run directory TestAtlasOfRun builds the atlas of
// (the test skips without it).
const RunEnv = "HIDDENLAB_ATLAS_RUN"

// TestAtlasOfRun builds the atlas of the run $HIDDENLAB_ATLAS_RUN (run from
// the repository root: the recipe's data paths are relative), with the regex
// $HIDDENLAB_ATLAS_REGEX (default \bdogs?\b), loads it in headless chromium
// and saves screenshots of the index (sorted by that regex's precision) and
// of the page of the most precise code for it among the codes the steering
// experiment patched that fire at least 5 times (if it ran), else among the
// codes that fire at least 20 times:
// index.png and feature.png (copied into $HIDDENLAB_ATLAS_SCREENSHOTS when
// set). It regenerates the screenshots in results/atlas:
//
//	HIDDENLAB_ATLAS_RUN=<run dir> HIDDENLAB_ATLAS_SCREENSHOTS=$PWD/results/atlas \
//	  go test ./atlas -run TestAtlasOfRun -v
func TestAtlasOfRun(t *testing.T) {
	dir := os.Getenv(RunEnv)
	if dir == "" {
		t.Skipf("set %s=<codebook run dir> to build its atlas", RunEnv)
	}
	re := os.Getenv("HIDDENLAB_ATLAS_REGEX")
	if re == "" {
		re = `\bdogs?\b`
	}
	br := newBrowser(t) // before the model: fail early without chromium
	if wd, err := os.Getwd(); err == nil && filepath.Base(wd) == "atlas" {
		t.Chdir("..") // the recipe's data paths are relative to the repository root
	}
	var site *Site
	var err error
	torch.RunLocked(func() { site, err = LoadCodebook(dir, LoadOptions{Neurons: true, Regexes: []string{re}}) })
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "atlas")
	st, err := Write(out, site, Options{})
	require.NoError(t, err)
	require.Less(t, st.Largest, int64(200_000), st.LargestFile)
	t.Logf("atlas of %s: %d features, %d files, %d bytes (%.1f MB; largest %s, %d bytes)",
		site.Source, st.Features, st.Files, st.Bytes, float64(st.Bytes)/1e6, st.LargestFile, st.Largest)
	// The page shown: the most precise code for the regex among the codes
	// the steering experiment patched that fire at least 5 times, else among
	// all codes that fire at least 20 times.
	best := -1
	for _, steered := range []bool{true, false} {
		for i, f := range site.Features {
			if f.Kind == KindCode && (steered && len(f.Steering) > 0 && f.Fires >= 5 || !steered && f.Fires >= 20) &&
				(best < 0 || f.Regex[0].Precision > site.Features[best].Regex[0].Precision) {
				best = i
			}
		}
		if best >= 0 {
			break
		}
	}
	require.GreaterOrEqual(t, best, 0, "no code fires 20 times")
	f := site.Features[best]
	t.Logf("most precise code for %s: %s (precision %.3f, recall %.3f, %d fires)", re, f.Name(), f.Regex[0].Precision, f.Regex[0].Recall, f.Fires)
	index := filepath.Join(out, "index.html")
	dom := br.dom(index, "sort=p0&kind=code")
	got := rows(dom)
	require.NotEmpty(t, got)
	byName := map[string]Feature{}
	for _, g := range site.Features {
		byName[g.Name()] = g
	}
	top := byName[got[0]]
	require.Equal(t, KindCode, top.Kind)
	require.GreaterOrEqual(t, top.Regex[0].Precision, f.Regex[0].Precision, "sorted by the regex's exact precision")
	page := filepath.Join(out, "f", f.Slug()+".html")
	require.Contains(t, br.dom(page, ""), `<span class="h9 c"`)
	br.screenshot(index, "sort=p0&re="+url.QueryEscape(re)+"&kind=code", "index.png", 1400, 900)
	br.screenshot(page, "", "feature.png", 1400, 1100)
}

// TestCodeScores checks the scores forward records against the codebook's
// own choice: at every position of a sequence, the k codes the cache holds
// are the k of highest cosine score a·c/‖c‖ recomputed here, and forward's
// scores are theirs.
func TestCodeScores(t *testing.T) {
	runDir := trainTiny(t)
	torch.RunLocked(func() {
		r, err := codesearch.Open(runDir, torch.CPU)
		require.NoError(t, err)
		defer r.Close()
		c, err := r.BuildCache(codesearch.CacheOptions{Seqs: 3, Batch: 2})
		require.NoError(t, err)
		books, err := chooseBooks(c, nil)
		require.NoError(t, err)
		p, err := forward(r, c, books, []int{0, 1}, 2)
		require.NoError(t, err)
		require.Len(t, p.neurons[1], 3*c.Context*r.Model.Blocks[1].MLP.Proj.Weight.Shape()[1])

		m := r.Model
		m.SetRecord(true)
		defer m.SetRecord(false)
		x := make([]int64, c.Context)
		for i := range x {
			x[i] = int64(c.Tokens[c.Context+i]) // sequence 1
		}
		torch.NoGrad(func() { m.Forward(torch.FromSlice(x, []int{1, c.Context})) })
		for _, bi := range c.Books {
			site, err := nn.ParseSite(bi.Site)
			require.NoError(t, err)
			l := m.Layers[site]
			a := l.Normalize(l.Input()).Contiguous().Float32s()
			codes := l.Codes.Detach().Contiguous().Float32s()
			G, C, K, d := l.G, l.C, l.K, l.D/l.G
			for pos := 0; pos < c.Context; pos++ {
				for g := 0; g < G; g++ {
					pg := pos*G + g
					score := make([]float64, C)
					for code := range score {
						row := codes[(g*C+code)*d : (g*C+code+1)*d]
						var dot, norm float64
						for i, v := range row {
							dot += float64(v) * float64(a[pg*d+i])
							norm += float64(v) * float64(v)
						}
						score[code] = dot / math.Sqrt(norm)
					}
					at := ((c.Context+pos)*G + g) * K // sequence 1 in the cache
					kth := math.Inf(1)
					for k := 0; k < K; k++ {
						id := c.IDs[bi.Site][at+k]
						require.InDelta(t, score[id], float64(p.scores[bi.Site][at+k]), 1e-4, "%s pos %d group %d slot %d", bi.Site, pos, g, k)
						kth = min(kth, score[id])
					}
					above := 0
					for _, s := range score {
						if s > kth+1e-5 {
							above++
						}
					}
					require.Less(t, above, K, "%s pos %d group %d: a code outside the selected ones scores higher", bi.Site, pos, g)
				}
			}
		}
	})
}
