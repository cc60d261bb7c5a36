package tokenize

import (
	"bufio"
	"container/heap"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// baseVocabSize is the number of ids a BPE has before any merge: 256 bytes
// and EOT. Merge i defines id baseVocabSize+i.
const baseVocabSize = 257

// The chunk cache of a BPE holds chunks of up to maxCachedChunk bytes, at
// most maxCacheChunks of them; when it is full it starts over. A 2 MiB
// TinyStories slice has 503,212 chunks, 7,179 of them distinct.
const (
	maxCachedChunk = 64
	maxCacheChunks = 1 << 17
)

// BPE is a byte-level byte-pair-encoding tokenizer. Ids 0..255 are bytes, id
// 256 is EOT, and id 257+i is the concatenation of the pair that merge i
// joins. TrainBPE learns the merges; Load reads saved ones.
//
// Encode splits text at each EndOfText and pre-tokenizes the rest into
// chunks with GPT-2's pattern: an English contraction ('s 't 're 've 'm 'll
// 'd), or an optional space and a run of letters, of digits or of other
// non-space characters, or a run of whitespace (which leaves its last
// character to a following word). Bytes that are not UTF-8 count as other
// characters. Each chunk is encoded on its own by applying merges in rank
// order, lowest first, each to all its non-overlapping occurrences left to
// right, as training did. Chunk encodings are cached, so text with a
// repetitive vocabulary encodes fast.
//
// A BPE is safe for concurrent use.
type BPE struct {
	merges [][2]int32
	ranks  map[uint64]int32 // pairKey(a, b) -> index of the merge of a and b
	tokens []string         // id -> the bytes it stands for; EndOfText for EOT

	mu    sync.Mutex
	cache map[string][]int32 // chunk -> its ids
}

// newBPE returns the BPE of merges, which must be valid: merge i joins ids
// below baseVocabSize+i, neither of them EOT, and no pair appears twice.
func newBPE(merges [][2]int32) *BPE {
	t := &BPE{
		merges: merges,
		ranks:  make(map[uint64]int32, len(merges)),
		tokens: make([]string, baseVocabSize, baseVocabSize+len(merges)),
		cache:  make(map[string][]int32),
	}
	for b := range 256 {
		t.tokens[b] = string([]byte{byte(b)})
	}
	t.tokens[eotID] = EndOfText
	for i, m := range merges {
		t.ranks[pairKey(m[0], m[1])] = int32(i)
		t.tokens = append(t.tokens, t.tokens[m[0]]+t.tokens[m[1]])
	}
	return t
}

// pairKey packs an ordered pair of ids into one map key that sorts like the
// pair: by a, then by b.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// VocabSize returns 257 plus the number of merges.
func (t *BPE) VocabSize() int { return baseVocabSize + len(t.merges) }

// EOT returns 256.
func (t *BPE) EOT() int32 { return eotID }

// Name returns "bpe".
func (t *BPE) Name() string { return "bpe" }

// Merges returns a copy of the merges in rank order: merge i joins the pair
// Merges()[i] into id 257+i.
func (t *BPE) Merges() [][2]int32 {
	return slices.Clone(t.merges)
}

// Token returns the bytes id stands for (EndOfText for EOT) and whether id
// is in the vocabulary.
func (t *BPE) Token(id int32) (string, bool) {
	if id < 0 || int(id) >= len(t.tokens) {
		return "", false
	}
	return t.tokens[id], true
}

// Encode returns the ids of text.
func (t *BPE) Encode(text string) []int32 {
	ids := make([]int32, 0, len(text)/3+1)
	for {
		i := strings.Index(text, EndOfText)
		if i < 0 {
			break
		}
		ids = t.appendEncoded(ids, text[:i])
		ids = append(ids, eotID)
		text = text[i+len(EndOfText):]
	}
	return t.appendEncoded(ids, text)
}

// appendEncoded appends the ids of s, which holds no EndOfText, to ids.
func (t *BPE) appendEncoded(ids []int32, s string) []int32 {
	chunks(s, func(c string) {
		switch {
		case len(c) == 1:
			ids = append(ids, int32(c[0]))
			return
		case len(c) > maxCachedChunk:
			ids = append(ids, t.encodeChunk(c)...)
			return
		}
		t.mu.Lock()
		enc, ok := t.cache[c]
		t.mu.Unlock()
		if !ok {
			enc = t.encodeChunk(c)
			t.mu.Lock()
			if len(t.cache) >= maxCacheChunks {
				clear(t.cache)
			}
			// Copy the key: c may be a slice of a much larger text.
			t.cache[strings.Clone(c)] = enc
			t.mu.Unlock()
		}
		ids = append(ids, enc...)
	})
	return ids
}

// encodeChunk applies the merges to the bytes of chunk. It keeps the symbols
// in a linked list and the candidate merges in a heap ordered by (rank,
// position), so it takes O(n log n) time for a chunk of n bytes.
//
// A merge creates an id whose own merges all rank after it, so the
// candidates of one rank are all known when the first of them is popped and
// are taken left to right: the result is the same as applying merge after
// merge to the whole chunk.
func (t *BPE) encodeChunk(chunk string) []int32 {
	n := len(chunk)
	ids := make([]int32, n)  // symbol at each start position; -1 once merged into its left neighbour
	next := make([]int32, n) // start of the next symbol, n at the end
	prev := make([]int32, n) // start of the previous symbol, -1 at the start
	var h candHeap
	for i := range n {
		ids[i] = int32(chunk[i])
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	for i := 0; i+1 < n; i++ {
		if r, ok := t.ranks[pairKey(ids[i], ids[i+1])]; ok {
			h = append(h, cand{r, int32(i)})
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		c := heap.Pop(&h).(cand)
		i := c.pos
		j := next[i]
		if ids[i] < 0 || int(j) >= n {
			continue
		}
		if r, ok := t.ranks[pairKey(ids[i], ids[j])]; !ok || r != c.rank {
			continue // stale: a neighbour changed since the candidate was pushed
		}
		ids[i] = baseVocabSize + c.rank
		ids[j] = -1
		next[i] = next[j]
		if k := next[i]; int(k) < n {
			prev[k] = i
			if r, ok := t.ranks[pairKey(ids[i], ids[k])]; ok {
				heap.Push(&h, cand{r, i})
			}
		}
		if p := prev[i]; p >= 0 {
			if r, ok := t.ranks[pairKey(ids[p], ids[i])]; ok {
				heap.Push(&h, cand{r, p})
			}
		}
	}
	out := make([]int32, 0, n)
	for i := int32(0); int(i) < n; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

// cand is a candidate merge of the symbol at pos with the one after it.
type cand struct{ rank, pos int32 }

// candHeap orders candidates by rank, then by position.
type candHeap []cand

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(cand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Decode returns the text of ids: the bytes each id stands for, EndOfText
// for EOT, and U+FFFD for an id outside the vocabulary.
func (t *BPE) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.tokens) {
			b.WriteString(t.tokens[id])
		} else {
			b.WriteRune('\uFFFD')
		}
	}
	return b.String()
}

// Save writes t to path as JSON, replacing the file atomically:
//
//	{"type":"bpe","vocab_size":260,"eot":256,"merges":[
//	[32,116],
//	[104,101],
//	[257,104]
//	]}
//
// with one merge per line.
func (t *BPE) Save(path string) error {
	return atomicio.Write(path, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, `{"type":"bpe","vocab_size":%d,"eot":%d,"merges":[`, t.VocabSize(), eotID)
		for i, m := range t.merges {
			sep := ","
			if i == len(t.merges)-1 {
				sep = ""
			}
			fmt.Fprintf(bw, "\n[%d,%d]%s", m[0], m[1], sep)
		}
		bw.WriteString("\n]}\n")
		return bw.Flush()
	})
}
