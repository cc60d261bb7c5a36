package reasoning

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTokenIDsStable pins every id: the ids are part of the checkpoint format.
func TestTokenIDsStable(t *testing.T) {
	want := map[string]int32{
		"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9,
		"+": 10, "-": 11, "*": 12, ";": 13, "?": 14, "####": 15,
		"BOS": 16, "EOS": 17, "PAD": 18,
		"A": 19, "B": 20, "C": 21, "D": 22, "E": 23, "F": 24,
		"G": 25, "H": 26, "I": 27, "J": 28, "K": 29, "L": 30,
		"start": 31, "hops": 32,
	}
	var v Vocab
	require.Equal(t, VocabSize, v.Size())
	require.Len(t, want, VocabSize)
	for tok, id := range want {
		got, ok := v.ID(tok)
		require.True(t, ok, tok)
		require.Equal(t, id, got, tok)
		require.Equal(t, tok, v.Token(id))
	}
	require.Equal(t, []int32{BOS, EOS, PAD, Delim}, []int32{v.BOS(), v.EOS(), v.PAD(), v.Delim()})
	require.Equal(t, int32(30), Symbol(NumSymbols-1))
	for id := range int32(VocabSize) {
		require.Equal(t, id <= 9, IsDigit(id), id)
		require.Equal(t, id >= 19 && id <= 30, IsSymbol(id), id)
	}
}

func TestEncodeDecode(t *testing.T) {
	var v Vocab
	tests := []struct {
		text string
		ids  []int32
	}{
		{"BOS 3 ; + 4 ; * 2 ?", []int32{16, 3, 13, 10, 4, 13, 12, 2, 14}},
		{"7 4 #### 4 EOS PAD", []int32{7, 4, 15, 4, 17, 18}},
		{"BOS A C ; start A hops 1 0 ?", []int32{16, 19, 21, 13, 31, 19, 32, 1, 0, 14}},
		{"", []int32{}},
	}
	for _, tc := range tests {
		ids, err := v.Parse(tc.text)
		require.NoError(t, err, tc.text)
		require.Equal(t, tc.ids, ids, tc.text)
		require.Equal(t, tc.text, v.String(ids))
	}

	_, err := v.Encode([]string{"BOS", "3", "x"})
	require.EqualError(t, err, `reasoning: unknown token "x" at position 2`)
	_, err = v.Parse("M")
	require.ErrorContains(t, err, `unknown token "M"`)
	require.Equal(t, []string{"EOS", "<33?>", "<-1?>"}, v.Decode([]int32{17, 33, -1}))
	require.Equal(t, []int32{1, 0, 7}, appendNumber(nil, 107))
}
