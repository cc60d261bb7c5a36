package reasoning

import (
	"fmt"
	"strconv"
	"strings"
)

// Token ids. They are part of the checkpoint format: never renumber them.
// A digit d has id d, so for ModChain a value and its token id coincide.
const (
	Digit0  int32 = 0  // "0"; digit d is Digit0+d, d = 0..9
	Plus    int32 = 10 // "+"
	Minus   int32 = 11 // "-"
	Times   int32 = 12 // "*", written × in the brief
	Sep     int32 = 13 // ";"
	Query   int32 = 14 // "?", the last prompt token
	Delim   int32 = 15 // "####", ends the think span
	BOS     int32 = 16 // "BOS"
	EOS     int32 = 17 // "EOS"
	PAD     int32 = 18 // "PAD"
	SymbolA int32 = 19 // "A"; symbol i (0..11) is SymbolA+i, "A".."L"
	Start   int32 = 31 // "start"
	Hops    int32 = 32 // "hops"
)

const (
	// VocabSize is the number of token ids, 0..VocabSize-1.
	VocabSize = 33
	// NumSymbols is the number of HopChain symbols, A..L.
	NumSymbols = 12
)

var tokens = [VocabSize]string{
	"0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
	"+", "-", "*", ";", "?", "####", "BOS", "EOS", "PAD",
	"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L",
	"start", "hops",
}

var tokenIDs = func() map[string]int32 {
	m := make(map[string]int32, VocabSize)
	for id, s := range tokens {
		m[s] = int32(id)
	}
	return m
}()

// Vocab is the fixed token set shared by ModChain and HopChain. Its zero
// value is ready to use; the ids are the package constants ([Digit0] …
// [Hops]).
type Vocab struct{}

// Size returns the number of tokens, [VocabSize].
func (Vocab) Size() int { return VocabSize }

// BOS returns the id of the begin-of-sequence token.
func (Vocab) BOS() int32 { return BOS }

// EOS returns the id of the end-of-sequence token.
func (Vocab) EOS() int32 { return EOS }

// PAD returns the id of the padding token.
func (Vocab) PAD() int32 { return PAD }

// Delim returns the id of the answer delimiter "####".
func (Vocab) Delim() int32 { return Delim }

// Token returns the text of id, or "<id?>" for an id outside the vocabulary.
func (Vocab) Token(id int32) string {
	if id < 0 || id >= VocabSize {
		return "<" + strconv.Itoa(int(id)) + "?>"
	}
	return tokens[id]
}

// ID returns the id of the token text tok.
func (Vocab) ID(tok string) (int32, bool) {
	id, ok := tokenIDs[tok]
	return id, ok
}

// Encode maps token texts to ids. It fails on the first unknown token.
func (v Vocab) Encode(toks []string) ([]int32, error) {
	ids := make([]int32, len(toks))
	for i, s := range toks {
		id, ok := v.ID(s)
		if !ok {
			return nil, fmt.Errorf("reasoning: unknown token %q at position %d", s, i)
		}
		ids[i] = id
	}
	return ids, nil
}

// Parse encodes a space-separated token string such as "BOS 3 ; + 4 ?".
func (v Vocab) Parse(s string) ([]int32, error) {
	return v.Encode(strings.Fields(s))
}

// Decode maps ids to token texts; unknown ids decode as "<id?>".
func (v Vocab) Decode(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = v.Token(id)
	}
	return out
}

// String renders ids as space-separated token texts, the inverse of Parse.
func (v Vocab) String(ids []int32) string {
	return strings.Join(v.Decode(ids), " ")
}

// Symbol returns the id of HopChain symbol i (0 for "A" … 11 for "L").
func Symbol(i int) int32 { return SymbolA + int32(i) }

// IsDigit reports whether id is one of the digits 0..9.
func IsDigit(id int32) bool { return id >= Digit0 && id <= Digit0+9 }

// IsSymbol reports whether id is one of the HopChain symbols A..L.
func IsSymbol(id int32) bool { return id >= SymbolA && id < SymbolA+NumSymbols }

// appendNumber appends the decimal digits of n ≥ 0 as digit tokens.
func appendNumber(dst []int32, n int) []int32 {
	for _, c := range strconv.Itoa(n) {
		dst = append(dst, Digit0+int32(c-'0'))
	}
	return dst
}
