package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/hfio"
	"github.com/hiddenlab/hiddenlab/torch"
)

// importCmd is "hiddenlab import": bring models from other formats in.
func importCmd() *cobra.Command {
	c := &cobra.Command{
		Use:                        "import <format>",
		Short:                      "Import a model from another format as a run directory: hf",
		Args:                       subcommandArgs("format"),
		RunE:                       unreachable,
		SuggestionsMinimumDistance: 2,
	}
	var o hfio.Options
	hfc := &cobra.Command{
		Use:   "hf <hf model dir> <run dir>",
		Short: "Import a Hugging Face model directory (gpt2, gpt_neox, gpt_neo, llama, qwen2)",
		Long: `Import reads config.json, model.safetensors (or a sharded
model.safetensors.index.json; f32, f16 or bf16) and tokenizer.json, and writes
a run directory of the gpt family: the resolved recipe, a step-0 checkpoint,
the tokenizer and a summary. Every command that reads runs accepts it; a
recipe trains from it with train.init_from: <run dir> (a recipe may also name
train.init_from: hf:<dir> directly). Nothing is written at <run dir> unless
the import succeeds.`,
		Example: "  hiddenlab import hf ~/models/pythia-70m runs/pythia-70m\n  hiddenlab run codebook-hf.yaml train.init_from=runs/pythia-70m",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("want <hf model dir> <run dir> (got %d arguments)", len(args))
			}
			return checks(intAtLeast(c, "context", 0))
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := hfio.Import(args[0], args[1], o); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "imported %s into %s\n", args[0], args[1])
			return nil
		},
	}
	hfc.Flags().StringVar(&o.Corpus, "corpus", hfio.DefaultCorpus, "data.text.train of the run's recipe")
	hfc.Flags().IntVar(&o.Context, "context", 0, "data.text.context (0: min(model context, 256))")
	hfc.Flags().BoolVar(&o.Force, "force", false, "replace an existing run directory")
	c.AddCommand(hfc)
	return c
}

// exportCmd is "hiddenlab export": write runs out in other formats.
func exportCmd() *cobra.Command {
	c := &cobra.Command{
		Use:                        "export <format>",
		Short:                      "Export a run's model to another format: hf",
		Args:                       subcommandArgs("format"),
		RunE:                       unreachable,
		SuggestionsMinimumDistance: 2,
	}
	var dtype string
	hfc := &cobra.Command{
		Use:   "hf <run dir> <out dir>",
		Short: "Export a gpt or codebook run as a Hugging Face model directory",
		Long: `Export writes config.json, model.safetensors (HF names and layouts),
generation_config.json, tokenizer.json and tokenizer_config.json, so that
AutoModelForCausalLM.from_pretrained(<out dir>) and
AutoTokenizer.from_pretrained(<out dir>) load them. A codebook run exports its
base model; the codebooks go to hiddenlab_extra.safetensors beside it (the
command says so). <out dir> must not exist or be empty.`,
		Example: "  hiddenlab export hf runs/codebook/x exported/codebook-x --dtype bf16",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("want <run dir> <out dir> (got %d arguments)", len(args))
			}
			if _, ok := exportDTypes[dtype]; !ok {
				return usagef("--dtype %q: want f32, bf16 or f16", dtype)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			notes, err := hfio.Export(args[0], args[1], exportDTypes[dtype])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "exported %s to %s\n", args[0], args[1])
			for _, n := range notes {
				fmt.Fprintf(c.OutOrStdout(), "  note: %s\n", n)
			}
			return nil
		},
	}
	hfc.Flags().StringVar(&dtype, "dtype", "f32", "weights' dtype: f32, bf16 or f16")
	c.AddCommand(hfc)
	return c
}

var exportDTypes = map[string]torch.DType{"f32": torch.Float32, "bf16": torch.BFloat16, "f16": torch.Float16}
