package tokenize

import (
	"strings"
	"unicode/utf8"
)

// Byte-level BPE (GPT-2's) spells every byte as one printable character, so
// that a vocabulary of strings covers all byte sequences: the bytes '!'..'~',
// '¡'..'¬' and '®'..'ÿ' stand for themselves, and the other 68 bytes, in
// increasing order, for U+0100, U+0101, ... U+0143 (space is 'Ġ', U+0120;
// newline 'Ċ', U+010A).

// byteRune is the character that spells each byte.
var byteRune = func() (t [256]rune) {
	n := rune(0)
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			t[b] = rune(b)
		} else {
			t[b] = 256 + n
			n++
		}
	}
	return t
}()

// runeByte maps a character below 0x144 back to the byte it spells, or -1.
var runeByte = func() (t [0x144]int16) {
	for i := range t {
		t[i] = -1
	}
	for b, r := range byteRune {
		t[r] = int16(b)
	}
	return t
}()

// byteLevel returns s spelled in byte-level characters.
func byteLevel(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteRune[s[i]])
	}
	return b.String()
}

// fromByteLevel returns the bytes that s spells, and false if s has a
// character outside the byte-level alphabet.
func fromByteLevel(s string) (string, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0 || int(r) >= len(runeByte) || runeByte[r] < 0 {
			return "", false
		}
		out = append(out, byte(runeByte[r]))
	}
	return string(out), true
}

// decodeToken is what Hugging Face's ByteLevel decoder turns a token into:
// the bytes it spells if all its characters are byte-level ones, else its
// own UTF-8 bytes (as for an added token such as "  ").
func decodeToken(s string) string {
	if b, ok := fromByteLevel(s); ok {
		return b
	}
	return s
}

// The pre-tokenizer regexes that HF accepts. Go's regexp has no lookahead,
// which all three need for \s+(?!\S), so each is a hand-written scanner that
// returns the length of the regex's leftmost-first match at the start of a
// text; the matches of these patterns tile any text.
const (
	// gpt2Regex is GPT-2's pattern, which a ByteLevel pre-tokenizer with
	// use_regex applies (GPT-2, GPT-NeoX/Pythia, RoBERTa).
	gpt2Regex = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Regex is Llama-3's pattern (tiktoken's cl100k_base).
	llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwen2Regex is Qwen2's: Llama-3's with single digits.
	qwen2Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// scanner returns the byte length of the first piece of s, which is not
// empty.
type scanner func(s string) int

// scanners maps each supported regex to its scanner.
var scanners = map[string]scanner{
	gpt2Regex:   chunkLen,
	llama3Regex: func(s string) int { return cl100kLen(s, 3) },
	qwen2Regex:  func(s string) int { return cl100kLen(s, 1) },
}

// cl100kLen is the scanner of llama3Regex when maxDigits is 3 and of
// qwen2Regex when it is 1. Character classes are those of chunkLen: \p{L}
// letters, \p{N} numbers, \s Unicode White_Space (as Oniguruma's \s, which
// HF's Rust library uses), and bytes that are not UTF-8 count as other
// characters.
func cl100kLen(s string, maxDigits int) int {
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if s[0] == '\'' {
		if n := contractionLen(s[1:]); n > 0 {
			return 1 + n
		}
	}
	c0, w0 := firstClass(s)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0 == classLetter {
		return w0 + span(s[w0:], classLetter)
	}
	if c0 != classNumber && s[0] != '\r' && s[0] != '\n' && w0 < len(s) {
		if c1, w1 := firstClass(s[w0:]); c1 == classLetter {
			return w0 + w1 + span(s[w0+w1:], classLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if c0 == classNumber {
		n := w0
		for k := 1; k < maxDigits && n < len(s); k++ {
			c, w := firstClass(s[n:])
			if c != classNumber {
				break
			}
			n += w
		}
		return n
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	lead := 0
	if s[0] == ' ' && len(s) > 1 {
		if c1, _ := firstClass(s[1:]); c1 == classOther {
			lead = 1
		}
	}
	if c, w := firstClass(s[lead:]); c == classOther {
		n := lead + w + span(s[lead+w:], classOther)
		for n < len(s) && (s[n] == '\r' || s[n] == '\n') {
			n++
		}
		return n
	}
	// s starts with whitespace other than a space before a non-space.
	ws := span(s, classSpace)
	// \s*[\r\n]+ backtracks to the last \r or \n of the run.
	if j := strings.LastIndexAny(s[:ws], "\r\n"); j >= 0 {
		return j + 1
	}
	// \s+(?!\S) leaves the last character of a run before a non-space,
	// unless it is the only one; \s+ takes the whole run.
	if ws == len(s) {
		return ws
	}
	if _, last := utf8.DecodeLastRuneInString(s[:ws]); ws > last {
		return ws - last
	}
	return ws
}

// contractionLen returns the length of the contraction suffix that starts
// t ("s", "re", ...) matched case-insensitively, or 0. Like Oniguruma's (?i),
// it folds U+017F (ſ, long s) to s.
func contractionLen(t string) int {
	if strings.HasPrefix(t, "ſ") {
		return len("ſ")
	}
	if len(t) == 0 {
		return 0
	}
	switch asciiLower(t[0]) {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(t) >= 2 && asciiLower(t[1]) == 'e' {
			return 2
		}
	case 'l':
		if len(t) >= 2 && asciiLower(t[1]) == 'l' {
			return 2
		}
	}
	return 0
}

func asciiLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// tokenTrie finds added tokens in a text: the leftmost match, and of the
// matches there the longest, as Hugging Face's Aho-Corasick automaton with
// MatchKind::LeftmostLongest does.
type tokenTrie struct {
	nodes []trieNode
	first [256]bool // bytes that start some token
}

type trieNode struct {
	next  map[byte]int32
	token int32 // index of the token that ends here, or -1
}

func newTokenTrie() *tokenTrie {
	return &tokenTrie{nodes: []trieNode{{token: -1}}}
}

// add adds token number idx with content s, which is not empty.
func (t *tokenTrie) add(s string, idx int) {
	n := int32(0)
	for i := 0; i < len(s); i++ {
		next, ok := t.nodes[n].next[s[i]]
		if !ok {
			if t.nodes[n].next == nil {
				t.nodes[n].next = map[byte]int32{}
			}
			next = int32(len(t.nodes))
			t.nodes[n].next[s[i]] = next
			t.nodes = append(t.nodes, trieNode{token: -1})
		}
		n = next
	}
	t.nodes[n].token = int32(idx)
	t.first[s[0]] = true
}

func (t *tokenTrie) empty() bool { return len(t.nodes) == 1 }

// find returns the leftmost-longest match in s at or after from: its start,
// end and token index, or idx -1.
func (t *tokenTrie) find(s string, from int) (start, end, idx int) {
	for i := from; i < len(s); i++ {
		if !t.first[s[i]] {
			continue
		}
		n, best, bestEnd := int32(0), int32(-1), 0
		for j := i; j < len(s); j++ {
			next, ok := t.nodes[n].next[s[j]]
			if !ok {
				break
			}
			n = next
			if t.nodes[n].token >= 0 {
				best, bestEnd = t.nodes[n].token, j+1
			}
		}
		if best >= 0 {
			return i, bestEnd, int(best)
		}
	}
	return len(s), len(s), -1
}
