package atlas

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/interp"
)

// testCorpus is three sequences of six word tokens:
//
//	"the cat sat on the mat" / "a dog ran to the park" / "the cat and the dog ."
func testCorpus() *Corpus {
	words := []string{"the", " cat", " sat", " on", " the", " mat", "a", " dog", " ran", " to", " the", " park",
		"the", " cat", " and", " the", " dog", " ."}
	c := &Corpus{Seqs: 3, Context: 6}
	ids := map[string]int32{}
	for _, w := range words {
		id, ok := ids[w]
		if !ok {
			id = int32(len(c.Texts))
			ids[w] = id
			c.Texts = append(c.Texts, []byte(w))
		}
		c.Tokens = append(c.Tokens, id)
	}
	return c
}

// positionsOf lists the flat positions whose token text is w.
func positionsOf(c *Corpus, w string) []int {
	var out []int
	for i := range c.Tokens {
		if c.Text(i) == w {
			out = append(out, i)
		}
	}
	return out
}

// testSite is a site of synthetic features over testCorpus: a code on
// " cat", a code on " dog", a neuron on the ends of sequences, an SAE
// latent on " the" and a code that never fires; the regex is "cat".
func testSite(t *testing.T) *Site {
	c := testCorpus()
	matched := matchCorpus(c, regexp.MustCompile(`cat`))
	o := FillOptions{Contexts: 25, Before: 3, After: 1, Regexes: []string{"cat"}, Matched: [][]bool{matched}}
	feature := func(kind Kind, book string, id int, acts []Activation) Feature {
		f := Feature{Kind: kind, Book: book, ID: id, ActLabel: "activation"}
		c.Fill(&f, acts, o)
		f.Promotes, f.Suppresses = TopLogits([]float32{0.5, 2, -1, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, -3}, c.Texts, 3)
		return f
	}
	on := func(w string, base float32) []Activation {
		var acts []Activation
		for k, p := range positionsOf(c, w) {
			acts = append(acts, Activation{Pos: p, Act: base + float32(k)})
		}
		return acts
	}
	cat := feature(KindCode, "blocks.0.attn_preproj[1]", 7, on(" cat", 1))
	cat.Steering = []Steering{{Topic: "cat", Regex: `\bcats?\b`, Precision: 0.8, Baseline: 0.05, OneCode: 0.3, OneCodeN: 4, AllCodes: 0.9, AllCodesN: 2}}
	// Many firings of the dog code, to page its contexts.
	var dog []Activation
	for i := range c.Tokens {
		dog = append(dog, Activation{Pos: i, Act: 0.01 * float32(i)})
	}
	for _, p := range positionsOf(c, " dog") {
		dog[p].Act = 5
	}
	return &Site{
		Title: "test atlas", Source: "synthetic", Regexes: []string{"cat"},
		Notes: []string{"Synthetic features."},
		Features: []Feature{
			cat,
			feature(KindCode, "blocks.0.mlp", 3, dog),
			feature(KindNeuron, "blocks.0.mlp_mid", 11, []Activation{{5, 2}, {11, 1.5}, {17, 3}}),
			feature(KindSAE, "sae.blocks.0.mlp", 2, on(" the", 0.5)),
			feature(KindCode, "blocks.0.mlp", 4, nil),
		},
	}
}

// matchCorpus marks the positions re covers, sequence by sequence.
func matchCorpus(c *Corpus, re *regexp.Regexp) []bool {
	var out []bool
	for s := 0; s < c.Seqs; s++ {
		out = append(out, interp.MatchPositions(c.SeqTexts(s), re)...)
	}
	return out
}

func TestFill(t *testing.T) {
	c := testCorpus()
	matched := matchCorpus(c, regexp.MustCompile(`cat|dog`))
	for _, tc := range []struct {
		name        string
		acts        []Activation
		fires       int
		maxAct      float32
		centres     []string // the centre token of each context, best first
		windows     []string // the first contexts' texts
		tokens      []TokenCount
		other       int
		precision   float64
		recall      float64
		histCount   int
		centreIndex int
	}{
		{name: "none", fires: 0, histCount: 0},
		{name: "cat and dog", acts: []Activation{{16, 2}, {1, 3}, {13, 3}, {7, 1}},
			fires: 4, maxAct: 3, centres: []string{" cat", " cat", " dog", " dog"},
			windows: []string{"the cat sat on", "the cat and the"},
			tokens:  []TokenCount{{" cat", 2}, {" dog", 2}}, precision: 1, recall: 1, histCount: 4, centreIndex: 1},
		{name: "the", acts: []Activation{{0, 1}, {4, 1}, {1, 0.5}},
			fires: 3, maxAct: 1, centres: []string{"the", " the", " cat"},
			tokens: []TokenCount{{"the", 1}, {" cat", 1}}, other: 1, precision: 1.0 / 3, recall: 0.25, histCount: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Feature{Kind: KindCode, Book: "b", ID: 1}
			c.Fill(&f, tc.acts, FillOptions{Before: 1, After: 2, TopTokens: 2, Regexes: []string{"cat|dog"}, Matched: [][]bool{matched}})
			require.Equal(t, tc.fires, f.Fires)
			require.Equal(t, 18, f.Positions)
			require.Equal(t, tc.maxAct, f.MaxAct)
			var centres []string
			for _, x := range f.Contexts {
				centres = append(centres, x.Tokens[x.Center].Text)
				require.Equal(t, x.Act, x.Tokens[x.Center].Act)
			}
			require.Equal(t, tc.centres, centres)
			for i, w := range tc.windows {
				var b strings.Builder
				for _, tk := range f.Contexts[i].Tokens {
					b.WriteString(tk.Text)
				}
				require.Equal(t, w, b.String())
				require.Equal(t, tc.centreIndex, f.Contexts[i].Center)
			}
			require.Equal(t, tc.tokens, f.TopTokens)
			require.Equal(t, tc.other, f.OtherTokens)
			require.Len(t, f.Regex, 1)
			require.InDelta(t, tc.precision, f.Regex[0].Precision, 1e-12)
			require.InDelta(t, tc.recall, f.Regex[0].Recall, 1e-12)
			n := 0
			for _, k := range f.Histogram.Counts {
				n += k
			}
			require.Equal(t, tc.histCount, n)
		})
	}
	// The window shows the feature's activation on the other tokens too.
	f := Feature{}
	c.Fill(&f, []Activation{{1, 2}, {2, 1}}, FillOptions{Before: 1, After: 1})
	require.Equal(t, []Token{{"the", 0}, {" cat", 2}, {" sat", 1}}, f.Contexts[0].Tokens)
}

func TestHistogramAndLogits(t *testing.T) {
	h := NewHistogram([]Activation{{0, 0}, {1, 1}, {2, 1}, {3, 0.5}}, 4)
	require.Equal(t, Histogram{Lo: 0, Hi: 1, Counts: []int{1, 0, 1, 2}}, h)
	require.Equal(t, Histogram{Lo: 1.5, Hi: 2.5, Counts: []int{2}}, NewHistogram([]Activation{{0, 2}, {1, 2}}, 4))
	pro, sup := TopLogits([]float32{0.5, 2, -1, 0.1}, [][]byte{[]byte("a"), []byte("b"), []byte("c"), {0xff}}, 2)
	require.Equal(t, []Logit{{"b", 2}, {"a", 0.5}}, pro)
	require.Equal(t, []Logit{{"c", -1}, {"\uFFFD", 0.1}}, sup)
}

func TestSlugLevelFormat(t *testing.T) {
	for _, tc := range []struct {
		f    Feature
		want string
	}{
		{Feature{Kind: KindCode, Book: "blocks.0.attn_preproj[3]", ID: 17}, "code-blocks.0.attn_preproj.3-17"},
		{Feature{Kind: KindNeuron, Book: "blocks.1.mlp_mid", ID: 0}, "neuron-blocks.1.mlp_mid-0"},
		{Feature{Kind: KindSAE, Book: "sae/x y", ID: 2}, "sae-sae_x_y-2"},
	} {
		require.Equal(t, tc.want, tc.f.Slug())
	}
	for _, tc := range []struct {
		act, max float32
		want     int
	}{{0, 1, 0}, {-1, 1, 0}, {1, 1, 9}, {0.5, 1, 5}, {0.01, 1, 1}, {2, 1, 9}, {1, 0, 0}} {
		require.Equal(t, tc.want, level(tc.act, tc.max), "%v/%v", tc.act, tc.max)
	}
	for _, tc := range []struct {
		x    float64
		want string
	}{{0, "0"}, {1.23456, "1.23"}, {12.345, "12.3"}, {0.012345, "0.0123"}, {12345, "1.23e+04"}, {-0.5, "-0.500"}} {
		require.Equal(t, tc.want, formatNum(tc.x))
	}
}

// TestWrite writes the synthetic site and checks its files: every feature
// has a page (paged contexts), the index data lists every feature, no file
// is large, and a directory that is not an atlas is not overwritten.
func TestWrite(t *testing.T) {
	s := testSite(t)
	dir := t.TempDir()
	st, err := Write(dir, s, Options{PerPage: 10})
	require.NoError(t, err)
	require.Equal(t, 5, st.Features)
	for _, p := range []string{"index.html", "assets/atlas.css", "assets/atlas.js", "data/index-0.js", Marker,
		"f/code-blocks.0.attn_preproj.1-7.html", "f/code-blocks.0.mlp-3.html", "f/code-blocks.0.mlp-3.2.html",
		"f/neuron-blocks.0.mlp_mid-11.html", "f/sae-sae.blocks.0.mlp-2.html", "f/code-blocks.0.mlp-4.html"} {
		require.FileExists(t, filepath.Join(dir, p))
	}
	require.NoFileExists(t, filepath.Join(dir, "f/code-blocks.0.mlp-3.3.html"), "18 contexts (25 kept, 18 positions) make 2 pages")
	require.Less(t, st.Largest, int64(200_000))
	data, err := os.ReadFile(filepath.Join(dir, "data/index-0.js"))
	require.NoError(t, err)
	js := strings.TrimSuffix(strings.TrimPrefix(string(data), "ATLAS.add("), ");\n")
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &rows))
	require.Len(t, rows, 5)
	require.Equal(t, "f/code-blocks.0.attn_preproj.1-7.html", rows[0]["u"])
	require.Equal(t, []any{1.0}, rows[0]["p"], "the cat code's precision for cat")

	page, err := os.ReadFile(filepath.Join(dir, "f/code-blocks.0.attn_preproj.1-7.html"))
	require.NoError(t, err)
	for _, want := range []string{`<span class="h9 c" title="2.00"> cat</span>`, `<td title="\bcats?\b">cat</td>`,
		`<svg class="hist"`, `href="code-blocks.0.mlp-3.html"`, `<td class="num">30.00% (4)</td>`} {
		require.Contains(t, string(page), want)
	}

	// Small shards: the index data is split.
	dir2 := t.TempDir()
	st2, err := Write(dir2, s, Options{ShardBytes: 300})
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir2, "data/index-2.js"))
	require.Greater(t, st2.Files, st.Files-3)

	// Rewriting an atlas replaces it; a directory that is not one is refused.
	s.Features = s.Features[:1]
	_, err = Write(dir, s, Options{})
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(dir, "f/code-blocks.0.mlp-3.html"))
	other := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644))
	_, err = Write(other, s, Options{})
	require.ErrorContains(t, err, "not overwriting it")
}

// TestServe serves a written site over HTTP and stops when the context ends.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	_, err := Write(dir, testSite(t), Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", dir, func(a string) { addrs <- a }) }()
	addr := <-addrs
	resp, err := http.Get("http://" + addr + "/index.html")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(b), "<title>test atlas · feature atlas</title>")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
