package codesearch

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
)

// testCache is a hand-made cache: two sequences of four tokens over a
// vocabulary of five words, a site with two groups of 4 codes (k = 2) and a
// vanilla site (k = 1).
//
//	seq 0: "the cat sat ."     seq 1: "a cat ran ."
//
// Group 0 fires code 3 exactly on " cat"; group 1 fires code 1 everywhere in
// sequence 0 (a topic code) and code 2 in sequence 1; the vanilla codebook
// fires code 0 on "." and code 1 elsewhere.
func testCache() *Cache {
	c := &Cache{
		Index: Index{Version: cacheVersion, Seqs: 2, Context: 4, Vocab: 6, File: CodesFile,
			Books: []BookInfo{{Site: "blocks.0.attn_preproj", Groups: 2, Codes: 4, K: 2}, {Site: "blocks.0.mlp", Groups: 1, Codes: 2, K: 1}}},
		Texts:  [][]byte{[]byte("the"), []byte(" cat"), []byte(" sat"), []byte(" ."), []byte("a"), []byte(" ran")},
		Tokens: []int32{0, 1, 2, 3, 4, 1, 5, 3},
		IDs:    map[string][]int32{},
	}
	// [seq, pos, G, K]
	attn := [][2][2]int32{
		{{0, 1}, {1, 0}}, {{3, 0}, {1, 2}}, {{0, 2}, {1, 3}}, {{1, 2}, {1, 0}},
		{{0, 1}, {2, 0}}, {{3, 1}, {2, 1}}, {{2, 0}, {2, 3}}, {{1, 0}, {0, 3}},
	}
	for _, p := range attn {
		for _, g := range p {
			c.IDs["blocks.0.attn_preproj"] = append(c.IDs["blocks.0.attn_preproj"], g[0], g[1])
		}
	}
	c.IDs["blocks.0.mlp"] = []int32{1, 1, 1, 0, 1, 1, 1, 0}
	return c
}

func TestBook(t *testing.T) {
	c := testCache()
	for _, tc := range []struct {
		name, want, err string
	}{
		{"blocks.0.attn_preproj[1]", "blocks.0.attn_preproj[1]", ""},
		{"blocks.0.mlp", "blocks.0.mlp", ""},
		{"blocks.0.mlp[0]", "blocks.0.mlp", ""},
		{"blocks.0.attn_preproj", "", "the site has 2 groups; name one as blocks.0.attn_preproj[0] … blocks.0.attn_preproj[1]"},
		{"blocks.0.attn_preproj[2]", "", "group 2 out of range"},
		{"blocks.0.attn_preproj[x]", "", "bad group"},
		{"blocks.3.mlp", "", "no such site in the cache (have blocks.0.attn_preproj, blocks.0.mlp)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.Book(tc.name)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, b.Name())
		})
	}
	var names []string
	for _, b := range c.AllBooks() {
		names = append(names, b.Name())
	}
	require.Equal(t, []string{"blocks.0.attn_preproj[0]", "blocks.0.attn_preproj[1]", "blocks.0.mlp"}, names)
}

func TestCode(t *testing.T) {
	c := testCache()
	b, _ := c.Book("blocks.0.attn_preproj[0]")
	r, err := c.Code(b, 3, 10, 1, 1)
	require.NoError(t, err)
	require.Equal(t, 2, r.Fires)
	require.Equal(t, 8, r.Positions)
	require.Equal(t, []TokenCount{{" cat", 2}}, r.Tokens)
	require.Equal(t, []Context{{Seq: 0, Pos: 1, Before: "the", Token: " cat", After: " sat"},
		{Seq: 1, Pos: 1, Before: "a", Token: " cat", After: " ran"}}, r.Contexts)
	_, err = c.Code(b, 4, 10, 1, 1)
	require.ErrorContains(t, err, "code 4 out of range: blocks.0.attn_preproj[0] has codes 0 … 3")
}

func TestSearch(t *testing.T) {
	c := testCache()
	for _, tc := range []struct {
		pattern string
		matched int
		want    []string // book:code precision/recall
	}{
		// " cat" at positions 1 and 5: code 3 of group 0 fires exactly there.
		{`cat`, 2, []string{"blocks.0.attn_preproj[0]:3 1.00/1.00"}},
		// "." ends both sequences; the vanilla code 0 fires exactly there.
		{`\.`, 2, []string{"blocks.0.mlp:0 1.00/1.00"}},
		{`dog`, 0, nil},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			r, err := c.Search(regexp.MustCompile(tc.pattern), SearchOptions{MinPrecision: 0.9}, nil)
			require.NoError(t, err)
			require.Equal(t, tc.matched, r.Matched)
			var got []string
			for _, h := range r.Hits {
				got = append(got, h.Book+":"+itoa(h.Code)+" "+ftoa(h.Precision)+"/"+ftoa(h.Recall))
			}
			require.Equal(t, tc.want, got)
		})
	}
	// Starts marks only the first token of a multi-token match.
	require.Equal(t, []bool{true, false, false, false, false, false, false, false}, c.Matches(regexp.MustCompile(`the cat`), true))
	require.Equal(t, []bool{true, true, false, false, false, false, false, false}, c.Matches(regexp.MustCompile(`the cat`), false))
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func TestTopics(t *testing.T) {
	c := testCache()
	topics := c.Topics(0.5, 1, 1)
	// A topic code is active on at least 3 of a sequence's 4 positions:
	// group 0 code 0 in both sequences and code 1 in sequence 1; group 1 code
	// 1 (all of sequence 0) and code 2 (3 of sequence 1); the vanilla code 1
	// in both.
	var got []string
	for _, tp := range topics {
		got = append(got, tp.Book+":"+itoa(tp.Code)+":"+itoa(tp.Seqs))
	}
	require.Equal(t, []string{"blocks.0.attn_preproj[0]:0:2", "blocks.0.mlp:1:2", "blocks.0.attn_preproj[0]:1:1",
		"blocks.0.attn_preproj[1]:1:1", "blocks.0.attn_preproj[1]:2:1"}, got, "most frequent first, then codebook order")
	require.Equal(t, []int{0}, topics[0].Examples)
	require.Equal(t, 1.0, topics[0].Share)
	require.Len(t, c.Topics(0.5, 2, 1), 2)

	// "sat" is in sequence 0 only: of its topic codes, only group 1's code 1
	// is a topic code of nothing else.
	codes, on, err := c.TopicMatch(regexp.MustCompile(`sat`), 0.5, 1, 0.9, 0)
	require.NoError(t, err)
	require.Equal(t, 1, on)
	var books []string
	for _, tc := range codes {
		books = append(books, tc.Book()+":"+itoa(tc.Code))
	}
	require.Equal(t, []string{"blocks.0.attn_preproj[1]:1"}, books)

	// The context of "cat": positions 1–3 of both sequences. Group 0's code 2
	// and group 1's code 3 fire only there (3 times), group 0's code 3 only on
	// " cat" and the vanilla code 0 only on "." (twice); group 1's codes 1 and
	// 2 fire once outside.
	ctx, n, err := c.ContextCodes(regexp.MustCompile(`cat`), 1, 0.7, 0)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	var got2 []string
	for _, tc := range ctx {
		got2 = append(got2, tc.Book()+":"+itoa(tc.Code)+" "+itoa(tc.Hits)+"/"+itoa(tc.Fires))
	}
	require.Equal(t, []string{"blocks.0.attn_preproj[0]:2 3/3", "blocks.0.attn_preproj[1]:3 3/3", "blocks.0.attn_preproj[0]:3 2/2",
		"blocks.0.mlp:0 2/2", "blocks.0.attn_preproj[1]:1 4/5", "blocks.0.attn_preproj[1]:2 3/4"}, got2)
}

func TestUsage(t *testing.T) {
	c := testCache()
	b, _ := c.Book("blocks.0.mlp")
	require.Equal(t, []int{2, 6}, c.Usage(b))
	u := c.UsageBySite()
	require.Equal(t, 8, u[0].Total)
	require.Equal(t, 8, u[0].Used)
	require.Equal(t, 2, u[1].Used)
	require.Zero(t, u[1].Unused())
	dir := t.TempDir()
	require.NoError(t, c.UsageFigure(filepath.Join(dir, "usage.png")))
	r, err := c.Search(regexp.MustCompile(`cat`), SearchOptions{}, nil)
	require.NoError(t, err)
	require.NoError(t, SearchFigure(filepath.Join(dir, "search.png"), []*SearchResult{r}))
	require.ErrorIs(t, SearchFigure(filepath.Join(dir, "none.png"), []*SearchResult{{Pattern: "x"}}), ErrNothingToPlot)
}

// TestSaveLoad: a saved cache loads back identical, and a file that does not
// match its index is refused.
func TestSaveLoad(t *testing.T) {
	c := testCache()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.RecipeFile), []byte("name: x\nmodel: {family: codebook}\n"), 0o644))
	require.NoError(t, c.Save(dir))
	got, err := LoadCache(dir)
	require.NoError(t, err)
	require.Equal(t, c.Tokens, got.Tokens)
	require.Equal(t, c.IDs, got.IDs)
	require.Equal(t, c.Texts, got.Texts)
	require.Equal(t, c.Index, got.Index)

	// An index that promises more sequences than the file holds.
	idx, err := os.ReadFile(filepath.Join(dir, CacheDir, IndexFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, CacheDir, IndexFile), []byte(strings.Replace(string(idx), `"seqs": 2`, `"seqs": 3`, 1)), 0o644))
	_, err = LoadCache(dir)
	require.ErrorContains(t, err, "tensor tokens has shape [2 4], want [3 4]")

	_, err = LoadCache(t.TempDir())
	require.ErrorContains(t, err, "not a run directory")
	empty := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(empty, rundir.RecipeFile), []byte("name: x\nmodel: {family: codebook}\n"), 0o644))
	_, err = LoadCache(empty)
	require.ErrorIs(t, err, ErrNoCache)
}

// stories is a small corpus for a model trained in the test.
func stories() string {
	var b strings.Builder
	for i := 0; i < 80; i++ {
		switch i % 3 {
		case 0:
			b.WriteString("the cat sat on the mat in the sun.\n")
		case 1:
			b.WriteString("a dog ran to the park with a ball.\n")
		default:
			b.WriteString("the bird sang in the tall green tree.\n")
		}
	}
	return b.String()
}

// TestRun trains a tiny codebook model for a few steps, as a staged run
// (pretrain without codebooks, then insert them), and runs the whole
// toolkit on its directory: open, cache, save, load, neurons, search, code
// contexts and topics.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "stories.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(stories()), 0o644))
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
	baseline := torch.LiveTensors()
	runDir, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(dir, "run")}})
	require.NoError(t, err)
	require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the staged run")

	_, err = Open(filepath.Join(runDir, "0-pre"), torch.CPU)
	require.ErrorContains(t, err, "model.family is gpt (want a codebook run)")

	torch.RunLocked(func() {
		r, err := Open(runDir, torch.CPU) // the staged run's codebook stage
		require.NoError(t, err)
		defer r.Close()
		require.Equal(t, filepath.Join(runDir, "1-cb"), r.Dir)
		require.Equal(t, 3, r.Step)
		for _, src := range []string{SourceValid, SourceTrain} {
			c, err := r.BuildCache(CacheOptions{Source: src, Seqs: 6, Batch: 4})
			require.NoError(t, err)
			require.Equal(t, 6, c.Seqs)
			require.Len(t, c.IDs["blocks.1.attn_preproj"], 6*32*2*2)
			require.Len(t, c.IDs["blocks.0.mlp"], 6*32*1*2)
			require.NoError(t, c.Save(r.Dir))
		}
		_, err = r.BuildCache(CacheOptions{Source: "test"})
		require.ErrorContains(t, err, `cache source "test": want valid or train`)

		c, err := LoadCache(runDir)
		require.NoError(t, err)
		require.Equal(t, SourceTrain, c.Source)
		// The cached ids are the model's: recomputed on the first sequence.
		x := make([]int64, c.Context)
		for i := range x {
			x[i] = int64(c.Tokens[i])
		}
		b, _ := c.Book("blocks.0.attn_preproj[1]")
		require.True(t, strings.HasPrefix(c.Text(0, 0, c.Context), r.Data.Decode(x[:5])))

		nb, err := r.Neurons(c, 4)
		require.NoError(t, err)
		require.Len(t, nb.Names, 2*2*16)
		require.Equal(t, "blocks.1.mlp:15", nb.Names[len(nb.Names)-1])
		res, err := c.Search(regexp.MustCompile(`the`), SearchOptions{MinPrecision: 0.01, MinRecall: 0.001}, nb)
		require.NoError(t, err)
		require.Positive(t, res.Matched)
		require.NotEmpty(t, res.Hits)
		for _, h := range res.Hits {
			require.NotEmpty(t, h.Neuron)
			require.InDelta(t, 0.5, h.NeuronPrecision, 0.5)
		}
		rep, err := c.Code(b, int(c.Codes(b)[0][0]), 3, 4, 2)
		require.NoError(t, err)
		require.Positive(t, rep.Fires)
		require.NotEmpty(t, c.Topics(0.5, 1, 1))
	})
}
