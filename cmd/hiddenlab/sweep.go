package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/sweep"
)

// sweepCmd is "hiddenlab sweep": run an experiment's grid and tabulate it.
func sweepCmd() *cobra.Command {
	var (
		workers                 int
		tabulate                bool
		dir, emit, image, claim string
	)
	c := &cobra.Command{
		Use:   "sweep <experiment.yaml>",
		Short: "Run a grid of recipes over seeds in parallel and tabulate it",
		Long: `Sweep runs every configuration × seed of an experiment file (a path, or a
name in --experiments) in parallel worker processes under a thread budget,
then writes results.md, results.csv and plots into the sweep directory.
Finished runs are skipped and interrupted ones resumed, so a sweep can be
rerun. --emit writes a cluster job instead of running (a Slurm job array or
a Kubernetes indexed Job).`,
		Example: `  hiddenlab sweep gpt-width.yaml -workers 2
  hiddenlab sweep -tabulate gpt-width.yaml
  hiddenlab sweep -emit slurm codebook-k.yaml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("name one experiment file (got %d arguments)", len(args))
			}
			return checks(intAtLeast(c, "workers", 0), oneOf(c, "emit", "", "slurm", "k8s"))
		},
		RunE: func(c *cobra.Command, args []string) error {
			logf := logger(c)
			out := c.OutOrStdout()
			e, err := loadExperiment(args[0], dir, workers)
			if err != nil {
				return err
			}
			if emit != "" {
				if err := os.MkdirAll(e.Dir, 0o755); err != nil {
					return err
				}
				path, err := sweep.Emit(e, emit, "./bin/hiddenlab", image, claim)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: %d runs (%d configurations × %d seeds)\n", path, len(e.Jobs()), len(e.Points()), len(e.Seeds))
				return nil
			}
			if tabulate {
				err = sweep.Tabulate(e)
			} else {
				self, serr := os.Executable()
				if serr != nil {
					return serr
				}
				ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
				defer cancel()
				logf("sweep %s: %d configuration(s) × %d seed(s), %d worker(s) × %d thread(s), into %s",
					e.Name, len(e.Points()), len(e.Seeds), e.Workers, e.Threads, e.Dir)
				_, err = sweep.Run(ctx, e, sweep.Options{Binary: self, Log: logf})
			}
			if b, rerr := os.ReadFile(filepath.Join(e.Dir, "results.md")); rerr == nil {
				fmt.Fprintf(out, "%s\n(table: %s, %s)\n", b, filepath.Join(e.Dir, "results.md"), filepath.Join(e.Dir, "results.csv"))
			}
			return err
		},
	}
	f := c.Flags()
	f.IntVar(&workers, "workers", 0, "parallel runs (0: the experiment's, capped by cores/threads)")
	f.BoolVar(&tabulate, "tabulate", false, "only rebuild the tables and plots from finished runs")
	f.StringVar(&dir, "experiments", "experiments", "directory of experiment files")
	f.StringVar(&emit, "emit", "", "write a cluster job instead of running: slurm (job array) or k8s (indexed Job)")
	f.StringVar(&image, "image", "hiddenlab:latest", "container image for --emit k8s (the repository at /work, bin/hiddenlab built)")
	f.StringVar(&claim, "claim", "hiddenlab-sweeps", "persistent volume claim holding the sweep directory, for --emit k8s")
	return c
}

// loadExperiment finds the experiment file name (a path, or a file in dir)
// and loads it; workers > 0 overrides the file's worker count.
func loadExperiment(name, dir string, workers int) (*sweep.Experiment, error) {
	path, err := recipe.Find(name, dir)
	if err != nil {
		return nil, err
	}
	e, err := sweep.Load(path)
	if err != nil {
		return nil, err
	}
	if workers > 0 {
		e.Workers = workers
	}
	return e, nil
}

// writeStudy writes a study's Markdown to <sweep dir>/study.md (atomically)
// and prints it with the file's path.
func writeStudy(w io.Writer, e *sweep.Experiment, doc string) error {
	out := filepath.Join(e.Dir, "study.md")
	if err := atomicio.WriteFile(out, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s\n(study: %s)\n", doc, out)
	return nil
}
