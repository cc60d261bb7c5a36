package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/atlas"
	"github.com/hiddenlab/hiddenlab/models/codebook/codesearch"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
)

// atlasOptions are the atlas command's flags.
type atlasOptions struct {
	load    atlas.LoadOptions
	out     string
	serve   string
	perPage int
	threads int
}

// atlasCmd is "hiddenlab atlas": the feature atlas of a codebook run (its
// codes and neurons) or of an SAE run (its latents), a static HTML site.
func atlasCmd() *cobra.Command {
	var o atlasOptions
	c := &cobra.Command{
		Use:   "atlas <run dir>",
		Short: "Write a static HTML feature atlas of a codebook run's codes and neurons or an SAE run's latents",
		Long: `Atlas writes a static HTML site (no server needed: open index.html) with a
page per feature of a codebook run: every code of its codebooks that fires
and, with --neurons, the MLP neurons of the same layers. The index searches
and sorts them in the browser (by frequency, by precision for a regex typed
in the page, by precision for each --regex); a feature's page shows its
top-activating contexts highlighted token by token, a histogram of its
activations, the tokens it promotes and suppresses through the unembedding
and, for codes, the steering experiment's effect when the run's report ran it.

Features are measured on the run's code cache (hiddenlab codebook cache),
or on --seqs held-out sequences run through the model when there is none.

For an SAE run (model.family: sae, detected from its recipe) the pages are
its latents: activation = the latent's value on the source model's
activations at the SAE's site over the first --seqs (256) held-out windows
of the source's data; promoted/suppressed tokens = its decoder column mapped
into the residual stream (through W_O for attn.hook_z, the MLP's output
projection for mlp.hook_post) through the final norm's gain and W_U.
--neurons and the code cache do not apply; --site may only name the SAE's.
--serve :8080 serves the site over HTTP after writing it, until Ctrl-C.
The recipe's data paths are relative: run from the repository root.`,
		Example: `  hiddenlab atlas runs/codebook-tinystories/x -regex '\bdogs?\b' -serve :8080
  hiddenlab atlas runs/codebook/x -site blocks.1.attn_preproj -top 200 -out /tmp/atlas
  hiddenlab atlas runs/sae/x -seqs 512 -regex '\bdogs?\b'`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want <run dir> (got %d arguments)", len(args))
			}
			for _, p := range o.load.Regexes {
				if _, err := regexp.Compile(p); err != nil {
					return usagef("--regex %q: %v", p, err)
				}
			}
			return checks(intAtLeast(c, "threads", 0), intAtLeast(c, "seqs", 0), intAtLeast(c, "batch", 1),
				intAtLeast(c, "contexts", 1), intAtLeast(c, "per-page", 1), intAtLeast(c, "top", 0),
				intAtLeast(c, "min-fires", 1), intAtLeast(c, "logits", 1))
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runAtlas(c.Context(), c.OutOrStdout(), args[0], o)
		},
	}
	f := c.Flags()
	f.StringSliceVar(&o.load.Sites, "site", nil, "codebook sites to include, e.g. blocks.0.attn_preproj (repeat or comma-separate; default all)")
	f.StringVar(&o.out, "out", "", "output directory (default <run>/atlas)")
	f.StringVar(&o.serve, "serve", "", "after writing, serve the site on this address (e.g. :8080) until Ctrl-C")
	f.StringArrayVar(&o.load.Regexes, "regex", nil, "regex feature to score every feature against: exact precision and recall (repeatable)")
	f.IntVar(&o.load.Seqs, "seqs", 0, "sequences to measure on (0: the code cache's, or 256 without one)")
	f.IntVar(&o.load.Batch, "batch", 16, "sequences per forward pass")
	f.BoolVar(&o.load.Neurons, "neurons", true, "include the MLP neurons of the chosen sites' layers")
	f.IntVar(&o.load.Fill.Contexts, "contexts", 40, "top-activating contexts kept per feature")
	f.IntVar(&o.perPage, "per-page", 20, "contexts per page")
	f.IntVar(&o.load.Top, "top", 0, "keep the N most frequent features of each codebook and layer (0: all that fire)")
	f.IntVar(&o.load.MinFires, "min-fires", 1, "leave out features active at fewer positions")
	f.IntVar(&o.load.Logits, "logits", 10, "promoted and suppressed tokens listed")
	f.IntVar(&o.threads, "threads", 0, "libtorch threads (0: the run's train.threads)")
	return c
}

func runAtlas(ctx context.Context, w io.Writer, dir string, o atlasOptions) error {
	if err := setRunThreads(dir, o.threads); err != nil {
		return err
	}
	load, resolve := atlas.LoadCodebook, codesearch.ResolveDir
	if atlas.IsSAE(dir) {
		load = atlas.LoadSAE
		resolve = func(dir string) (string, error) { return rundir.ResolveDir(dir, atlas.SAEFamily) }
	}
	var site *atlas.Site
	var err error
	torch.RunLocked(func() { site, err = load(dir, o.load) })
	if err != nil {
		return fmt.Errorf("atlas: %w", err)
	}
	out := o.out
	if out == "" {
		sdir, err := resolve(dir)
		if err != nil {
			return err
		}
		out = filepath.Join(sdir, "atlas")
	}
	st, err := atlas.Write(out, site, atlas.Options{PerPage: o.perPage})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "atlas of %s: %d features, %d files, %.1f MB (largest file %s, %.0f KB)\n",
		site.Source, st.Features, st.Files, float64(st.Bytes)/1e6, st.LargestFile, float64(st.Largest)/1e3)
	fmt.Fprintf(w, "open %s\n", filepath.Join(out, "index.html"))
	if o.serve == "" {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return atlas.Serve(ctx, o.serve, out, func(addr string) {
		if host, port, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
				addr = net.JoinHostPort("localhost", port)
			}
		}
		fmt.Fprintf(w, "serving http://%s/ (Ctrl-C to stop)\n", addr)
	})
}
