package runner

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/hiddenlab/hiddenlab/experiment"
)

// console is the sink that shows a run on stderr. Off a terminal (a log
// file, a sweep worker, CI) or with output.progress false it prints a
// nanoGPT-style line per train log (step, loss, learning rate, tokens/s)
// and one per evaluation with every eval metric; on a terminal with
// progress on it draws a live bar and prints the evaluations above it.
type console struct {
	w           io.Writer
	name        string
	steps       int
	bar         *progressbar.ProgressBar
	began       time.Time
	start, step int
}

func newConsole(w *os.File, name string, start, steps int, progress bool) *console {
	c := &console{w: w, name: name, steps: steps, start: start, step: start, began: time.Now()}
	if fi, err := w.Stat(); progress && err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		c.bar = progressbar.NewOptions(steps,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(20),
			progressbar.OptionClearOnFinish(),
		)
		c.bar.Set(start)
	}
	return c
}

// Write implements experiment.Sink.
func (c *console) Write(r experiment.Record) error {
	c.step = r.Step
	line := c.line(r)
	if c.bar != nil {
		if r.Split == "train" {
			c.bar.Describe(fmt.Sprintf("%s loss %.4f", c.name, r.Values["loss"]))
			c.bar.Set(r.Step)
			return nil
		}
		c.bar.Clear()
		fmt.Fprintln(c.w, line)
		c.bar.Set(r.Step)
		return nil
	}
	fmt.Fprintln(c.w, line)
	return nil
}

// line formats a record: train lines lead with loss, lr and throughput;
// eval lines list every metric.
func (c *console) line(r experiment.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s step %d/%d", c.name, r.Step, c.steps)
	if r.Split == "train" {
		fmt.Fprintf(&b, ": loss %.4f", r.Values["loss"])
		if lr, ok := r.Values["lr"]; ok {
			fmt.Fprintf(&b, ", lr %.3g", lr)
		}
		if g, ok := r.Values["grad_norm"]; ok {
			fmt.Fprintf(&b, ", grad %.3g", g)
		}
		if v, ok := r.Values["tok_per_s"]; ok {
			fmt.Fprintf(&b, ", %.0f tok/s", v)
		}
		elapsed := time.Since(c.began)
		eta := "?"
		if done := r.Step - c.start; done > 0 {
			eta = (time.Duration(float64(elapsed) / float64(done) * float64(c.steps-r.Step))).Round(time.Second).String()
		}
		fmt.Fprintf(&b, " [%s, eta %s]", elapsed.Round(time.Second), eta)
		return b.String()
	}
	b.WriteString(" eval:")
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %.4g", k, r.Values[k])
	}
	return b.String()
}

// Close implements experiment.Sink.
func (c *console) Close() error {
	if c.bar != nil {
		c.bar.Finish()
	}
	return nil
}
