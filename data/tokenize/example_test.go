package tokenize_test

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/data/tokenize"
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

func ExampleLoadHF() {
	// GPT-2's tokenizer.json (gzip-compressed), built from its real
	// vocabulary and merges by scripts/oracles.
	tok, err := tokenize.LoadHF("testdata/hf/gpt2.tokenizer.json.gz")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := tok.Encode("Hello world, it's 2024!" + tokenize.EndOfText)
	fmt.Println(ids)
	fmt.Printf("%q\n", tok.Decode(ids))
	fmt.Println(tok.VocabSize(), tok.EOT(), tok.Name())
	// Output:
	// [15496 995 11 340 338 48609 0 50256]
	// "Hello world, it's 2024!<|endoftext|>"
	// 50257 50256 hf
}
