package tokenize

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The golden files of testdata/hf come from Hugging Face's own tokenizers
// library (the Rust crate through its Node bindings) run by
// scripts/oracles/tokenize_goldens.mjs; `make oracles` regenerates them.

const hfTestdata = "testdata/hf"

var updateHF = flag.Bool("update-hf", false, "rewrite testdata/hf/hlbpe.tokenizer.json.gz from the BPE trained on TinyStories")

// hfNames are the golden tokenizers: GPT-2, its Qwen2-, Llama-3-style and
// option-laden variants (variants.json), and hiddenlab's own BPE written by
// SaveHF.
var hfNames = []string{"gpt2", "qwen2", "llama3", "gpt2x", "hlbpe"}

// readGz returns the bytes of path, gunzipped if its name ends in .gz.
func readGz(t testing.TB, path string) []byte {
	t.Helper()
	data, err := readGzErr(path)
	require.NoError(t, err)
	return data
}

func readGzErr(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(path, ".gz") {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// readJSONL decodes each line of path (gunzipped if .gz) into a new T.
func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(readGz(t, path)))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v T
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "%s: %.100s", path, sc.Text())
		out = append(out, v)
	}
	require.NoError(t, sc.Err())
	return out
}

// applyVariant returns base with the variant's top-level fields replaced and
// its "model" fields set, as the oracle script builds the variants.
func applyVariant(base []byte, variant map[string]json.RawMessage) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(base, &top); err != nil {
		return nil, err
	}
	for k, v := range variant {
		if k != "model" {
			top[k] = v
			continue
		}
		var model, set map[string]json.RawMessage
		if err := json.Unmarshal(top["model"], &model); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(v, &set); err != nil {
			return nil, err
		}
		for mk, mv := range set {
			model[mk] = mv
		}
		b, err := json.Marshal(model)
		if err != nil {
			return nil, err
		}
		top["model"] = b
	}
	return json.Marshal(top)
}

// hfGoldenFiles writes the tokenizer.json of each golden tokenizer into a
// fresh folder and returns their paths by name.
var hfGoldenFiles = sync.OnceValues(func() (map[string]string, error) {
	dir, err := os.MkdirTemp("", "hiddenlab-hf")
	if err != nil {
		return nil, err
	}
	base, err := readGzErr(filepath.Join(hfTestdata, "gpt2.tokenizer.json.gz"))
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(hfTestdata, "variants.json"))
	if err != nil {
		return nil, err
	}
	var variants map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &variants); err != nil {
		return nil, err
	}
	paths := map[string]string{
		"gpt2":  filepath.Join(hfTestdata, "gpt2.tokenizer.json.gz"),
		"hlbpe": filepath.Join(hfTestdata, "hlbpe.tokenizer.json.gz"),
	}
	for name, v := range variants {
		p := filepath.Join(dir, name, HFFileName)
		file, err := applyVariant(base, v)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, file, 0o644); err != nil {
			return nil, err
		}
		paths[name] = p
	}
	return paths, nil
})

// hfGoldenLoad loads the golden tokenizers with Load.
var hfGoldenLoad = sync.OnceValues(func() (map[string]*HF, error) {
	paths, err := hfGoldenFiles()
	if err != nil {
		return nil, err
	}
	toks := map[string]*HF{}
	for name, p := range paths {
		tok, err := Load(p)
		if err != nil {
			return nil, err
		}
		toks[name] = tok.(*HF)
	}
	return toks, nil
})

// hfGolden returns the golden tokenizers by name.
func hfGolden(t testing.TB) map[string]*HF {
	t.Helper()
	toks, err := hfGoldenLoad()
	require.NoError(t, err)
	return toks
}

type hfInput struct {
	Corpus string `json:"corpus"`
	Text   string `json:"text"`
}

// hfInputs returns the test texts and, per line, each tokenizer's golden ids
// and the decoding HF gave where it is not the (normalized) text. It reads
// the files once; callers must not change what it returns.
func hfInputs(t testing.TB) ([]hfInput, []map[string][]int32, []map[string]string) {
	t.Helper()
	hfInputsOnce.Do(func() {
		hfInputsCache.inputs, hfInputsCache.ids, hfInputsCache.decoded = readHFInputs(t)
	})
	c := &hfInputsCache
	require.NotEmpty(t, c.inputs, "reading the golden files failed in an earlier test")
	return c.inputs, c.ids, c.decoded
}

var (
	hfInputsOnce  sync.Once
	hfInputsCache struct {
		inputs  []hfInput
		ids     []map[string][]int32
		decoded []map[string]string
	}
)

func readHFInputs(t testing.TB) ([]hfInput, []map[string][]int32, []map[string]string) {
	inputs := readJSONL[hfInput](t, filepath.Join(hfTestdata, "inputs.jsonl.gz"))
	raw := readJSONL[map[string]json.RawMessage](t, filepath.Join(hfTestdata, "golden.jsonl.gz"))
	require.Len(t, raw, len(inputs))
	ids := make([]map[string][]int32, len(raw))
	decoded := make([]map[string]string, len(raw))
	for i, g := range raw {
		ids[i], decoded[i] = map[string][]int32{}, map[string]string{}
		for k, v := range g {
			if name, ok := strings.CutSuffix(k, "_decoded"); ok {
				var s string
				require.NoError(t, json.Unmarshal(v, &s))
				decoded[i][name] = s
			}
		}
		for _, name := range hfNames {
			v, ok := g[name]
			if !ok {
				require.Equal(t, "hlbpe", name, "golden line %d has no %s", i, name)
				continue // hlbpe has a sample of the lines only
			}
			var same string
			if json.Unmarshal(v, &same) == nil {
				ids[i][name] = ids[i][same] // the same ids as an earlier name's
				require.NotNil(t, ids[i][name], "golden line %d: %s refers to %s", i, name, same)
				continue
			}
			var x []int32
			require.NoError(t, json.Unmarshal(v, &x), "golden line %d %s", i, name)
			ids[i][name] = x
		}
	}
	return inputs, ids, decoded
}

// expectedDecode is the text HF's decode gives back for text: normalized,
// and with a space in front of each piece between added tokens that does
// not start with one when the ByteLevel pre-tokenizer adds a prefix space.
func expectedDecode(tok *HF, text string) string {
	for _, f := range tok.normalizers {
		text = f.String(text)
	}
	if len(tok.steps) == 0 || !tok.steps[len(tok.steps)-1].addPrefixSpace {
		return text
	}
	contents := make([]string, len(tok.added))
	for i, a := range tok.added {
		contents[i] = a.Content
	}
	slices.SortFunc(contents, func(a, b string) int { return len(b) - len(a) })
	var out, piece strings.Builder
	flush := func() {
		if piece.Len() > 0 && !strings.HasPrefix(piece.String(), " ") {
			out.WriteByte(' ')
		}
		out.WriteString(piece.String())
		piece.Reset()
	}
	for i := 0; i < len(text); {
		hit := ""
		for _, c := range contents {
			if strings.HasPrefix(text[i:], c) {
				hit = c
				break
			}
		}
		if hit != "" {
			flush()
			out.WriteString(hit)
			i += len(hit)
		} else {
			piece.WriteByte(text[i])
			i++
		}
	}
	flush()
	return out.String()
}

func TestHFGolden(t *testing.T) {
	inputs, golden, decoded := hfInputs(t)
	toks := hfGolden(t)
	perCorpus := map[string]int{}
	for _, in := range inputs {
		perCorpus[in.Corpus]++
	}
	for _, name := range hfNames {
		t.Run(name, func(t *testing.T) {
			tok := toks[name]
			var mismatches, nids int
			checked := map[string]int{}
			wantPerCorpus := map[string]int{}
			for i, in := range inputs {
				want, ok := golden[i][name]
				if !ok {
					continue
				}
				got := tok.Encode(in.Text)
				nids += len(want)
				if !slices.Equal(want, got) {
					mismatches++
					if mismatches <= 5 {
						t.Errorf("%s line %d (%s) %q:\n got %v\nwant %v", name, i, in.Corpus, in.Text, got, want)
					}
					continue
				}
				wantText, ok := decoded[i][name]
				if !ok {
					wantText = expectedDecode(tok, in.Text)
				}
				if got := tok.Decode(want); got != wantText {
					mismatches++
					t.Errorf("%s line %d: Decode gives %q, HF %q", name, i, got, wantText)
					continue
				}
				checked[in.Corpus]++
			}
			require.Zero(t, mismatches, "%s: %d lines differ from Hugging Face", name, mismatches)
			for i, in := range inputs {
				if _, ok := golden[i][name]; ok {
					wantPerCorpus[in.Corpus]++
				}
			}
			require.Equal(t, wantPerCorpus, checked)
			if name != "hlbpe" {
				require.Equal(t, perCorpus, checked)
			}
			total := 0
			for _, n := range checked {
				total += n
			}
			t.Logf("%s: %d lines (%d ids) equal Hugging Face's encoding and decode back: %v", name, total, nids, checked)
		})
	}
	// At least 10,000 lines of real text, and the adversarial strings.
	require.GreaterOrEqual(t, perCorpus["tinystories"]+perCorpus["wikitext2"]+perCorpus["gsm8k"], 10000)
	for _, c := range []string{"tinystories", "wikitext2", "gsm8k", "adversarial"} {
		require.Positive(t, perCorpus[c], c)
	}
}

// TestHFPretokenizeGolden checks the hand-written scanners piece by piece
// against Hugging Face's pre-tokenizers (Oniguruma's regexes).
func TestHFPretokenizeGolden(t *testing.T) {
	inputs := readJSONL[hfInput](t, filepath.Join(hfTestdata, "inputs.jsonl.gz"))
	records := readJSONL[map[string]json.RawMessage](t, filepath.Join(hfTestdata, "pretokenize.jsonl.gz"))
	toks := hfGolden(t)
	n := 0
	for _, r := range records {
		var line int
		require.NoError(t, json.Unmarshal(r["line"], &line))
		text := inputs[line].Text
		for _, name := range []string{"gpt2", "qwen2", "llama3", "gpt2x"} {
			var want []string
			require.NoError(t, json.Unmarshal(r[name], &want))
			var got []string
			toks[name].pretokenize(0, text, func(w string) { got = append(got, byteLevel(w)) })
			if len(want) == 0 {
				want = nil
			}
			require.Equal(t, want, got, "%s line %d %q", name, line, text)
			n++
		}
	}
	t.Logf("%d pre-tokenizations of %d lines equal Hugging Face's", n, len(records))
}

func TestHFWithSpecialTokensGolden(t *testing.T) {
	inputs := readJSONL[hfInput](t, filepath.Join(hfTestdata, "inputs.jsonl.gz"))
	records := readJSONL[struct {
		Line int     `json:"line"`
		IDs  []int32 `json:"ids"`
	}](t, filepath.Join(hfTestdata, "special.jsonl"))
	require.NotEmpty(t, records)
	tok := hfGolden(t)["llama3"]
	for _, r := range records {
		require.Equal(t, r.IDs, tok.WithSpecialTokens(tok.Encode(inputs[r.Line].Text)), "line %d", r.Line)
	}
	gpt2 := hfGolden(t)["gpt2"]
	require.Equal(t, []int32{15496}, gpt2.WithSpecialTokens([]int32{15496}), "GPT-2's ByteLevel post-processor adds nothing")
}

// TestHFBPEFixture checks that SaveHF writes the BPE trained on TinyStories
// as testdata/hf/hlbpe.tokenizer.json.gz has it (go test -run
// TestHFBPEFixture -args -update-hf rewrites it; then run make oracles), that
// Hugging Face's encoding with that file (in golden.jsonl.gz) is the BPE's,
// and that Load reads it back to the same encoder.
func TestHFBPEFixture(t *testing.T) {
	bpe, _ := storiesBPE()
	dir := t.TempDir()
	path := filepath.Join(dir, HFFileName)
	require.NoError(t, SaveHF(path, bpe))
	fixture := filepath.Join(hfTestdata, "hlbpe.tokenizer.json.gz")
	if *updateHF {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(readFile(t, path))
		require.NoError(t, zw.Close())
		require.NoError(t, os.WriteFile(fixture, b.Bytes(), 0o644))
		t.Skipf("rewrote %s; make oracles regenerates the goldens from it", fixture)
	}
	require.Equal(t, string(readGz(t, fixture)), string(readFile(t, path)), "SaveHF no longer writes %s; rewrite it with -update-hf and run make oracles", fixture)

	loaded, err := Load(path)
	require.NoError(t, err)
	inputs, golden, _ := hfInputs(t)
	n := 0
	for i, in := range inputs {
		want, ok := golden[i]["hlbpe"]
		if !ok {
			continue
		}
		require.Equal(t, want, bpe.Encode(in.Text), "line %d %q: hiddenlab's BPE and Hugging Face with its SaveHF file differ", i, in.Text)
		require.Equal(t, want, loaded.Encode(in.Text), "line %d", i)
		n++
	}
	require.Greater(t, n, 1000)
	for _, tc := range roundTripCases {
		if utf8.ValidString(tc.text) {
			require.Equal(t, bpe.Encode(tc.text), loaded.Encode(tc.text), tc.name)
		}
		require.Equal(t, tc.text, loaded.Decode(loaded.Encode(tc.text)), tc.name)
	}
	require.Equal(t, bpe.VocabSize(), loaded.VocabSize())
	require.Equal(t, bpe.EOT(), loaded.EOT())
	t.Logf("hiddenlab's 4096-id BPE through SaveHF: %d lines encode as Hugging Face does", n)
}
