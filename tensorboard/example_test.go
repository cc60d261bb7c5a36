package tensorboard_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/tensorboard"
)

func ExampleWriter() {
	dir, err := os.MkdirTemp("", "run")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := tensorboard.NewWriter(dir)
	if err != nil {
		log.Fatal(err)
	}
	// The resolved recipe once, as Markdown.
	w.Text("recipe", 0, "```yaml\nmodel: gpt\nlr: 3e-4\n```", time.Time{})
	for step := int64(0); step < 3; step++ {
		// A step's logs as one event; a zero time means now.
		w.Scalars(step, map[string]float64{"train/loss": 4.0 / float64(step+1), "train/lr": 3e-4}, time.Time{})
	}
	// How often each of 4 codes was used.
	w.HistogramCounts("codebook/usage", 2, []float64{0, 1, 2, 3, 4}, []float64{10, 0, 3, 7}, time.Time{})
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(filepath.Base(w.Path()), "events.out.tfevents."))
	// Output: true
}
