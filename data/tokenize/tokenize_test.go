package tokenize

import (
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const (
	storiesTrain = "../../third_party/tinystories/train_sample_2MiB.txt"
	storiesValid = "../../third_party/tinystories/valid_first1000.txt"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// smallBPE is a BPE with 512 ids trained on the first 256 KiB of the
// TinyStories train slice, shared by the tests.
var smallBPE = sync.OnceValue(func() *BPE {
	text, err := os.ReadFile(storiesTrain)
	if err != nil {
		panic(err)
	}
	t, err := TrainBPE(text[:256<<10], 512, BPEOptions{})
	if err != nil {
		panic(err)
	}
	return t
})

// tokenizers returns one tokenizer of each kind.
func tokenizers() []Tokenizer { return []Tokenizer{Byte{}, smallBPE()} }

var roundTripCases = []struct {
	name, text string
}{
	{"empty", ""},
	{"ascii", "Once upon a time, there was a little dog named Spot."},
	{"spaces", "  two leading, three trailing   "},
	{"newlines and tabs", "line one\nline two\r\n\tindented\n\n\nend"},
	{"contractions", "Lily's mom didn't know they'd gone; we'll see, I'm sure they're fine."},
	{"digits", "In 2023, 3.14159 and 1,000,000 and 007"},
	{"latin accents", "café naïve façade Zürich"},
	{"cjk", "日本語のテキストと中文"},
	{"emoji", "party 🎉🚀 family 👨‍👩‍👧 flag 🇩🇪"},
	{"curly quotes", "“Hello,” she said — ‘ok’…"},
	{"invalid utf8", "bad \xff\xfe bytes \xc3 and a cut \xe2\x82"},
	{"eot only", EndOfText},
	{"eot between docs", "The end.\n" + EndOfText + "\nOnce upon a time"},
	{"eot twice", EndOfText + EndOfText},
	{"eot prefix only", "<|endoftext| and <|endoftext"},
	{"eot inside word", "abc<|endoftext|>def"},
	{"all bytes", allBytes()},
}

func allBytes() string {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}

func TestRoundTrip(t *testing.T) {
	for _, tok := range tokenizers() {
		for _, tc := range roundTripCases {
			t.Run(tok.Name()+"/"+tc.name, func(t *testing.T) {
				ids := tok.Encode(tc.text)
				for _, id := range ids {
					require.True(t, id >= 0 && int(id) < tok.VocabSize(), "id %d out of range", id)
				}
				require.Equal(t, tc.text, tok.Decode(ids))
				require.Equal(t, strings.Count(tc.text, EndOfText), count(ids, tok.EOT()))
			})
		}
	}
}

func count(ids []int32, id int32) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func TestEncodeEOT(t *testing.T) {
	for _, tok := range tokenizers() {
		require.Equal(t, int32(256), tok.EOT(), tok.Name())
		require.Equal(t, []int32{'a', 256, 'b'}, tok.Encode("a"+EndOfText+"b"), tok.Name())
		require.Equal(t, []int32{256, 256}, tok.Encode(EndOfText+EndOfText), tok.Name())
		require.Equal(t, EndOfText, tok.Decode([]int32{256}), tok.Name())
	}
}

func TestByte(t *testing.T) {
	var b Byte
	require.Equal(t, 257, b.VocabSize())
	require.Equal(t, "byte", b.Name())
	require.Equal(t, []int32{'h', 'i', ' ', 0xc3, 0xa9}, b.Encode("hi é"))
	require.Empty(t, b.Encode(""))
	require.Equal(t, "a\uFFFDb\uFFFD", b.Decode([]int32{'a', 257, 'b', -1}))
}

func TestDecodeOutOfRange(t *testing.T) {
	bpe := smallBPE()
	require.Equal(t, "x\uFFFD\uFFFD", bpe.Decode([]int32{'x', int32(bpe.VocabSize()), -5}))
}

func TestNew(t *testing.T) {
	text := readFile(t, storiesTrain)[:64<<10]
	tests := []struct {
		name      string
		vocab     int
		wantVocab int
		wantErr   string
	}{
		{"byte", 0, 257, ""},
		{"byte", 257, 257, ""},
		{"byte", 300, 0, "vocab size 300, want 257"},
		{"bpe", 300, 300, ""},
		{"bpe", 100, 0, "vocab size 100, want at least 257"},
		{"wordpiece", 300, 0, `tokenizer "wordpiece": unknown kind`},
	}
	for _, tc := range tests {
		tok, err := New(tc.name, tc.vocab, text)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, "%s %d", tc.name, tc.vocab)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.name, tok.Name())
		require.Equal(t, tc.wantVocab, tok.VocabSize())
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, tc := range roundTripCases {
		f.Add(tc.text)
	}
	f.Add(string(readFile(f, storiesValid)[:2000]))
	f.Fuzz(func(t *testing.T, s string) {
		var parts []string
		chunks(s, func(c string) {
			if c == "" {
				t.Fatalf("empty chunk of %q", s)
			}
			parts = append(parts, c)
		})
		if got := strings.Join(parts, ""); got != s {
			t.Fatalf("chunks of %q join to %q", s, got)
		}
		for _, tok := range tokenizers() {
			ids := tok.Encode(s)
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s: Decode(Encode(%q)) = %q", tok.Name(), s, got)
			}
			if n, want := count(ids, tok.EOT()), strings.Count(s, EndOfText); n != want {
				t.Fatalf("%s: %d EOT ids for %d markers in %q", tok.Name(), n, want, s)
			}
			if tok.Name() == "bpe" && len(ids) > len(s) {
				t.Fatalf("bpe: %d ids for %d bytes", len(ids), len(s))
			}
		}
		if utf8.ValidString(s) {
			// Valid text stays valid chunk by chunk: no chunk splits a character.
			for _, c := range parts {
				if !utf8.ValidString(c) {
					t.Fatalf("chunk %q of valid %q is not valid UTF-8", c, s)
				}
			}
		}
	})
}
