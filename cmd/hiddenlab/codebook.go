package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"hiddenlab/models/codebook/codesearch"
	"hiddenlab/runner"
	"hiddenlab/torch"
)

func init() { commands["codebook"] = cmdCodebook }

const codebookUsage = `usage: hiddenlab codebook <verb> <run dir> [arguments] [flags]

verbs (the run dir may be a run, a stage, or a staged run: its last codebook stage):
  cache  <run dir>                   run the model over a dataset and cache every codebook's codes
                                     (-source valid|train, -seqs 256, -batch 16) into <run>/codecache
  top    <run dir> <codebook> <code> the contexts where a code fires (-n 20, -before 12, -after 4);
                                     codebooks are named blocks.L.attn_preproj[g] or blocks.L.mlp
  search <run dir> <regex> ...       per-codebook precision/recall of codes for regex features, with
                                     the best neuron at the same recall (-min-recall 0.01,
                                     -min-precision 0.5, -top 5, -starts, -neurons=false)
  topics <run dir>                   topic codes: active on > -fraction 0.5 of a sequence's tokens
                                     (-min-hits 2, -n 20, -examples 2; -match <regex> ranks them by
                                     precision for the sequences the regex matches; -match with
                                     -context ranks codes for the positions after the first match,
                                     the steering experiment's context method)
the recipe's data paths are relative: run from the repository root.
common flags: -threads N (default: the run's train.threads)`

// cmdCodebook runs the codebook interpretability tools on a run directory.
func cmdCodebook(args []string) error {
	if len(args) < 2 {
		return errors.New(codebookUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("codebook "+verb, flag.ContinueOnError)
	threads := fs.Int("threads", 0, "libtorch threads (0: the run's train.threads)")
	var run func(dir string, rest []string) error
	switch verb {
	case "cache":
		source := fs.String("source", codesearch.SourceValid, "held-out split (valid) or random training windows (train)")
		seqs := fs.Int("seqs", 256, "sequences to cache")
		batch := fs.Int("batch", 16, "sequences per forward pass")
		seed := fs.Uint64("seed", 1, "picks the training windows (-source train)")
		run = func(dir string, rest []string) error {
			if len(rest) > 0 {
				return fmt.Errorf("codebook cache: unexpected arguments %q", rest)
			}
			return codebookCache(dir, codesearch.CacheOptions{Source: *source, Seqs: *seqs, Batch: *batch, Seed: *seed})
		}
	case "top":
		n := fs.Int("n", 20, "contexts to show")
		before := fs.Int("before", 12, "tokens of context before the firing token")
		after := fs.Int("after", 4, "tokens of context after it")
		run = func(dir string, rest []string) error {
			if len(rest) != 2 {
				return errors.New("codebook top: want <run dir> <codebook> <code>, e.g. blocks.0.attn_preproj[3] 117")
			}
			code, err := strconv.Atoi(rest[1])
			if err != nil {
				return fmt.Errorf("codebook top: code %q is not an integer", rest[1])
			}
			return codebookTop(os.Stdout, dir, rest[0], code, *n, *before, *after)
		}
	case "search":
		var o codesearch.SearchOptions
		fs.Float64Var(&o.MinRecall, "min-recall", 0.01, "keep codes whose recall exceeds this")
		fs.Float64Var(&o.MinPrecision, "min-precision", 0.5, "report codes whose precision exceeds this")
		fs.IntVar(&o.Top, "top", 5, "codes per codebook")
		fs.BoolVar(&o.Starts, "starts", false, "mark only the token holding a match's first byte")
		neurons := fs.Bool("neurons", true, "compare with the best neuron at the same recall (reruns the model)")
		png := fs.String("png", "", "figure path (default <run>/codecache/search.png)")
		run = func(dir string, rest []string) error {
			if len(rest) == 0 {
				return errors.New("codebook search: name at least one regex")
			}
			return codebookSearch(os.Stdout, dir, rest, o, *neurons, *png)
		}
	case "topics":
		fraction := fs.Float64("fraction", 0.5, "share of a sequence's tokens a topic code is active on")
		minHits := fs.Int("min-hits", 2, "least sequences a listed code is a topic code of (with -context: in-context activations)")
		n := fs.Int("n", 20, "topic codes to list")
		examples := fs.Int("examples", 2, "example sequences per code")
		match := fs.String("match", "", "rank topic codes by precision for the sequences this regex matches (case-insensitive)")
		minPrec := fs.Float64("min-precision", 0.5, "with -match: least precision")
		context := fs.Bool("context", false, "with -match: rank codes by precision for the positions from the regex's first match in a sequence on (the steering's context method)")
		run = func(dir string, rest []string) error {
			if len(rest) > 0 {
				return fmt.Errorf("codebook topics: unexpected arguments %q", rest)
			}
			return codebookTopics(os.Stdout, dir, topicsOptions{fraction: *fraction, minHits: *minHits, n: *n, examples: *examples,
				match: *match, minPrec: *minPrec, context: *context})
		}
	default:
		return fmt.Errorf("codebook: unknown verb %q\n%s", verb, codebookUsage)
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("codebook %s: name a run directory", verb)
	}
	if err := setRunThreads(pos[0], *threads); err != nil {
		return err
	}
	var runErr error
	torch.RunLocked(func() { runErr = run(pos[0], pos[1:]) })
	if runErr != nil {
		return fmt.Errorf("codebook %s: %w", verb, runErr)
	}
	return nil
}

// setRunThreads sets libtorch's threads: n, or the run's train.threads.
func setRunThreads(dir string, n int) error {
	if n <= 0 {
		n = 1
		if sdir, err := codesearch.ResolveDir(dir); err == nil {
			if r, err := runner.LoadRecipe(sdir); err == nil {
				n = r.Train.Threads
			}
		}
	}
	return torch.SetNumThreads(n)
}

func codebookCache(dir string, o codesearch.CacheOptions) error {
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
	fmt.Printf("cached %d %s sequences × %d tokens of %s (checkpoint step %d) into %s\n",
		c.Seqs, c.Source, c.Context, r.Dir, r.Step, root)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "site\tcodebooks\tC\tk\tcodes used\tunused")
	for _, u := range c.UsageBySite() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d / %d\t%.1f%%\n", u.Site, u.Groups, u.Codes, u.K, u.Used, u.Total, 100*u.Unused())
	}
	tw.Flush()
	fig := filepath.Join(root, "usage.png")
	if err := c.UsageFigure(fig); err != nil {
		return err
	}
	fmt.Printf("figure: %s\n", fig)
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
	if !(o.fraction > 0 && o.fraction < 1) {
		return fmt.Errorf("-fraction %v: want a share in (0, 1)", o.fraction)
	}
	if o.context && o.match == "" {
		return errors.New("-context needs -match <regex>")
	}
	if o.match != "" {
		re, err := regexp.Compile("(?i)" + o.match)
		if err != nil {
			return fmt.Errorf("-match %q: %w", o.match, err)
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
