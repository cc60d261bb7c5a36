package tokenize

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

func TestByteLevelTable(t *testing.T) {
	seen := map[rune]bool{}
	for b := range 256 {
		r := byteRune[b]
		require.False(t, seen[r], "byte %d", b)
		seen[r] = true
		require.True(t, utf8.ValidRune(r) && r < 0x144)
	}
	require.Equal(t, 'Ġ', byteRune[' '])
	require.Equal(t, 'Ċ', byteRune['\n'])
	require.Equal(t, 'ĉ', byteRune['\t'])
	require.Equal(t, 'Ā', byteRune[0])
	require.Equal(t, 'Ń', byteRune[0xAD]) // the last of the 68 remapped bytes
	require.Equal(t, 'a', byteRune['a'])
	require.Equal(t, 'é', byteRune[0xE9])
	all := allBytes()
	back, ok := fromByteLevel(byteLevel(all))
	require.True(t, ok)
	require.Equal(t, all, back)
	_, ok = fromByteLevel("a b") // a real space is not byte-level
	require.False(t, ok)
	require.Equal(t, "  ", decodeToken("  "))
	require.Equal(t, " the", decodeToken("Ġthe"))
}

// TestCl100kScanner pins pieces that Hugging Face's Split pre-tokenizer
// gives with Llama-3's and Qwen2's regexes (asked of the library itself).
func TestCl100kScanner(t *testing.T) {
	tests := []struct {
		text          string
		llama3, qwen2 []string
		gpt2ByteLevel []string // GPT-2's pattern, for contrast
	}{
		{"Hello world", []string{"Hello", " world"}, nil, []string{"Hello", " world"}},
		{"it's IT'S", []string{"it", "'s", " IT", "'S"}, nil, []string{"it", "'s", " IT", "'", "S"}},
		{"'ſtop", []string{"'ſ", "top"}, nil, []string{"'", "ſtop"}},
		{"x'Ktop", []string{"x", "'Ktop"}, nil, nil},
		{"12345 1", []string{"123", "45", " ", "1"}, []string{"1", "2", "3", "4", "5", " ", "1"}, []string{"12345", " 1"}},
		{"a\n\nb", []string{"a", "\n\n", "b"}, nil, []string{"a", "\n", "\n", "b"}},
		{"a  \n  b", []string{"a", "  \n", " ", " b"}, nil, []string{"a", "  \n ", " b"}},
		{"x   ", []string{"x", "   "}, nil, []string{"x", "   "}},
		{"\tword .com", []string{"\tword", " .", "com"}, nil, []string{"\t", "word", " .", "com"}},
		{"end.\r\nNext", []string{"end", ".\r\n", "Next"}, nil, []string{"end", ".", "\r", "\n", "Next"}},
		{"$100.00!!\n", []string{"$", "100", ".", "00", "!!\n"}, []string{"$", "1", "0", "0", ".", "0", "0", "!!\n"}, nil},
		{"日本語 テキスト", []string{"日本語", " テキスト"}, nil, nil},
		{"e\u0301t\u0301", []string{"e", "\u0301t", "\u0301"}, nil, nil},
		{"a\u0085b", []string{"a", "\u0085b"}, nil, []string{"a", "\u0085", "b"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}, nil, []string{"\xff\xfe", "ab"}},
	}
	pieces := func(s string, scan scanner) []string {
		var out []string
		for len(s) > 0 {
			n := scan(s)
			out, s = append(out, s[:n]), s[n:]
		}
		return out
	}
	for _, tc := range tests {
		require.Equal(t, tc.llama3, pieces(tc.text, scanners[llama3Regex]), "llama3 %q", tc.text)
		if tc.qwen2 == nil {
			tc.qwen2 = tc.llama3
		}
		require.Equal(t, tc.qwen2, pieces(tc.text, scanners[qwen2Regex]), "qwen2 %q", tc.text)
		if tc.gpt2ByteLevel != nil {
			require.Equal(t, tc.gpt2ByteLevel, pieces(tc.text, scanners[gpt2Regex]), "gpt2 %q", tc.text)
		}
	}
}

func TestTokenTrieLeftmostLongest(t *testing.T) {
	tr := newTokenTrie()
	for i, s := range []string{"<|a|>", "<|a", "ab", "b"} {
		tr.add(s, i)
	}
	tests := []struct {
		s               string
		start, end, idx int
	}{
		{"x<|a|>y", 1, 6, 0}, // longest at the leftmost start
		{"x<|ay", 1, 4, 1},
		{"zab", 1, 3, 2}, // "ab" starts before "b"
		{"zzz", 3, 3, -1},
	}
	for _, tc := range tests {
		start, end, idx := tr.find(tc.s, 0)
		require.Equal(t, []int{tc.start, tc.end, tc.idx}, []int{start, end, idx}, tc.s)
	}
}

func TestHFRoundTripInvalidUTF8(t *testing.T) {
	toks := hfGolden(t)
	for _, name := range []string{"gpt2", "llama3", "qwen2", "hlbpe"} {
		tok := toks[name]
		for _, tc := range roundTripCases {
			ids := tok.Encode(tc.text)
			for _, id := range ids {
				require.True(t, id >= 0 && int(id) < tok.VocabSize())
			}
			want := tc.text
			if name == "qwen2" && utf8.ValidString(want) {
				want = norm.NFC.String(want)
			}
			require.Equal(t, want, tok.Decode(ids), "%s %s", name, tc.name)
			eot, ok := tok.TokenID(EndOfText)
			require.True(t, ok)
			require.Equal(t, strings.Count(tc.text, EndOfText), count(ids, eot), "%s %s", name, tc.name)
		}
	}
	gpt2 := toks["gpt2"]
	require.Equal(t, "x\uFFFD\uFFFD", gpt2.Decode([]int32{87, 50257, -1}))
	require.Equal(t, int32(50256), gpt2.EOT())
	require.Equal(t, 50257, gpt2.VocabSize())
	require.Equal(t, int32(50256), toks["llama3"].EOT(), "<|endoftext|> comes first")
	require.Equal(t, 50259, toks["llama3"].VocabSize())
	id, ok := gpt2.TokenID("Ġthe")
	require.True(t, ok)
	require.Equal(t, int32(262), id)
	tok, ok := gpt2.Token(262)
	require.True(t, ok)
	require.Equal(t, "Ġthe", tok)
	require.Equal(t, []HFAddedToken{{ID: 50256, Content: EndOfText, Normalized: true, Special: true}}, gpt2.AddedTokens())
}

func TestHFConcurrentEncode(t *testing.T) {
	inputs, golden, _ := hfInputs(t)
	tok, err := LoadHF(filepath.Join(hfTestdata, "gpt2.tokenizer.json.gz")) // fresh cache
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(inputs); i += 7 {
				if got := tok.Encode(inputs[i].Text); !slices.Equal(got, golden[i]["gpt2"]) {
					t.Errorf("line %d differs", i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSaveHFRoundTrip writes each golden tokenizer with SaveHF and checks
// that Load reads it back to the same tokenizer.
func TestSaveHFRoundTrip(t *testing.T) {
	inputs, golden, _ := hfInputs(t)
	dir := t.TempDir()
	for name, tok := range hfGolden(t) {
		path := filepath.Join(dir, name+".json")
		require.NoError(t, SaveHF(path, tok))
		got, err := Load(path)
		require.NoError(t, err, name)
		h := got.(*HF)
		require.Equal(t, tok.VocabSize(), h.VocabSize(), name)
		require.Equal(t, tok.EOT(), h.EOT(), name)
		require.Equal(t, tok.AddedTokens(), h.AddedTokens(), name)
		require.Equal(t, tok.ignoreMerges, h.ignoreMerges, name)
		require.Equal(t, tok.file.merges, h.file.merges, name)
		n := 0
		for i, in := range inputs {
			if want, ok := golden[i][name]; ok && (i%5 == 0 || in.Corpus == "adversarial") {
				require.Equal(t, want, h.Encode(in.Text), "%s line %d", name, i)
				n++
			}
		}
		// Writing what was read gives the same file.
		again := filepath.Join(dir, name+".again.json")
		require.NoError(t, SaveHF(again, h))
		require.Equal(t, string(readFile(t, path)), string(readFile(t, again)), name)
		t.Logf("%s: SaveHF then Load encodes %d lines as before", name, n)
	}

	// Byte becomes a BPE without merges.
	path := filepath.Join(dir, "byte.json")
	require.NoError(t, SaveHF(path, Byte{}))
	got, err := Load(path)
	require.NoError(t, err)
	for _, tc := range roundTripCases {
		require.Equal(t, Byte{}.Encode(tc.text), got.Encode(tc.text), tc.name)
	}
	require.ErrorContains(t, SaveHF(path, fakeTokenizer{}), "tokenizer "+path+": cannot save a tokenize.fakeTokenizer as a Hugging Face tokenizer.json")
}

func TestSaveHFDuplicateToken(t *testing.T) {
	// 258 = (ab)c and 260 = a(bc) both stand for "abc".
	bpe := newBPE([][2]int32{{'a', 'b'}, {257, 'c'}, {'b', 'c'}, {'a', 259}})
	path := filepath.Join(t.TempDir(), HFFileName)
	require.EqualError(t, SaveHF(path, bpe), "tokenizer "+path+`: cannot write as Hugging Face's BPE: ids 258 and 260 both stand for "abc", and a tokenizer.json maps each token to one id`)
	_, err := os.Stat(path)
	require.True(t, os.IsNotExist(err), "nothing written")
}

func TestSaveHFConfig(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, SaveHFConfig(filepath.Join(dir, "a.json"), smallBPE(), 1024))
	require.Equal(t, `{
  "tokenizer_class": "PreTrainedTokenizerFast",
  "model_max_length": 1024,
  "bos_token": "<|endoftext|>",
  "eos_token": "<|endoftext|>",
  "clean_up_tokenization_spaces": false
}
`, string(readFile(t, filepath.Join(dir, "a.json"))))
	require.NoError(t, SaveHFConfig(filepath.Join(dir, "b.json"), hfGolden(t)["llama3"], 0))
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(readFile(t, filepath.Join(dir, "b.json")), &cfg))
	require.Equal(t, map[string]any{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>",
		"eos_token": "<|endoftext|>", "clean_up_tokenization_spaces": false}, cfg)
}

// TestLoadSchemas checks that Load tells the two schemas apart whatever the
// file's name: old run directories have hiddenlab's schema in
// tokenizer.json.
func TestLoadSchemas(t *testing.T) {
	dir := t.TempDir()
	bpe := smallBPE()
	text := "Once upon a time" + EndOfText + "there was a dog."
	for _, name := range []string{FileName, HFFileName} {
		path := filepath.Join(dir, "hl-"+name)
		require.NoError(t, Save(path, bpe))
		got, err := Load(path)
		require.NoError(t, err)
		require.IsType(t, &BPE{}, got, name)
		require.Equal(t, bpe.Encode(text), got.Encode(text))

		path = filepath.Join(dir, "hf-"+name)
		require.NoError(t, SaveHF(path, bpe))
		got, err = Load(path)
		require.NoError(t, err)
		require.IsType(t, &HF{}, got, name)
		require.Equal(t, bpe.Encode(text), got.Encode(text))
	}
	require.Equal(t, "hiddenlab_tokenizer.json", FileName)

	// gzip-compressed files of either schema.
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(readFile(t, filepath.Join(dir, "hl-"+FileName)))
	require.NoError(t, zw.Close())
	path := filepath.Join(dir, "hl.json.gz")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	got, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, bpe.Merges(), got.(*BPE).Merges())

	// LoadHF refuses hiddenlab's schema.
	_, err = LoadHF(filepath.Join(dir, "hl-"+FileName))
	require.ErrorContains(t, err, "model: missing")
}

// tinyHF returns a small Hugging Face tokenizer.json (SaveHF of a BPE with
// three merges) as a map to change.
func tinyHF(t *testing.T) map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), HFFileName)
	require.NoError(t, SaveHF(path, newBPE([][2]int32{{' ', 't'}, {'h', 'e'}, {257, 258}})))
	var m map[string]any
	require.NoError(t, json.Unmarshal(readFile(t, path), &m))
	return m
}

// TestHFEOT checks which token a file without <|endoftext|> ends text with.
func TestHFEOT(t *testing.T) {
	for _, name := range []string{"<|end_of_text|>", "</s>", "<eos>"} {
		m := tinyHF(t)
		vocab := m["model"].(map[string]any)["vocab"].(map[string]any)
		delete(vocab, EndOfText)
		vocab[name] = 256
		m["added_tokens"].([]any)[0].(map[string]any)["content"] = name
		data, err := json.Marshal(m)
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), HFFileName)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		tok, err := Load(path)
		require.NoError(t, err)
		require.Equal(t, int32(256), tok.EOT(), name)
		require.Equal(t, []int32{'a', 256, 'b'}, tok.Encode("a"+name+"b"))
		require.Equal(t, []int32{'<', '|'}, tok.Encode("<|")[:2], "the literal EndOfText is text here")
	}
}

func TestLoadHFErrors(t *testing.T) {
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	vocab := func(m map[string]any) map[string]any { return model(m)["vocab"].(map[string]any) }
	split := func(pattern map[string]any, behavior string, invert bool) map[string]any {
		return map[string]any{"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert}
	}
	byteLevelStep := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
	seq := func(steps ...any) map[string]any { return map[string]any{"type": "Sequence", "pretokenizers": steps} }
	tests := []struct {
		name   string
		change func(m map[string]any)
		want   string
	}{
		{"wordpiece", func(m map[string]any) { model(m)["type"] = "WordPiece" },
			`model.type: "WordPiece" is not supported (only a byte-level "BPE"; WordPiece, Unigram and WordLevel are not)`},
		{"unigram", func(m map[string]any) { model(m)["type"] = "Unigram" }, `model.type: "Unigram" is not supported`},
		{"no model type nor merges", func(m map[string]any) { delete(model(m), "type"); delete(model(m), "merges") },
			"model.type: missing, and no merges"},
		{"no model", func(m map[string]any) { delete(m, "model") }, "model: missing"},
		{"model not an object", func(m map[string]any) { m["model"] = []any{1} }, "model: json: cannot unmarshal array"},
		{"byte fallback", func(m map[string]any) { model(m)["byte_fallback"] = true }, "model.byte_fallback: true is not supported"},
		{"dropout", func(m map[string]any) { model(m)["dropout"] = 0.1 }, "model.dropout: 0.1 is not supported"},
		{"subword prefix", func(m map[string]any) { model(m)["continuing_subword_prefix"] = "##" },
			`model.continuing_subword_prefix: "##" is not supported`},
		{"no vocab", func(m map[string]any) { delete(model(m), "vocab") }, "model.vocab: missing"},
		{"no merges", func(m map[string]any) { model(m)["merges"] = nil }, "model.merges: missing"},
		{"vocab not ids", func(m map[string]any) { vocab(m)["x"] = "y" }, "model.vocab: json: cannot unmarshal string"},
		{"vocab duplicate id", func(m map[string]any) { vocab(m)["zz"] = 7 }, `model.vocab: "zz" and "ć" both have id 7`},
		{"vocab negative id", func(m map[string]any) { vocab(m)["zz"] = -1 }, `model.vocab: "zz" has id -1, out of range`},
		{"vocab lacks a byte", func(m map[string]any) { delete(vocab(m), "Ġ") },
			`model.vocab: no token for byte 0x20 ("Ġ"): a byte-level BPE needs all 256`},
		{"merge of a missing token", func(m map[string]any) {
			model(m)["merges"] = append(model(m)["merges"].([]any), "Ġ zz")
		}, `model.merges[3]: "zz" is not in model.vocab`},
		{"merged token missing", func(m map[string]any) {
			model(m)["merges"] = append(model(m)["merges"].([]any), []any{"q", "z"})
		}, `model.merges[3]: the merged token "qz" is not in model.vocab`},
		{"merge of three", func(m map[string]any) { model(m)["merges"].([]any)[1] = "h e x" },
			`model.merges[1]: "h e x" is not two tokens separated by one space`},
		{"merge list of three", func(m map[string]any) { model(m)["merges"].([]any)[1] = []any{"h", "e", "x"} },
			`model.merges[1]: 3 tokens, want 2`},
		{"merge not a string", func(m map[string]any) { model(m)["merges"].([]any)[0] = 7 },
			`model.merges[0]: 7 is neither "a b" nor ["a", "b"]`},
		{"bad regex", func(m map[string]any) {
			m["pre_tokenizer"] = seq(split(map[string]any{"Regex": `\w+|\s+`}, "Isolated", false), byteLevelStep)
		}, `pre_tokenizer.pretokenizers[0].pattern.Regex: unsupported regex "\\w+|\\s+" (hiddenlab implements GPT-2's, Llama-3's and Qwen2's patterns)`},
		{"string pattern", func(m map[string]any) {
			m["pre_tokenizer"] = seq(split(map[string]any{"String": " "}, "Isolated", false), byteLevelStep)
		}, `pre_tokenizer.pretokenizers[0].pattern: map[String: ] is not supported (only {"Regex": ...})`},
		{"split removed", func(m map[string]any) {
			m["pre_tokenizer"] = seq(split(map[string]any{"Regex": qwen2Regex}, "Removed", false), byteLevelStep)
		}, `pre_tokenizer.pretokenizers[0].behavior: "Removed" is not supported (only "Isolated")`},
		{"split invert", func(m map[string]any) {
			m["pre_tokenizer"] = seq(split(map[string]any{"Regex": qwen2Regex}, "Isolated", true), byteLevelStep)
		}, `pre_tokenizer.pretokenizers[0].invert: true is not supported`},
		{"byte level first", func(m map[string]any) {
			m["pre_tokenizer"] = seq(byteLevelStep, split(map[string]any{"Regex": qwen2Regex}, "Isolated", false))
		}, `pre_tokenizer: no ByteLevel pre-tokenizer at the end`},
		{"split alone", func(m map[string]any) {
			m["pre_tokenizer"] = split(map[string]any{"Regex": qwen2Regex}, "Isolated", false)
		}, `pre_tokenizer: no ByteLevel pre-tokenizer at the end`},
		{"metaspace", func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Metaspace"} },
			`pre_tokenizer.type: "Metaspace" is not supported (only ByteLevel, Split and Sequence)`},
		{"nested unsupported", func(m map[string]any) { m["pre_tokenizer"] = seq(map[string]any{"type": "Digits"}, byteLevelStep) },
			`pre_tokenizer.pretokenizers[0].type: "Digits" is not supported`},
		{"no pre-tokenizer", func(m map[string]any) { m["pre_tokenizer"] = nil },
			"pre_tokenizer: null is not supported: a byte-level BPE needs a ByteLevel pre-tokenizer"},
		{"byte level without add_prefix_space", func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "ByteLevel"} },
			"pre_tokenizer.add_prefix_space: missing"},
		{"lowercase", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Lowercase"} },
			`normalizer.type: "Lowercase" is not supported (only null, NFC, NFD, NFKC, NFKD and a Sequence of them)`},
		{"nested normalizer", func(m map[string]any) {
			m["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "NFC"}, map[string]any{"type": "Strip"}}}
		}, `normalizer.normalizers[1].type: "Strip" is not supported`},
		{"no decoder", func(m map[string]any) { m["decoder"] = nil }, "decoder: null is not supported (only ByteLevel)"},
		{"wordpiece decoder", func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} },
			`decoder.type: "WordPiece" is not supported (only ByteLevel)`},
		{"post-processor", func(m map[string]any) { m["post_processor"] = map[string]any{"type": "Foo"} },
			`post_processor.type: "Foo" is not supported`},
		{"template without A", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "TemplateProcessing", "single": []any{}}
		}, "post_processor.single: no Sequence A"},
		{"template unknown special", func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "TemplateProcessing",
				"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}}}
		}, `post_processor.single[0]: special token "<s>" is not in post_processor.special_tokens`},
		{"single word", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["single_word"] = true },
			"added_tokens[0].single_word: true is not supported"},
		{"empty added token", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["content"] = "" },
			"added_tokens[0].content: missing or empty"},
		{"added id of another token", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["id"] = 65 },
			`added_tokens[0].id: 65 is model.vocab's "A", not "<|endoftext|>"`},
		{"no end of text", func(m map[string]any) { m["added_tokens"] = []any{}; delete(vocab(m), EndOfText) },
			"added_tokens: no end-of-text token: none of <|endoftext|>, <|end_of_text|>, </s>, <eos> is a token"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tinyHF(t)
			tc.change(m)
			data, err := json.Marshal(m)
			require.NoError(t, err)
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			_, err = Load(path)
			require.ErrorContains(t, err, "tokenizer "+path+": ", "case %d", i)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadHFTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), HFFileName)
	require.NoError(t, SaveHF(path, smallBPE()))
	data := readFile(t, path)
	tests := []struct {
		cut  int
		want string
	}{
		{len(data) - 200, "model: truncated JSON (unexpected EOF)"},
		{bytes.Index(data, []byte(`"added_tokens"`)) + 30, "added_tokens: truncated JSON (unexpected EOF)"},
		{len(data) - 2, "truncated JSON"},
	}
	for _, tc := range tests {
		cut := filepath.Join(t.TempDir(), HFFileName)
		require.NoError(t, os.WriteFile(cut, data[:tc.cut], 0o644))
		_, err := Load(cut)
		require.ErrorContains(t, err, "tokenizer "+cut+": "+tc.want)
	}
	trailing := filepath.Join(t.TempDir(), HFFileName)
	require.NoError(t, os.WriteFile(trailing, append(bytes.Clone(data), "{}"...), 0o644))
	_, err := Load(trailing)
	require.EqualError(t, err, "tokenizer "+trailing+": data after the JSON object")
}

// BenchmarkHFEncode encodes the TinyStories validation slice with GPT-2's
// real tokenizer.json, starting from an empty word cache each time.
func BenchmarkHFEncode(b *testing.B) {
	data, err := readGzErr(filepath.Join(hfTestdata, "gpt2.tokenizer.json.gz"))
	require.NoError(b, err)
	text := string(readFile(b, storiesValid))
	tok, err := parseHF("gpt2", data)
	require.NoError(b, err)
	for b.Loop() {
		tok.cache = map[string][]int32{}
		tok.Encode(text)
	}
	b.SetBytes(int64(len(text)))
}
