package plot_test

import (
	"log"
	"os"
	"path/filepath"

	"hiddenlab/plot"
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
