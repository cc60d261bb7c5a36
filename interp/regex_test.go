package interp

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func toks(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// marked returns the indices set in b.
func marked(b []bool) []int {
	out := []int{}
	for i, v := range b {
		if v {
			out = append(out, i)
		}
	}
	return out
}

func TestMatchPositions(t *testing.T) {
	story := toks("Once", " upon", " a", " time", ",", " in", " 2019", " or", " 20", "21", ".")
	digits := toks("3", "7", "4", "0", "4", "0", "1", "4")
	tests := []struct {
		name      string
		tokens    [][]byte
		re        string
		positions []int // MatchPositions
		starts    []int // MatchStarts
	}{
		{"years, one spanning two tokens", story, `20\d\d`, []int{6, 8, 9}, []int{6, 8}},
		{"group 1 selects the span", story, `a (time)`, []int{3}, []int{3}},
		{"match across a boundary", story, `a time`, []int{2, 3}, []int{2}},
		{"second digit of state 40", digits, `4(0)`, []int{3, 5}, []int{3, 5}},
		{"non-capturing group is not group 1", digits, `(?:4)0`, []int{2, 3, 4, 5}, []int{2, 4}},
		{"empty matches mark nothing", story, `x*`, []int{}, []int{}},
		{"group 1 absent from the match", story, `(zzz)?upon`, []int{}, []int{}},
		{"no match", story, `dragon`, []int{}, []int{}},
		{"empty token is skipped", toks("a", "", "b"), `ab`, []int{0, 2}, []int{0}},
		{"no tokens", nil, `a`, []int{}, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := regexp.MustCompile(tt.re)
			pos := MatchPositions(tt.tokens, re)
			require.Len(t, pos, len(tt.tokens))
			require.Equal(t, tt.positions, marked(pos))
			require.Equal(t, tt.starts, marked(MatchStarts(tt.tokens, re)))
		})
	}
}
