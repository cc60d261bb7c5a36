package main

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/models/mohd"
	"github.com/hiddenlab/hiddenlab/torch"
)

// mohdCmd is "hiddenlab mohd": the MoHD tools.
func mohdCmd() *cobra.Command {
	c := &cobra.Command{
		Use:                        "mohd <verb>",
		Short:                      "MoHD tools: analyze",
		Args:                       subcommandArgs("verb"),
		RunE:                       unreachable,
		SuggestionsMinimumDistance: 2,
	}
	var seqs, threads int
	var seed uint64
	analyze := &cobra.Command{
		Use:   "analyze <run dir> ...",
		Short: "Measure the activation flow and the routers' health of runs",
		Long: `Analyze rebuilds each run's model (mohd or gpt family) from its recipe.yaml
and latest checkpoint, measures the activation flow and the routers' health
on held-out sequences, and writes mohd_analysis.md, mohd_analysis.json and
plots/mohd_*.png into the run directory.`,
		Example: "  hiddenlab mohd analyze -seqs 16 runs/mohd/x runs/mohd/y",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("name at least one run directory")
			}
			return checks(intAtLeast(c, "seqs", 2), intAtLeast(c, "threads", 1))
		},
		RunE: func(c *cobra.Command, dirs []string) error {
			w := c.OutOrStdout()
			if err := torch.SetNumThreads(threads); err != nil {
				return err
			}
			for _, dir := range dirs {
				a, err := mohd.AnalyzeRun(dir, seqs, seed)
				if err != nil {
					return fmt.Errorf("mohd analyze %s: %w", dir, err)
				}
				sum := a.Summary()
				keys := make([]string, 0, len(sum))
				for k := range sum {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				fmt.Fprintf(w, "%s\n", a.Model)
				for _, k := range keys {
					fmt.Fprintf(w, "  %-26s %.4f\n", k, sum[k])
				}
				fmt.Fprintf(w, "  report: %s (plots in %s)\n", filepath.Join(dir, "mohd_analysis.md"), filepath.Join(dir, "plots"))
			}
			return nil
		},
	}
	analyze.Flags().IntVar(&seqs, "seqs", 16, "held-out sequences to trace")
	analyze.Flags().Uint64Var(&seed, "seed", 1, "seed of the random token pairs")
	analyze.Flags().IntVar(&threads, "threads", 1, "libtorch threads")
	c.AddCommand(analyze)
	return c
}
