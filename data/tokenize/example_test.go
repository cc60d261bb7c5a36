package tokenize_test

import (
	"fmt"

	"hiddenlab/data/tokenize"
)

func ExampleTrainBPE() {
	// (a,b) is the most frequent pair, then (' ',ab).
	bpe, err := tokenize.TrainBPE([]byte("ab ab ab abc"), 259, tokenize.BPEOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := bpe.Encode("ab abc" + tokenize.EndOfText)
	fmt.Println(bpe.Merges(), ids, bpe.Decode(ids))
	// Output: [[97 98] [32 257]] [257 258 99 256] ab abc<|endoftext|>
}

func ExampleByte() {
	var tok tokenize.Byte
	ids := tok.Encode("hé" + tokenize.EndOfText)
	fmt.Println(ids, tok.VocabSize())
	// Output: [104 195 169 256] 257
}
