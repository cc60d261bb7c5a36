package interp

import (
	"bytes"
	"regexp"
	"sort"
)

// MatchPositions marks the tokens a regex feature covers: it runs re over the
// concatenated token texts (tokens[i] is the decoded text of token i) and
// marks every token that shares a byte with a non-empty match. If re has a
// capturing group, the span of group 1 counts instead of the whole match, so
// a pattern can select part of its context (Go's regexp has no lookbehind):
// `4(0)` marks the token holding that 0. Tokens are found by binary search
// over the cumulative token lengths, as in the reference's code search.
func MatchPositions(tokens [][]byte, re *regexp.Regexp) []bool {
	return markMatches(tokens, re, false)
}

// MatchStarts is MatchPositions under the reference repository's rule: only
// the token holding the first byte of each match (or of group 1) is marked,
// so a match spanning several tokens marks one position.
func MatchStarts(tokens [][]byte, re *regexp.Regexp) []bool {
	return markMatches(tokens, re, true)
}

// markMatches implements MatchPositions and MatchStarts.
func markMatches(tokens [][]byte, re *regexp.Regexp, startOnly bool) []bool {
	out := make([]bool, len(tokens))
	ends := make([]int, len(tokens)) // ends[i]: offset just past token i
	off := 0
	for i, t := range tokens {
		off += len(t)
		ends[i] = off
	}
	group := 0
	if re.NumSubexp() > 0 {
		group = 1
	}
	for _, m := range re.FindAllSubmatchIndex(bytes.Join(tokens, nil), -1) {
		start, end := m[2*group], m[2*group+1]
		if start < 0 || start == end {
			continue // group 1 did not take part, or an empty match
		}
		// The first token that ends after start holds byte start.
		i := sort.Search(len(ends), func(i int) bool { return ends[i] > start })
		if startOnly {
			out[i] = true
			continue
		}
		for ; i < len(tokens) && ends[i]-len(tokens[i]) < end; i++ {
			if len(tokens[i]) > 0 {
				out[i] = true
			}
		}
	}
	return out
}
