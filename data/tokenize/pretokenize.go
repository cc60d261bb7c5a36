package tokenize

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenization splits text into chunks before BPE, so that merges never
// cross a chunk boundary. The rules are GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// applied leftmost-first: an English contraction; else an optional space and
// a run of letters, of digits, or of other non-space characters; else a run
// of whitespace that leaves its last character to the chunk after it (so a
// word keeps its leading space). Bytes that are not valid UTF-8 count as
// other characters. The chunks of a text concatenate back to the text.

// Character classes of the pre-tokenizer.
const (
	classOther = iota
	classLetter
	classNumber
	classSpace
)

// asciiClass is the class of each ASCII byte.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range utf8.RuneSelf {
		t[c] = uint8(runeClass(rune(c)))
	}
	return t
}()

func runeClass(r rune) int {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther // including utf8.RuneError for invalid bytes
}

// firstClass returns the class and byte width of the first character of s,
// which is not empty.
func firstClass(s string) (class, width int) {
	if c := s[0]; c < utf8.RuneSelf {
		return int(asciiClass[c]), 1
	}
	r, w := utf8.DecodeRuneInString(s)
	return runeClass(r), w
}

// span returns the byte length of the longest prefix of s whose characters
// are all of class.
func span(s string, class int) int {
	n := 0
	for n < len(s) {
		c, w := firstClass(s[n:])
		if c != class {
			break
		}
		n += w
	}
	return n
}

// chunkLen returns the byte length of the first chunk of s, which is not empty.
func chunkLen(s string) int {
	if s[0] == '\'' && len(s) >= 2 {
		switch s[1] {
		case 's', 't', 'm', 'd':
			return 2
		}
		if len(s) >= 3 {
			switch s[1:3] {
			case "re", "ve", "ll":
				return 3
			}
		}
	}
	lead := 0
	if s[0] == ' ' && len(s) > 1 {
		if c, _ := firstClass(s[1:]); c != classSpace {
			lead = 1 // the space joins the run after it
		}
	}
	c, w := firstClass(s[lead:])
	if c != classSpace {
		return lead + w + span(s[lead+w:], c)
	}
	n := span(s, classSpace)
	if n == len(s) {
		return n
	}
	// Whitespace before a non-space character: the last whitespace
	// character starts the next chunk, unless it is the only one.
	if _, last := utf8.DecodeLastRuneInString(s[:n]); n > last {
		return n - last
	}
	return n
}

// chunks calls yield with each pre-tokenization chunk of s in order.
func chunks(s string, yield func(chunk string)) {
	for len(s) > 0 {
		n := chunkLen(s)
		yield(s[:n])
		s = s[n:]
	}
}
