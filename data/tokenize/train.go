package tokenize

import (
	"container/heap"
	"fmt"
	"strings"
)

// BPEOptions tunes TrainBPE. The zero value gives the defaults.
type BPEOptions struct {
	// MinPairCount is the fewest occurrences a pair needs to be merged;
	// zero means 2. A pair seen once would spend an id to save one token.
	MinPairCount int
	// AllowSmaller accepts a vocabulary smaller than asked when no pair
	// occurs MinPairCount times any more. Without it TrainBPE returns an
	// error in that case.
	AllowSmaller bool
}

// TrainBPE learns a byte-level BPE with vocabSize ids from text.
//
// The base vocabulary is the 256 bytes and EOT (id 256). Text is split at
// each EndOfText, which is never merged, and pre-tokenized into chunks like
// GPT-2, so merges never cross a chunk boundary. Training then repeats:
// count every adjacent pair of ids within the chunks, weighted by how often
// each chunk occurs, and merge the most frequent pair into a new id, until
// there are vocabSize ids. A tie in counts goes to the pair with the lowest
// first id, then the lowest second id, so the same text always gives the same
// merges.
//
// Only the distinct chunks are kept, with their counts, and pair counts are
// updated only for the chunks that contain the merged pair: the 2 MiB
// TinyStories slice trains to 4096 ids in about 0.1 s.
func TrainBPE(text []byte, vocabSize int, opts BPEOptions) (*BPE, error) {
	if vocabSize < baseVocabSize {
		return nil, fmt.Errorf("tokenizer bpe: vocab size %d, want at least %d (256 bytes and EOT)", vocabSize, baseVocabSize)
	}
	minCount := int64(opts.MinPairCount)
	if minCount <= 0 {
		minCount = 2
	}
	tr := newTrainer(string(text))
	merges := make([][2]int32, 0, vocabSize-baseVocabSize)
	for len(merges) < vocabSize-baseVocabSize {
		p, count := tr.best()
		if count < minCount {
			if opts.AllowSmaller {
				break
			}
			return nil, fmt.Errorf("tokenizer bpe: text yields only %d ids with pairs seen at least %d times, want %d",
				baseVocabSize+len(merges), minCount, vocabSize)
		}
		a, b := int32(p>>32), int32(uint32(p))
		tr.merge(a, b, int32(baseVocabSize+len(merges)))
		merges = append(merges, [2]int32{a, b})
	}
	return newBPE(merges), nil
}

// word is a distinct chunk of the training text as its current ids.
type word struct {
	ids   []int32
	count int64 // occurrences of the chunk in the text
}

// trainer holds the state of BPE training.
type trainer struct {
	words  []word
	counts map[uint64]int64   // pair -> occurrences, weighted by word count
	where  map[uint64][]int32 // pair -> words that contain it (may repeat, may be stale)
	queue  pairHeap           // (count, pair), possibly stale: checked against counts
	delta  map[uint64]int64   // scratch: count changes of one merge
	seen   []int32            // word -> the step of the last merge that visited it
	step   int32              // the current merge, counting from 1
}

func newTrainer(text string) *trainer {
	freq := make(map[string]int64)
	for {
		i := strings.Index(text, EndOfText)
		if i < 0 {
			break
		}
		chunks(text[:i], func(c string) { freq[c]++ })
		text = text[i+len(EndOfText):]
	}
	chunks(text, func(c string) { freq[c]++ })

	tr := &trainer{
		counts: make(map[uint64]int64),
		where:  make(map[uint64][]int32),
		delta:  make(map[uint64]int64),
	}
	for c, n := range freq {
		if len(c) < 2 {
			continue // no pairs
		}
		ids := make([]int32, len(c))
		for i := range len(c) {
			ids[i] = int32(c[i])
		}
		tr.words = append(tr.words, word{ids, n})
	}
	for w, wd := range tr.words {
		for i := 0; i+1 < len(wd.ids); i++ {
			p := pairKey(wd.ids[i], wd.ids[i+1])
			tr.counts[p] += wd.count
			tr.addWhere(p, int32(w))
		}
	}
	tr.seen = make([]int32, len(tr.words))
	tr.queue = make(pairHeap, 0, len(tr.counts))
	for p, n := range tr.counts {
		tr.queue = append(tr.queue, pairCount{n, p})
	}
	heap.Init(&tr.queue)
	return tr
}

// addWhere records that word w contains pair p.
func (tr *trainer) addWhere(p uint64, w int32) {
	ws := tr.where[p]
	if len(ws) > 0 && ws[len(ws)-1] == w {
		return
	}
	tr.where[p] = append(ws, w)
}

// best returns the most frequent pair and its count, ties to the lowest
// pair, or count 0 when no pair is left.
func (tr *trainer) best() (pair uint64, count int64) {
	for len(tr.queue) > 0 {
		top := tr.queue[0]
		if n := tr.counts[top.pair]; n == top.count {
			return top.pair, n
		}
		heap.Pop(&tr.queue) // stale
	}
	return 0, 0
}

// merge replaces each non-overlapping occurrence of (a, b), left to right,
// by id in every word, and updates the pair counts.
func (tr *trainer) merge(a, b, id int32) {
	p := pairKey(a, b)
	tr.step++
	clear(tr.delta)
	for _, w := range tr.where[p] {
		if tr.seen[w] == tr.step {
			continue
		}
		tr.seen[w] = tr.step
		wd := &tr.words[w]
		ids := wd.ids
		if !containsPair(ids, a, b) {
			continue // stale entry
		}
		for i := 0; i+1 < len(ids); i++ {
			tr.delta[pairKey(ids[i], ids[i+1])] -= wd.count
		}
		out := ids[:0]
		for i := 0; i < len(ids); i++ {
			if i+1 < len(ids) && ids[i] == a && ids[i+1] == b {
				out = append(out, id)
				i++
			} else {
				out = append(out, ids[i])
			}
		}
		wd.ids = out
		for i := 0; i+1 < len(out); i++ {
			q := pairKey(out[i], out[i+1])
			tr.delta[q] += wd.count
			if out[i] == id || out[i+1] == id {
				tr.addWhere(q, w)
			}
		}
	}
	for q, d := range tr.delta {
		if d == 0 {
			continue
		}
		n := tr.counts[q] + d
		if n <= 0 {
			delete(tr.counts, q)
			continue
		}
		tr.counts[q] = n
		heap.Push(&tr.queue, pairCount{n, q})
	}
	delete(tr.counts, p)
	delete(tr.where, p)
}

func containsPair(ids []int32, a, b int32) bool {
	for i := 0; i+1 < len(ids); i++ {
		if ids[i] == a && ids[i+1] == b {
			return true
		}
	}
	return false
}

// pairCount is a queue entry: a pair and its count when it was pushed.
type pairCount struct {
	count int64
	pair  uint64
}

// pairHeap puts the highest count first, ties to the lowest pair.
type pairHeap []pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	return h[i].pair < h[j].pair
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
