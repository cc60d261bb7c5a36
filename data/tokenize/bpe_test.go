package tokenize

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// storiesBPE is a BPE with 4096 ids trained on the whole 2 MiB TinyStories
// train slice, and how long training took.
var storiesBPE = sync.OnceValues(func() (*BPE, time.Duration) {
	text, err := os.ReadFile(storiesTrain)
	if err != nil {
		panic(err)
	}
	start := time.Now()
	t, err := TrainBPE(text, 4096, BPEOptions{})
	if err != nil {
		panic(err)
	}
	return t, time.Since(start)
})

func TestTrainBPEToy(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		vocab int
		opts  BPEOptions
		want  [][2]int32
		err   string
	}{
		// (a,b) occurs 4 times, then (' ',ab) 3 times.
		{"counts", "ab ab ab abc", 259, BPEOptions{}, [][2]int32{{'a', 'b'}, {' ', 257}}, ""},
		// (a,b) and (c,d) tie at 2: the lower pair goes first, whatever the order in the text.
		{"tie ab first", "ab\ncd\nab\ncd\n", 259, BPEOptions{}, [][2]int32{{'a', 'b'}, {'c', 'd'}}, ""},
		{"tie cd first", "cd\nab\ncd\nab\n", 259, BPEOptions{}, [][2]int32{{'a', 'b'}, {'c', 'd'}}, ""},
		// "aaaa" merges as (aa)(aa): occurrences do not overlap.
		{"overlap", "aaaa aaaa", 259, BPEOptions{}, [][2]int32{{'a', 'a'}, {257, 257}}, ""},
		// Merges never cross the end-of-text marker or a chunk boundary.
		{"eot", "x" + EndOfText + "x" + EndOfText + "x.x.", 258, BPEOptions{}, nil, "only 257 ids"},
		{"too few pairs", "ab ab ab abc", 260, BPEOptions{}, nil, "only 259 ids with pairs seen at least 2 times, want 260"},
		{"allow smaller", "ab ab ab abc", 300, BPEOptions{AllowSmaller: true}, [][2]int32{{'a', 'b'}, {' ', 257}}, ""},
		{"min count 1", "ab ab ab abc", 260, BPEOptions{MinPairCount: 1}, [][2]int32{{'a', 'b'}, {' ', 257}, {258, 'c'}}, ""},
		{"min count 4", "ab ab ab abc", 300, BPEOptions{MinPairCount: 4, AllowSmaller: true}, [][2]int32{{'a', 'b'}}, ""},
		{"no merges", "", 257, BPEOptions{}, [][2]int32{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bpe, err := TrainBPE([]byte(tc.text), tc.vocab, tc.opts)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, bpe.Merges())
			require.Equal(t, 257+len(tc.want), bpe.VocabSize())
		})
	}
}

func TestBPEEncodeToy(t *testing.T) {
	bpe, err := TrainBPE([]byte("ab ab ab abc"), 259, BPEOptions{})
	require.NoError(t, err)
	require.Equal(t, []int32{257, 258, 'c', 258, 258}, bpe.Encode("ab abc ab ab"))
	require.Equal(t, []int32{'a', 256, 'b'}, bpe.Encode("a"+EndOfText+"b"), "no merge across EOT")
	require.Equal(t, []int32{'b', 'a'}, bpe.Encode("ba"))
	tok, ok := bpe.Token(258)
	require.True(t, ok)
	require.Equal(t, " ab", tok)
	_, ok = bpe.Token(259)
	require.False(t, ok)
}

// encodeNaive is the textbook BPE encoding: apply each merge in rank order
// to the whole chunk, left to right.
func encodeNaive(merges [][2]int32, chunk string) []int32 {
	ids := make([]int32, len(chunk))
	for i := range ids {
		ids[i] = int32(chunk[i])
	}
	for r, m := range merges {
		out := ids[:0]
		for i := 0; i < len(ids); i++ {
			if i+1 < len(ids) && ids[i] == m[0] && ids[i+1] == m[1] {
				out = append(out, int32(257+r))
				i++
			} else {
				out = append(out, ids[i])
			}
		}
		ids = out
	}
	return ids
}

func TestEncodeChunkMatchesNaive(t *testing.T) {
	bpe := smallBPE()
	var tested []string
	chunks(string(readFile(t, storiesValid)[:32<<10]), func(c string) { tested = append(tested, c) })
	// Long chunks with repeats exercise the heap across many merges.
	tested = append(tested, strings.Repeat("a", 301), strings.Repeat("the", 50), strings.Repeat("!?", 40),
		strings.Repeat(" ", 33), "Supercalifragilisticexpialidocious")
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aeinorst hl"
	for range 200 {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		tested = append(tested, string(b))
	}
	for _, c := range tested {
		require.Equal(t, encodeNaive(bpe.merges, c), bpe.encodeChunk(c), "%q", c)
	}
}

// trainNaive is the textbook BPE training: recount every pair of every
// distinct chunk before each merge.
func trainNaive(text string, vocab int) [][2]int32 {
	freq := map[string]int64{}
	for _, doc := range strings.Split(text, EndOfText) {
		chunks(doc, func(c string) { freq[c]++ })
	}
	var words [][]int32
	var counts []int64
	for c, n := range freq {
		w := make([]int32, len(c))
		for i := range w {
			w[i] = int32(c[i])
		}
		words, counts = append(words, w), append(counts, n)
	}
	var merges [][2]int32
	for len(merges) < vocab-257 {
		pairs := map[[2]int32]int64{}
		for i, w := range words {
			for j := 0; j+1 < len(w); j++ {
				pairs[[2]int32{w[j], w[j+1]}] += counts[i]
			}
		}
		var best [2]int32
		var bestN int64
		for p, n := range pairs {
			if n > bestN || n == bestN && (p[0] < best[0] || p[0] == best[0] && p[1] < best[1]) {
				best, bestN = p, n
			}
		}
		if bestN < 2 {
			break
		}
		id := int32(257 + len(merges))
		merges = append(merges, best)
		for i, w := range words {
			out := w[:0]
			for j := 0; j < len(w); j++ {
				if j+1 < len(w) && w[j] == best[0] && w[j+1] == best[1] {
					out = append(out, id)
					j++
				} else {
					out = append(out, w[j])
				}
			}
			words[i] = out
		}
	}
	return merges
}

func TestTrainBPEMatchesNaive(t *testing.T) {
	texts := map[string]string{
		"tinystories": string(readFile(t, storiesTrain)[:64<<10]),
		"repeats":     strings.Repeat("aaaa abab aaab bbbb aa "+EndOfText, 20),
		"unicode":     strings.Repeat("日本語 日本 café cafe\xff\xff ", 10),
	}
	for name, text := range texts {
		want := trainNaive(text, 600)
		bpe, err := TrainBPE([]byte(text), 257+len(want), BPEOptions{})
		require.NoError(t, err, name)
		require.Equal(t, want, bpe.Merges(), name)
		t.Logf("%s: %d merges", name, len(want))
	}
}

func TestTrainBPEDeterministic(t *testing.T) {
	text := readFile(t, storiesTrain)[:256<<10]
	a, err := TrainBPE(text, 600, BPEOptions{})
	require.NoError(t, err)
	b, err := TrainBPE(text, 600, BPEOptions{})
	require.NoError(t, err)
	require.Equal(t, a.Merges(), b.Merges())
	// Training is greedy: a smaller vocabulary is a prefix of a larger one.
	require.Equal(t, a.Merges()[:512-257], smallBPE().Merges())
	// The first merges of English text are frequent pairs like " t" and "he".
	require.Contains(t, a.Merges()[:10], [2]int32{' ', 't'})
}

func TestBPECompressesTinyStories(t *testing.T) {
	bpe, took := storiesBPE()
	t.Logf("trained 2 MiB to 4096 ids in %v", took)
	require.Equal(t, 4096, bpe.VocabSize())
	train := string(readFile(t, storiesTrain))
	valid := string(readFile(t, storiesValid))

	// The byte tokenizer spends one id per byte, and one per EOT marker.
	require.Equal(t, 2316, strings.Count(train, EndOfText))
	require.Len(t, Byte{}.Encode(train), len(train)-2316*(len(EndOfText)-1))

	// Greedy training means the first n merges of the 4096 vocabulary are
	// what training to 257+n would give.
	tests := []struct {
		vocab            int
		maxTrain, maxVal float64 // tokens per byte
	}{
		{512, 0.45, 0.45},   // measured 0.4262 on train, 0.4283 on valid
		{1024, 0.345, 0.35}, // measured 0.3233, 0.3263
		{4096, 0.27, 0.275}, // measured 0.2486, 0.2545
	}
	for _, tc := range tests {
		sub := newBPE(bpe.merges[:tc.vocab-257])
		start := time.Now()
		trainIDs := sub.Encode(train)
		took := time.Since(start)
		validIDs := sub.Encode(valid)
		tr := float64(len(trainIDs)) / float64(len(train))
		va := float64(len(validIDs)) / float64(len(valid))
		t.Logf("vocab %4d: %.4f tokens/byte on train, %.4f on valid; encoded 2 MiB in %v", tc.vocab, tr, va, took)
		require.Less(t, tr, tc.maxTrain, "vocab %d train", tc.vocab)
		require.Less(t, va, tc.maxVal, "vocab %d valid", tc.vocab)
		require.Equal(t, valid, sub.Decode(validIDs))
	}
}

func TestBPEConcurrentEncode(t *testing.T) {
	bpe := newBPE(smallBPE().merges) // fresh cache
	text := string(readFile(t, storiesValid)[:64<<10])
	want := encodeAllNaive(bpe, text)
	var wg sync.WaitGroup
	got := make([][]int32, 4)
	for g := range got {
		wg.Go(func() { got[g] = bpe.Encode(text) })
	}
	wg.Wait()
	for _, ids := range got {
		require.Equal(t, want, ids)
	}
}

// encodeAllNaive encodes text chunk by chunk with encodeNaive.
func encodeAllNaive(bpe *BPE, text string) []int32 {
	var ids []int32
	for i, doc := range strings.Split(text, EndOfText) {
		if i > 0 {
			ids = append(ids, 256)
		}
		chunks(doc, func(c string) { ids = append(ids, encodeNaive(bpe.merges, c)...) })
	}
	return ids
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	text := string(readFile(t, storiesValid)[:64<<10]) + EndOfText + "\xff🎉"
	for _, tok := range tokenizers() {
		path := filepath.Join(dir, tok.Name()+".json")
		require.NoError(t, Save(path, tok))
		got, err := Load(path)
		require.NoError(t, err)
		require.Equal(t, tok.Name(), got.Name())
		require.Equal(t, tok.VocabSize(), got.VocabSize())
		require.Equal(t, tok.EOT(), got.EOT())
		require.Equal(t, tok.Encode(text), got.Encode(text))
		if bpe, ok := tok.(*BPE); ok {
			require.Equal(t, bpe.Merges(), got.(*BPE).Merges())
		}
	}
	data := readFile(t, filepath.Join(dir, "bpe.json"))
	require.True(t, strings.HasPrefix(string(data), `{"type":"bpe","vocab_size":512,"eot":256,"merges":[`+"\n["), "%.80s", data)
	require.Equal(t, `{"type":"byte","vocab_size":257,"eot":256}`+"\n", string(readFile(t, filepath.Join(dir, "byte.json"))))
	require.ErrorContains(t, Save(filepath.Join(dir, "x.json"), fakeTokenizer{}), "cannot save a tokenize.fakeTokenizer")
}

type fakeTokenizer struct{ Byte }

func TestLoadMinimalByte(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"type":"byte"}`), 0o644))
	tok, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, Byte{}, tok)
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", ``, "EOF"},
		{"not json", `{"type":`, "unexpected EOF"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"trailing data", `{"type":"byte"} {}`, "data after the JSON object"},
		{"unknown key", `{"type":"byte","vocab":257}`, `unknown field "vocab"`},
		{"missing type", `{"vocab_size":257}`, "type: missing"},
		{"unknown type", `{"type":"wordpiece"}`, `type: unknown "wordpiece"`},
		{"byte vocab", `{"type":"byte","vocab_size":300}`, "vocab_size: 300, want 257"},
		{"byte eot", `{"type":"byte","eot":0}`, "eot: 0, want 256"},
		{"byte merges", `{"type":"byte","merges":[]}`, "merges: not allowed for type byte"},
		{"bpe no vocab", `{"type":"bpe","eot":256,"merges":[]}`, "vocab_size: missing"},
		{"bpe no eot", `{"type":"bpe","vocab_size":257,"merges":[]}`, "eot: missing"},
		{"bpe no merges", `{"type":"bpe","vocab_size":257,"eot":256}`, "merges: missing"},
		{"bpe eot", `{"type":"bpe","vocab_size":257,"eot":7,"merges":[]}`, "eot: 7, want 256"},
		{"bpe vocab mismatch", `{"type":"bpe","vocab_size":300,"eot":256,"merges":[[97,98]]}`,
			"vocab_size: 300, but 257 base ids + 1 merges make 258"},
		{"vocab type", `{"type":"bpe","vocab_size":"big","eot":256,"merges":[]}`, "vocab_size"},
		{"merge arity", `{"type":"bpe","vocab_size":259,"eot":256,"merges":[[97,98],[1,2,3]]}`, "merges[1]: 3 ids, want 2"},
		{"merge undefined id", `{"type":"bpe","vocab_size":259,"eot":256,"merges":[[97,98],[258,97]]}`,
			"merges[1]: id 258 is not defined before this merge (ids 0..257 are)"},
		{"merge negative id", `{"type":"bpe","vocab_size":258,"eot":256,"merges":[[-1,97]]}`, "merges[0]: id -1 is not defined"},
		{"merge eot", `{"type":"bpe","vocab_size":258,"eot":256,"merges":[[256,97]]}`, "merges[0]: merges the end-of-text id 256"},
		{"merge duplicate", `{"type":"bpe","vocab_size":260,"eot":256,"merges":[[97,98],[99,100],[97,98]]}`,
			"merges[2]: duplicate of merges[0] [97 98]"},
		{"merge not a number", `{"type":"bpe","vocab_size":258,"eot":256,"merges":[[1.5,2]]}`, "merges"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("tok%d.json", i))
			require.NoError(t, os.WriteFile(path, []byte(tc.data), 0o644))
			_, err := Load(path)
			require.ErrorContains(t, err, "tokenizer "+path+": ")
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Load(filepath.Join(dir, "missing.json"))
	require.EqualError(t, err, "tokenizer "+filepath.Join(dir, "missing.json")+": open: no such file or directory")
}

func BenchmarkTrainBPE4096(b *testing.B) {
	text := readFile(b, storiesTrain)
	for b.Loop() {
		if _, err := TrainBPE(text, 4096, BPEOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(text)))
}

// BenchmarkEncode encodes the validation slice with a fresh tokenizer each
// time, so the chunk cache starts empty.
func BenchmarkEncode(b *testing.B) {
	bpe, _ := storiesBPE()
	text := string(readFile(b, storiesValid))
	for b.Loop() {
		newBPE(bpe.merges).Encode(text)
	}
	b.SetBytes(int64(len(text)))
}
