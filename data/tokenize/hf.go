package tokenize

import (
	"container/heap"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// HF is a byte-level BPE tokenizer read from a Hugging Face tokenizer.json
// (LoadHF, or Load): GPT-2, GPT-NeoX/Pythia, RoBERTa, Qwen2, Llama-3 and
// others built the same way. Encode gives the ids that Hugging Face's
// tokenizers library gives with add_special_tokens=False, and Decode what its
// decode(ids) gives; the golden tests check both against that library on
// over 10,000 lines of text.
//
// Encode runs Hugging Face's pipeline:
//
//  1. Added tokens (added_tokens: <|endoftext|>, <|im_start|>, ...) are cut
//     out of the text first and become their ids; those with
//     "normalized": true are looked for after normalization, the others
//     before it. Where several match, the leftmost and then the longest wins.
//     lstrip and rstrip take the whitespace beside a token into it.
//  2. The normalizer (none, NFC, NFD, NFKC, NFKD, or a Sequence of them)
//     rewrites the rest of the text.
//  3. The pre-tokenizer splits each piece into words: a Split with one of the
//     supported regexes, then ByteLevel, which may add a space in front of
//     each piece (add_prefix_space) and may split it with GPT-2's pattern
//     (use_regex). The supported regexes are GPT-2's, Llama-3's (tiktoken's
//     cl100k_base) and Qwen2's, each implemented as a hand-written scanner,
//     since Go's regexp lacks the lookahead they use.
//  4. Each word, spelled in GPT-2's byte-to-unicode alphabet, is encoded by
//     the model: merges applied lowest rank first, leftmost first among equal
//     ranks, or, with ignore_merges, the word's own id when the vocabulary
//     has it. Word encodings are cached.
//
// Text that is not valid UTF-8, which Hugging Face cannot take, encodes as
// its bytes with invalid bytes counted as symbols, and Decode gives the
// bytes back; Hugging Face's decode would replace invalid UTF-8 in its output
// with U+FFFD, hiddenlab's returns the bytes. Decode(Encode(s)) == s for
// every s when the tokenizer has no normalizer and no add_prefix_space;
// otherwise Decode gives the normalized text with the added spaces, as
// Hugging Face's does.
//
// The post-processor does not change Encode; WithSpecialTokens applies its
// TemplateProcessing (or RobertaProcessing/BertProcessing) template for one
// sequence. Truncation and padding settings are ignored. EOT is the id of
// the first of <|endoftext|>, <|end_of_text|>, </s> and <eos> that the file
// has; the literal EndOfText in a text becomes EOT only when it is one of the
// file's added tokens (GPT-2, GPT-NeoX and Qwen2 have it; Llama-3 writes its
// own <|end_of_text|>).
//
// Not supported, and refused by LoadHF with an error that names the file and
// the field: models other than BPE (WordPiece, Unigram, WordLevel), BPE
// with byte_fallback, dropout, a continuing_subword_prefix or an
// end_of_word_suffix (SentencePiece-style BPE such as Llama-2's), a
// vocabulary without all 256 byte-level symbols, pre-tokenizers other than
// ByteLevel and Split (Metaspace, Whitespace, Digits, ...), a Split with
// another regex, a String pattern, invert or a behavior other than Isolated,
// decoders other than ByteLevel, normalizers other than the Unicode
// normal forms, post-processors other than ByteLevel, TemplateProcessing,
// RobertaProcessing and BertProcessing, and added tokens with single_word.
//
// An HF is safe for concurrent use.
type HF struct {
	added []HFAddedToken
	// Added tokens looked for before normalization (raw) and after it
	// (norm); the tries give indexes into rawIdx and normIdx, which give
	// indexes into added.
	rawTrie, normTrie *tokenTrie
	rawIdx, normIdx   []int

	normalizers []norm.Form // applied in order
	steps       []preStep   // the pre-tokenizer, step by step

	byteIDs      [256]int32         // id of each byte's symbol
	ranks        map[uint64]hfMerge // pairKey(a, b) -> the merge of a and b
	ignoreMerges bool
	wordIDs      map[string]int32 // raw bytes -> id of the model's tokens spelled in byte-level characters

	vocab     []string // id -> token as the file spells it; "" where no token has the id
	decoded   []string // id -> the bytes Decode gives for it
	known     []bool   // id -> whether any token has it
	eot       int32
	templPre  []int32 // WithSpecialTokens' ids before the text's
	templPost []int32 // and after

	file hfSaved // what SaveHF writes back

	mu    sync.Mutex
	cache map[string][]int32 // word -> its ids
}

// HFAddedToken is one entry of a tokenizer.json's added_tokens.
type HFAddedToken struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// hfMerge is a merge: its rank and the id it makes.
type hfMerge struct{ rank, id int32 }

// preStep is one step of the pre-tokenizer: an optional space in front of
// each piece, then a split of it with scan (none if nil).
type preStep struct {
	addPrefixSpace bool
	scan           scanner
	byteLevel      bool // a ByteLevel pre-tokenizer, not a Split
}

// hfSaved is what SaveHF needs beyond the vocabulary: the components as the
// file had them, and the model's settings.
type hfSaved struct {
	normalizer, preTokenizer, postProcessor, decoder json.RawMessage
	unkToken                                         json.RawMessage
	fuseUnk                                          bool
	merges                                           [][2]string // in rank order
	modelVocab                                       []string    // id -> the model's token
	inModel                                          []bool      // id -> whether the model has a token with it
}

// VocabSize returns one more than the largest id of the model's vocabulary
// and the added tokens. Ids below it that no token has decode to U+FFFD.
func (t *HF) VocabSize() int { return len(t.vocab) }

// EOT returns the id of the end-of-text token (see HF).
func (t *HF) EOT() int32 { return t.eot }

// Name returns "hf".
func (t *HF) Name() string { return "hf" }

// AddedTokens returns a copy of the added tokens in id order.
func (t *HF) AddedTokens() []HFAddedToken { return slices.Clone(t.added) }

// Token returns the token of id as the file spells it (byte-level
// characters for the model's tokens) and whether some token has that id.
func (t *HF) Token(id int32) (string, bool) {
	if id < 0 || int(id) >= len(t.vocab) || !t.known[id] {
		return "", false
	}
	return t.vocab[id], true
}

// TokenID returns the id of the token the file spells as tok: an added
// token's content, or a model token in byte-level characters ("Ġthe").
func (t *HF) TokenID(tok string) (int32, bool) {
	for _, a := range t.added {
		if a.Content == tok {
			return a.ID, true
		}
	}
	if raw, ok := fromByteLevel(tok); ok {
		if id, ok := t.wordIDs[raw]; ok {
			return id, true
		}
	}
	for id, v := range t.vocab {
		if v == tok && t.known[id] {
			return int32(id), true
		}
	}
	return 0, false
}

// WithSpecialTokens returns ids with the post-processor's special tokens for
// a single sequence around them (Llama-3's <|begin_of_text|> in front,
// RoBERTa's <s> and </s>, nothing for GPT-2), as Hugging Face's encode does
// with add_special_tokens=True.
func (t *HF) WithSpecialTokens(ids []int32) []int32 {
	out := make([]int32, 0, len(t.templPre)+len(ids)+len(t.templPost))
	out = append(out, t.templPre...)
	out = append(out, ids...)
	return append(out, t.templPost...)
}

// Encode returns the ids of text, as Hugging Face's encode with
// add_special_tokens=False.
func (t *HF) Encode(text string) []int32 {
	ids := make([]int32, 0, len(text)/3+1)
	t.splitAdded(text, t.rawTrie, t.rawIdx, func(piece string, tok int) {
		if tok >= 0 {
			ids = append(ids, t.added[tok].ID)
			return
		}
		for _, f := range t.normalizers {
			piece = f.String(piece)
		}
		t.splitAdded(piece, t.normTrie, t.normIdx, func(piece string, tok int) {
			if tok >= 0 {
				ids = append(ids, t.added[tok].ID)
				return
			}
			t.pretokenize(0, piece, func(word string) { ids = t.appendWord(ids, word) })
		})
	})
	return ids
}

// splitAdded calls yield with the pieces of s between the added tokens that
// trie finds, tok -1, and with each token, tok its index in t.added.
func (t *HF) splitAdded(s string, trie *tokenTrie, idx []int, yield func(piece string, tok int)) {
	if trie.empty() {
		if s != "" {
			yield(s, -1)
		}
		return
	}
	done, from := 0, 0 // s[:done] is yielded; look for tokens from s[from:]
	for {
		start, end, k := trie.find(s, from)
		if k < 0 {
			break
		}
		from = end
		tok := idx[k]
		if t.added[tok].LStrip {
			start = max(start-trailingSpaceLen(s[:start]), done)
		}
		if t.added[tok].RStrip {
			end += leadingSpaceLen(s[end:])
		}
		start = max(start, done)
		if done < start {
			yield(s[done:start], -1)
		}
		yield(s[start:end], tok)
		done = end
		from = max(from, done)
	}
	if done < len(s) {
		yield(s[done:], -1)
	}
}

// trailingSpaceLen returns the byte length of the whitespace that ends s.
func trailingSpaceLen(s string) int {
	n := len(s)
	for n > 0 {
		r, w := utf8.DecodeLastRuneInString(s[:n])
		if !unicode.IsSpace(r) {
			break
		}
		n -= w
	}
	return len(s) - n
}

// leadingSpaceLen returns the byte length of the whitespace that starts s.
func leadingSpaceLen(s string) int {
	n := 0
	for n < len(s) {
		r, w := utf8.DecodeRuneInString(s[n:])
		if !unicode.IsSpace(r) {
			break
		}
		n += w
	}
	return n
}

// pretokenize runs the pre-tokenizer's steps from step k on s and calls
// yield with each word.
func (t *HF) pretokenize(k int, s string, yield func(word string)) {
	if s == "" {
		return // as Hugging Face drops empty pieces, even with add_prefix_space
	}
	if k == len(t.steps) {
		yield(s)
		return
	}
	st := t.steps[k]
	if st.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if st.scan == nil {
		t.pretokenize(k+1, s, yield)
		return
	}
	for len(s) > 0 {
		n := st.scan(s)
		t.pretokenize(k+1, s[:n], yield)
		s = s[n:]
	}
}

// appendWord appends the ids of word, a piece of raw text, to ids.
func (t *HF) appendWord(ids []int32, word string) []int32 {
	if len(word) == 1 {
		return append(ids, t.byteIDs[word[0]])
	}
	if t.ignoreMerges {
		if id, ok := t.wordIDs[word]; ok {
			return append(ids, id)
		}
	}
	if len(word) > maxCachedChunk {
		return append(ids, t.encodeWord(word)...)
	}
	t.mu.Lock()
	enc, ok := t.cache[word]
	t.mu.Unlock()
	if !ok {
		enc = t.encodeWord(word)
		t.mu.Lock()
		if len(t.cache) >= maxCacheChunks {
			clear(t.cache)
		}
		t.cache[strings.Clone(word)] = enc
		t.mu.Unlock()
	}
	return append(ids, enc...)
}

// encodeWord applies the merges to the bytes of word as BPE.encodeChunk
// does, with the ids and ranks of the file: the candidate merges wait in a
// heap ordered by (rank, position).
func (t *HF) encodeWord(word string) []int32 {
	n := len(word)
	ids := make([]int32, n)  // symbol at each start position; -1 once merged into its left neighbour
	next := make([]int32, n) // start of the next symbol, n at the end
	prev := make([]int32, n) // start of the previous symbol, -1 at the start
	var h candHeap
	for i := range n {
		ids[i] = t.byteIDs[word[i]]
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	for i := 0; i+1 < n; i++ {
		if m, ok := t.ranks[pairKey(ids[i], ids[i+1])]; ok {
			h = append(h, cand{m.rank, int32(i)})
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
		m, ok := t.ranks[pairKey(ids[i], ids[j])]
		if !ok || m.rank != c.rank {
			continue // stale: a neighbour changed since the candidate was pushed
		}
		ids[i] = m.id
		ids[j] = -1
		next[i] = next[j]
		if k := next[i]; int(k) < n {
			prev[k] = i
			if m, ok := t.ranks[pairKey(ids[i], ids[k])]; ok {
				heap.Push(&h, cand{m.rank, i})
			}
		}
		if p := prev[i]; p >= 0 {
			if m, ok := t.ranks[pairKey(ids[p], ids[i])]; ok {
				heap.Push(&h, cand{m.rank, p})
			}
		}
	}
	out := make([]int32, 0, n)
	for i := int32(0); int(i) < n; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

// Decode returns the text of ids as Hugging Face's ByteLevel decoder gives
// it, special tokens included: a token gives the bytes its characters spell
// in GPT-2's byte-to-unicode alphabet, or its own UTF-8 bytes if it has
// characters outside that alphabet (an added token such as "  " or
// "<|im_start|>", which spells itself either way). An id that no token has
// decodes to U+FFFD. Unlike Hugging Face's, the result is not made valid
// UTF-8: ids that split a character give its bytes back when put together.
func (t *HF) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.decoded) && t.known[id] {
			b.WriteString(t.decoded[id])
		} else {
			b.WriteRune('\uFFFD')
		}
	}
	return b.String()
}
