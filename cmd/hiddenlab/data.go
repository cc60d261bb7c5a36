package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/models/lm"
)

// dataCmd is "hiddenlab data": prepare datasets.
func dataCmd() *cobra.Command {
	c := &cobra.Command{
		Use:                        "data <verb>",
		Short:                      "Prepare datasets: pretokenize",
		Args:                       subcommandArgs("verb"),
		RunE:                       unreachable,
		SuggestionsMinimumDistance: 2,
	}
	pre := &cobra.Command{
		Use:   "pretokenize <corpus.txt> <tokenizer file> <out.bin>",
		Short: "Tokenize a text corpus once into a memory-mappable .bin of token ids",
		Long: `Pretokenize encodes a text file with a tokenizer file (a Hugging Face
tokenizer.json, e.g. an imported run's, or hiddenlab's own tokenizer file) and
writes the ids to <out.bin>: uint16 when the vocabulary has at most 65536 ids,
else uint32, after a 24-byte header, as nanoGPT's .bin files; <out.bin>.json
beside it names the tokenizer (path and SHA-256), the id type and the source.
A recipe trains on it with data.text.train: <out.bin> (valid may be a .bin
too): the ids are memory-mapped, not re-tokenized, and a run sees the same
batches and losses as from the text with the same tokenizer. The tokenizer is
the sidecar's unless the recipe names one (which must be the same file).`,
		Example: "  hiddenlab data pretokenize third_party/tinystories/train_sample_2MiB.txt runs/imported/tokenizer.json data/tinystories.bin\n  hiddenlab run gpt-tinystories.yaml data.text.train=data/tinystories.bin",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 3 {
				return usagef("want <corpus.txt> <tokenizer file> <out.bin> (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			m, err := lm.Pretokenize(args[0], args[1], args[2])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %d %s ids (vocabulary %d, %s tokenizer) to %s\n", m.Count, m.DType, m.VocabSize, m.TokenizerName, args[2])
			return nil
		},
	}
	c.AddCommand(pre)
	return c
}
