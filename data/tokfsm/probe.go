package tokfsm

import (
	"strconv"
	"strings"
)

// Probe is one probing input of the code-purity experiment: BOS, the digits
// of State and, for a trigram, Digit, the first digit of one of State's
// successors. A model reads Tokens and its codes at the last position are
// grouped by input.
type Probe struct {
	Tokens []int32 // BOS and the digits
	State  int     // the state spelled after BOS
	Digit  int     // first digit of a successor of State; -1 for a bigram
	Label  string  // the digits without BOS, as the reference names inputs: "07", "073"
}

// Bigrams returns one probe per state, in state order: BOS and the state's
// digits (the reference's length-Digits inputs).
func (f *FSM) Bigrams() []Probe {
	out := make([]Probe, 0, f.cfg.States)
	for s := range f.cfg.States {
		toks := append([]int32{f.BOS()}, f.digitsOf(s)...)
		out = append(out, Probe{Tokens: toks, State: s, Digit: -1, Label: f.label(toks[1:])})
	}
	return out
}

// Trigrams returns one probe per state and distinct first digit of its
// successors, ordered by state then digit: BOS, the state's digits and that
// digit (the reference's valid length-Digits+1 inputs; the paper's machine
// has 686 of them, the number of possible state-plus-digit codes).
func (f *FSM) Trigrams() []Probe {
	var out []Probe
	for s, succ := range f.succ {
		last := int32(-1)
		for _, t := range succ {
			dig := f.digitsOf(t)[0]
			if dig == last {
				continue // successors are sorted, so equal first digits are adjacent
			}
			last = dig
			toks := append(append([]int32{f.BOS()}, f.digitsOf(s)...), dig)
			out = append(out, Probe{Tokens: toks, State: s, Digit: int(dig), Label: f.label(toks[1:])})
		}
	}
	return out
}

// label spells digit tokens as text: one character each for bases up to 36,
// dot-separated numbers beyond.
func (f *FSM) label(digits []int32) string {
	const chars = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	for i, d := range digits {
		if f.cfg.Base <= len(chars) {
			b.WriteByte(chars[d])
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(int(d)))
	}
	return b.String()
}
