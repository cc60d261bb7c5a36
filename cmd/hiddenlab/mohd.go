package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sort"

	"hiddenlab/models/mohd" // registers the mohd family
	"hiddenlab/torch"
)

func init() { commands["mohd"] = cmdMoHD }

// cmdMoHD runs the MoHD tools:
//
//	hiddenlab mohd analyze [-seqs 16] [-seed 1] [-threads 1] <run dir> ...
//
// analyze rebuilds each run's model (mohd or gpt family) from its
// recipe.yaml and latest checkpoint, measures the activation flow and the
// routers' health on held-out sequences, and writes mohd_analysis.md,
// mohd_analysis.json and plots/mohd_*.png into the run directory.
func cmdMoHD(args []string) error {
	if len(args) == 0 || args[0] != "analyze" {
		return errors.New("mohd: usage: hiddenlab mohd analyze [-seqs 16] [-seed 1] [-threads 1] <run dir> ...")
	}
	fs := flag.NewFlagSet("mohd analyze", flag.ContinueOnError)
	seqs := fs.Int("seqs", 16, "held-out sequences to trace")
	seed := fs.Uint64("seed", 1, "seed of the random token pairs")
	threads := fs.Int("threads", 1, "libtorch threads")
	dirs, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return errors.New("mohd analyze: name at least one run directory")
	}
	if *seqs < 2 {
		return fmt.Errorf("mohd analyze: -seqs %d: need at least 2 sequences", *seqs)
	}
	if err := torch.SetNumThreads(*threads); err != nil {
		return err
	}
	for _, dir := range dirs {
		a, err := mohd.AnalyzeRun(dir, *seqs, *seed)
		if err != nil {
			return fmt.Errorf("mohd analyze %s: %w", dir, err)
		}
		sum := a.Summary()
		keys := make([]string, 0, len(sum))
		for k := range sum {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Printf("%s\n", a.Model)
		for _, k := range keys {
			fmt.Printf("  %-26s %.4f\n", k, sum[k])
		}
		fmt.Printf("  report: %s (plots in %s)\n", filepath.Join(dir, "mohd_analysis.md"), filepath.Join(dir, "plots"))
	}
	return nil
}
