package runner

import (
	"time"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/tensorboard"
)

// tbSink writes a run's records as TensorBoard scalars ("train/loss",
// "eval/accuracy", …) into event files in the run directory, so
// `tensorboard --logdir runs/` shows every run; the resolved recipe is
// stored as text at step 0 of a fresh run.
type tbSink struct {
	w *tensorboard.Writer
}

func newTBSink(dir, recipeYAML string) (*tbSink, error) {
	w, err := tensorboard.NewWriter(dir)
	if err != nil {
		return nil, err
	}
	if recipeYAML != "" {
		if err := w.Text("recipe", 0, "```yaml\n"+recipeYAML+"```", time.Time{}); err != nil {
			w.Close()
			return nil, err
		}
	}
	return &tbSink{w: w}, nil
}

// Write implements experiment.Sink.
func (s *tbSink) Write(r experiment.Record) error {
	vals := make(map[string]float64, len(r.Values))
	for k, v := range r.Values {
		vals[r.Split+"/"+k] = v
	}
	if err := s.w.Scalars(int64(r.Step), vals, r.Time); err != nil {
		return err
	}
	for tag, xs := range r.Histograms {
		if err := s.w.Histogram(r.Split+"/"+tag, int64(r.Step), xs, r.Time); err != nil {
			return err
		}
	}
	return nil
}

// Close implements experiment.Sink.
func (s *tbSink) Close() error { return s.w.Close() }
