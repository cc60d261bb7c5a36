package plot_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hiddenlab/hiddenlab/plot"
)

func ExampleLines() {
	steps := []float64{0, 50, 100, 150, 200}
	train := []float64{4.1, 2.6, 2.1, 1.9, 1.8}
	val := []float64{4.0, 2.7, 2.2, 2.0, 1.95}
	path := filepath.Join(os.TempDir(), "loss.png")
	err := plot.Lines(path, plot.Figure{Title: "V128", XLabel: "step", YLabel: "CE (nats/char)"},
		plot.Series{Name: "train", X: steps, Y: train},
		plot.Series{Name: "val", X: steps, Y: val, Dashed: true},
	)
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleBands() {
	steps := []float64{0, 100, 200}
	// Mean and standard deviation over seeds at each step.
	err := plot.Bands(filepath.Join(os.TempDir(), "val_ce.png"), plot.Figure{Title: "val CE over seeds", XLabel: "step"},
		plot.Band{Name: "C50", X: steps, Mean: []float64{4.0, 2.2, 1.9}, Std: []float64{0.05, 0.04, 0.03}},
		plot.Band{Name: "V96m", X: steps, Mean: []float64{4.0, 2.3, 2.0}, Std: []float64{0.05, 0.05, 0.04}},
	)
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleLines_smoothed() {
	// A noisy training loss drawn as its EMA over the faint raw curve, with
	// the axis labelled from the metric key.
	var steps, loss []float64
	for i := range 100 {
		steps = append(steps, float64(i))
		loss = append(loss, 2+2/float64(i+1)+0.3*float64(i%3-1))
	}
	path := filepath.Join(os.TempDir(), "train_loss.png")
	err := plot.Lines(path, plot.Figure{Title: "Training loss", XLabel: "step", YLabel: plot.Label("train.loss"), Smooth: 0.9},
		plot.Series{Name: "train", X: steps, Y: loss})
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleEMA() {
	fmt.Printf("%.4f\n", plot.EMA([]float64{1, 3, 5}, 0.5))
	// Output: [1.0000 2.3333 3.8571]
}

func ExampleLabel() {
	for _, k := range []string{"eval.loss", "grad_norm", "tok_per_s", "eval.router_cv_max"} {
		fmt.Println(plot.Label(k))
	}
	// Output:
	// eval cross-entropy (nats/token)
	// gradient norm (L2, before clipping)
	// throughput (tokens/s)
	// eval router cv max
}
