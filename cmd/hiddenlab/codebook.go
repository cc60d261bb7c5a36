package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/codebook/codesearch"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
)

// codebookCmd is "hiddenlab codebook": the codebook interpretability tools
// on a run directory.
func codebookCmd() *cobra.Command {
	var threads int
	c := &cobra.Command{
		Use:   "codebook <verb> <run dir> [arguments]",
		Short: "Codebook interpretability tools: cache, top, search, topics",
		Long: `Codebook runs the interpretability tools of the codebook family on a run
directory: a run, a stage, or a staged run (its last codebook stage).
First "cache" runs the model over a dataset and caches every codebook's
codes; the other verbs read that cache. The recipe's data paths are
relative: run from the repository root.`,
		Example: `  hiddenlab codebook cache runs/codebook/20250101-120000 -seqs 256
  hiddenlab codebook top runs/codebook/20250101-120000 blocks.0.attn_preproj[3] 117
  hiddenlab codebook search runs/codebook/20250101-120000 '[0-9]{2}'
  hiddenlab codebook topics runs/codebook-tinystories/x -match dragon -context`,
		Args:                       subcommandArgs("verb"),
		RunE:                       unreachable,
		SuggestionsMinimumDistance: 2,
	}
	c.PersistentFlags().IntVar(&threads, "threads", 0, "libtorch threads (0: the run's train.threads)")
	// verb wraps a verb's work: libtorch threads, then the work on the
	// device goroutine.
	verb := func(name string, work func(c *cobra.Command, dir string, rest []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if err := setRunThreads(args[0], threads); err != nil {
				return err
			}
			var err error
			torch.RunLocked(func() { err = work(c, args[0], args[1:]) })
			if err != nil {
				return fmt.Errorf("codebook %s: %w", name, err)
			}
			return nil
		}
	}
	threadsCheck := func(c *cobra.Command) error { return intAtLeast(c, "threads", 0) }

	var co codesearch.CacheOptions
	cache := &cobra.Command{
		Use:   "cache <run dir>",
		Short: "Run the model over a dataset and cache every codebook's codes",
		Long: `Cache runs the model over held-out sequences (--source valid) or random
training windows (--source train) and caches every codebook's codes into
<run>/codecache, with a usage table and figure.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want <run dir> (got %d arguments)", len(args))
			}
			return checks(threadsCheck(c), oneOf(c, "source", codesearch.SourceValid, codesearch.SourceTrain),
				intAtLeast(c, "seqs", 1), intAtLeast(c, "batch", 1))
		},
		RunE: verb("cache", func(c *cobra.Command, dir string, _ []string) error {
			return codebookCache(c.OutOrStdout(), dir, co)
		}),
	}
	cache.Flags().StringVar(&co.Source, "source", codesearch.SourceValid, "held-out split (valid) or random training windows (train)")
	cache.Flags().IntVar(&co.Seqs, "seqs", 256, "sequences to cache")
	cache.Flags().IntVar(&co.Batch, "batch", 16, "sequences per forward pass")
	cache.Flags().Uint64Var(&co.Seed, "seed", 1, "picks the training windows (--source train)")

	var n, before, after int
	top := &cobra.Command{
		Use:   "top <run dir> <codebook> <code>",
		Short: "Show the contexts where a code fires",
		Long: `Top shows the cached contexts where a code fires and the tokens it fires on.
Codebooks are named blocks.L.attn_preproj[g] (group g of layer L's
attention codebook) or blocks.L.mlp.`,
		Example: "  hiddenlab codebook top runs/codebook/x blocks.0.attn_preproj[3] 117 -n 5",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 3 {
				return usagef("want <run dir> <codebook> <code>, e.g. blocks.0.attn_preproj[3] 117 (got %d arguments)", len(args))
			}
			if code, err := strconv.Atoi(args[2]); err != nil || code < 0 {
				return usagef("code %q: want a non-negative integer", args[2])
			}
			return checks(threadsCheck(c), intAtLeast(c, "n", 1), intAtLeast(c, "before", 0), intAtLeast(c, "after", 0))
		},
		RunE: verb("top", func(c *cobra.Command, dir string, rest []string) error {
			code, _ := strconv.Atoi(rest[1])
			return codebookTop(c.OutOrStdout(), dir, rest[0], code, n, before, after)
		}),
	}
	top.Flags().IntVar(&n, "n", 20, "contexts to show")
	top.Flags().IntVar(&before, "before", 12, "tokens of context before the firing token")
	top.Flags().IntVar(&after, "after", 4, "tokens of context after it")

	var so codesearch.SearchOptions
	var neurons bool
	var png string
	search := &cobra.Command{
		Use:   "search <run dir> <regex> ...",
		Short: "Per-codebook precision and recall of codes for regex features",
		Long: `Search marks the cached positions each regex matches and lists, per
codebook, the codes that best predict them (precision and recall), with the
best single neuron at the same recall for comparison (--neurons, which
reruns the model), and draws a figure.`,
		Example: "  hiddenlab codebook search runs/codebook/x '[0-9]' ' the' -top 3 -neurons=false",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("want <run dir> <regex> ... (got %d arguments)", len(args))
			}
			for _, p := range args[1:] {
				if _, err := regexp.Compile(p); err != nil {
					return usagef("regex %q: %v", p, err)
				}
			}
			return checks(threadsCheck(c), floatIn(c, "min-recall", 0, 1, false), floatIn(c, "min-precision", 0, 1, false), intAtLeast(c, "top", 1))
		},
		RunE: verb("search", func(c *cobra.Command, dir string, rest []string) error {
			return codebookSearch(c.OutOrStdout(), dir, rest, so, neurons, png)
		}),
	}
	search.Flags().Float64Var(&so.MinRecall, "min-recall", 0.01, "keep codes whose recall exceeds this")
	search.Flags().Float64Var(&so.MinPrecision, "min-precision", 0.5, "report codes whose precision exceeds this")
	search.Flags().IntVar(&so.Top, "top", 5, "codes per codebook")
	search.Flags().BoolVar(&so.Starts, "starts", false, "mark only the token holding a match's first byte")
	search.Flags().BoolVar(&neurons, "neurons", true, "compare with the best neuron at the same recall (reruns the model)")
	search.Flags().StringVar(&png, "png", "", "figure path (default <run>/codecache/search.png)")

	var to topicsOptions
	topics := &cobra.Command{
		Use:   "topics <run dir>",
		Short: "List topic codes: codes active on most of a sequence's tokens",
		Long: `Topics lists topic codes: codes active on more than --fraction of a
sequence's tokens, in at least --min-hits cached sequences. --match <regex>
ranks them by precision for the sequences the regex matches; --match with
--context ranks codes for the positions after the regex's first match (the
steering experiment's context method).`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want <run dir> (got %d arguments)", len(args))
			}
			if to.context && to.match == "" {
				return usagef("--context needs --match <regex>")
			}
			if _, err := regexp.Compile("(?i)" + to.match); err != nil {
				return usagef("--match %q: %v", to.match, err)
			}
			return checks(threadsCheck(c), floatIn(c, "fraction", 0, 1, true), intAtLeast(c, "min-hits", 1),
				intAtLeast(c, "n", 1), intAtLeast(c, "examples", 0), floatIn(c, "min-precision", 0, 1, false))
		},
		RunE: verb("topics", func(c *cobra.Command, dir string, _ []string) error {
			return codebookTopics(c.OutOrStdout(), dir, to)
		}),
	}
	topics.Flags().Float64Var(&to.fraction, "fraction", 0.5, "share of a sequence's tokens a topic code is active on")
	topics.Flags().IntVar(&to.minHits, "min-hits", 2, "least sequences a listed code is a topic code of (with --context: in-context activations)")
	topics.Flags().IntVar(&to.n, "n", 20, "topic codes to list")
	topics.Flags().IntVar(&to.examples, "examples", 2, "example sequences per code")
	topics.Flags().StringVar(&to.match, "match", "", "rank topic codes by precision for the sequences this regex matches (case-insensitive)")
	topics.Flags().Float64Var(&to.minPrec, "min-precision", 0.5, "with --match: least precision")
	topics.Flags().BoolVar(&to.context, "context", false, "with --match: rank codes by precision for the positions from the regex's first match in a sequence on (the steering's context method)")

	var expDir string
	study := &cobra.Command{
		Use:   "study <experiment.yaml>",
		Short: "Layer-by-layer table of a finished TokFSM sweep: codes vs neurons, JSD, live codes",
		Long: `Study reads the finished runs of a TokFSM sweep of codebook models (an
experiment file, e.g. experiments/codebook-fsm4.yaml; run it first with
"hiddenlab sweep") and writes <sweep dir>/study.md: per configuration, eval
CE against the FSM's Bayes-optimal CE and live codes; per configuration and
layer, the best state code against the best neuron, the intervention JSD of
the layer's codebooks, and live codes.`,
		Example: `  hiddenlab sweep codebook-fsm4.yaml && hiddenlab codebook study codebook-fsm4.yaml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want <experiment.yaml> (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := codebookStudy(c.OutOrStdout(), args[0], expDir); err != nil {
				return fmt.Errorf("codebook study: %w", err)
			}
			return nil
		},
	}
	study.Flags().StringVar(&expDir, "experiments", "experiments", "directory of experiment files")

	c.AddCommand(cache, top, search, topics, study)
	return c
}

// codebookStudy writes the layer-by-layer table of an experiment's
// finished runs to <sweep dir>/study.md and prints it.
func codebookStudy(w io.Writer, name, dir string) error {
	e, err := loadExperiment(name, dir, 0)
	if err != nil {
		return err
	}
	body, err := codebook.Study(e.StudyRuns())
	if err != nil {
		return err
	}
	doc := fmt.Sprintf("# Codebook TokFSM study %s\n\nRuns of `%s` (seeds %v); the sweep's own table is `results.md`.\n\n%s", e.Name, e.Recipe, e.Seeds, body)
	return writeStudy(w, e, doc)
}

// setRunThreads sets libtorch's threads: n, or the run's train.threads.
func setRunThreads(dir string, n int) error {
	if n <= 0 {
		n = 1
		if sdir, err := codesearch.ResolveDir(dir); err == nil {
			if r, err := rundir.LoadRecipe(sdir); err == nil {
				n = r.Train.Threads
			}
		}
	}
	return torch.SetNumThreads(n)
}

func codebookCache(w io.Writer, dir string, o codesearch.CacheOptions) error {
	r, err := codesearch.Open(dir, torch.CPU)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := r.BuildCache(o)
	if err != nil {
		return err
	}
	if err := c.Save(r.Dir); err != nil {
		return err
	}
	root := filepath.Join(r.Dir, codesearch.CacheDir)
	fmt.Fprintf(w, "cached %d %s sequences × %d tokens of %s (checkpoint step %d) into %s\n",
		c.Seqs, c.Source, c.Context, r.Dir, r.Step, root)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "site\tcodebooks\tC\tk\tcodes used\tunused")
	for _, u := range c.UsageBySite() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d / %d\t%.1f%%\n", u.Site, u.Groups, u.Codes, u.K, u.Used, u.Total, 100*u.Unused())
	}
	tw.Flush()
	fig := filepath.Join(root, "usage.png")
	if err := c.UsageFigure(fig); err != nil {
		return err
	}
	fmt.Fprintf(w, "figure: %s\n", fig)
	return nil
}

func codebookTop(w io.Writer, dir, book string, code, n, before, after int) error {
	c, err := codesearch.LoadCache(dir)
	if err != nil {
		return err
	}
	b, err := c.Book(book)
	if err != nil {
		return err
	}
	r, err := c.Code(b, code, n, before, after)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s code %d fires at %d of %d cached positions (%.2f%%)\n", r.Book, r.Code, r.Fires, r.Positions,
		100*float64(r.Fires)/float64(max(r.Positions, 1)))
	if r.Fires == 0 {
		return nil
	}
	var toks []string
	for _, t := range r.Tokens[:min(10, len(r.Tokens))] {
		toks = append(toks, fmt.Sprintf("%q %d", t.Text, t.Count))
	}
	fmt.Fprintf(w, "tokens: %s\n", strings.Join(toks, ", "))
	for _, x := range r.Contexts {
		fmt.Fprintf(w, "  seq %4d pos %4d  %s[%s]%s\n", x.Seq, x.Pos, oneLine(x.Before), oneLine(x.Token), oneLine(x.After))
	}
	return nil
}

// oneLine shows newlines and tabs as escapes.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
}

func codebookSearch(w io.Writer, dir string, patterns []string, o codesearch.SearchOptions, neurons bool, png string) error {
	c, err := codesearch.LoadCache(dir)
	if err != nil {
		return err
	}
	var res []*codesearch.SearchResult
	var nb *codesearch.Neurons
	if neurons {
		r, err := codesearch.Open(dir, torch.CPU)
		if err != nil {
			return err
		}
		defer r.Close()
		if r.Step != c.Step {
			fmt.Fprintf(w, "warning: the cache is of step %d, the run's latest checkpoint of step %d (rebuild the cache)\n", c.Step, r.Step)
		}
		if nb, err = r.Neurons(c, 16); err != nil {
			return err
		}
	}
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("regex %q: %w", p, err)
		}
		sr, err := c.Search(re, o, nb)
		if err != nil {
			return err
		}
		res = append(res, sr)
		fmt.Fprintf(w, "\n%q marks %d of %d positions (%.2f%%)\n", p, sr.Matched, sr.Positions, 100*float64(sr.Matched)/float64(max(sr.Positions, 1)))
		if len(sr.Hits) == 0 {
			fmt.Fprintln(w, "  no code with recall above the threshold and precision above the threshold")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if nb != nil {
			fmt.Fprintln(tw, "  codebook\tcode\tprecision\trecall\tfires\tbest neuron (same recall)\tneuron precision")
		} else {
			fmt.Fprintln(tw, "  codebook\tcode\tprecision\trecall\tfires")
		}
		for _, h := range sr.Hits {
			fmt.Fprintf(tw, "  %s\t%d\t%.3f\t%.3f\t%d", h.Book, h.Code, h.Precision, h.Recall, h.Fires)
			if nb != nil {
				fmt.Fprintf(tw, "\t%s\t%.3f", h.Neuron, h.NeuronPrecision)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	if png == "" {
		sdir, err := codesearch.ResolveDir(dir)
		if err != nil {
			return err
		}
		png = filepath.Join(sdir, codesearch.CacheDir, "search.png")
	}
	if err := codesearch.SearchFigure(png, res); err != nil {
		if errors.Is(err, codesearch.ErrNothingToPlot) {
			return nil
		}
		return err
	}
	fmt.Fprintf(w, "\nfigure: %s\n", png)
	return nil
}

// topicsOptions are the topics verb's flags.
type topicsOptions struct {
	fraction   float64
	minHits, n int
	examples   int
	match      string
	minPrec    float64
	context    bool
}

func codebookTopics(w io.Writer, dir string, o topicsOptions) error {
	c, err := codesearch.LoadCache(dir)
	if err != nil {
		return err
	}
	if o.match != "" {
		re, err := regexp.Compile("(?i)" + o.match)
		if err != nil {
			return fmt.Errorf("--match %q: %w", o.match, err)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if o.context {
			codes, n, err := c.ContextCodes(re, o.minHits, o.minPrec, o.n)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%d of %d cached positions are in the context of %q (from its first match in a sequence on); codes by precision:\n",
				n, c.Seqs*c.Context, o.match)
			fmt.Fprintln(tw, "  codebook\tcode\tprecision\trecall\tin-context fires\tfires")
			for _, t := range codes {
				fmt.Fprintf(tw, "  %s\t%d\t%.3f\t%.3f\t%d\t%d\n", t.Book(), t.Code, t.Precision, t.Recall, t.Hits, t.Fires)
			}
			return tw.Flush()
		}
		codes, on, err := c.TopicMatch(re, o.fraction, o.minHits, o.minPrec, o.n)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%q matches %d of %d cached sequences; topic codes (active on > %.0f%% of a sequence's tokens) by precision:\n",
			o.match, on, c.Seqs, 100*o.fraction)
		fmt.Fprintln(tw, "  codebook\tcode\tprecision\trecall\tmatched seqs\tseqs")
		for _, t := range codes {
			fmt.Fprintf(tw, "  %s\t%d\t%.3f\t%.3f\t%d\t%d\n", t.Book(), t.Code, t.Precision, t.Recall, t.Hits, t.Fires)
		}
		return tw.Flush()
	}
	topics := c.Topics(o.fraction, o.minHits, o.examples)
	fmt.Fprintf(w, "%d topic code(s) (active on > %.0f%% of a sequence's tokens, in ≥ %d of %d cached sequences)\n",
		len(topics), 100*o.fraction, o.minHits, c.Seqs)
	for _, t := range topics[:min(o.n, len(topics))] {
		fmt.Fprintf(w, "  %-28s code %5d  %4d seqs (%.1f%%)\n", t.Book, t.Code, t.Seqs, 100*t.Share)
		for _, s := range t.Examples {
			fmt.Fprintf(w, "      seq %4d: %s\n", s, oneLine(clip(c.Text(s, 0, c.Context), 100)))
		}
	}
	return nil
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
