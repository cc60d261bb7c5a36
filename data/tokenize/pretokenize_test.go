package tokenize

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChunks(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"Lily's mom", []string{"Lily", "'s", " mom"}},
		{"I'll they've we're I'm he'd don't", []string{"I", "'ll", " they", "'ve", " we", "'re", " I", "'m", " he", "'d", " don", "'t"}},
		{"  two spaces", []string{" ", " two", " spaces"}},
		{"end.\n\nNext", []string{"end", ".", "\n", "\n", "Next"}},
		{"a  \n b", []string{"a", "  \n", " b"}},
		{"x = 3.14!!", []string{"x", " =", " 3", ".", "14", "!!"}},
		{"abc123def", []string{"abc", "123", "def"}},
		{"café 日本", []string{"café", " 日本"}},
		{"٣٤ and ½", []string{"٣٤", " and", " ½"}},
		{"hi 🎉🎉 yo", []string{"hi", " 🎉🎉", " yo"}},
		{"a\xffb \xfe", []string{"a", "\xff", "b", " \xfe"}},
		{"trailing   ", []string{"trailing", "   "}},
		{"\t\ttab", []string{"\t", "\t", "tab"}},
		{" ", []string{" "}},
		{"'", []string{"'"}},
		{" 's", []string{" '", "s"}},
	}
	for _, tc := range tests {
		var got []string
		chunks(tc.text, func(c string) { got = append(got, c) })
		require.Equal(t, tc.want, got, "%q", tc.text)
	}
}
