package runner

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows a run's training progress: a live bar on a terminal, and
// on anything else (a log file, a pipe, CI) a plain line at most every
// lineEvery, so logs stay readable instead of filling with redraws.
type progress interface {
	// Set moves to step and, when status is not empty, shows it (loss, rate).
	Set(step int, status string)
	// Finish ends the display.
	Finish()
}

const lineEvery = 30 * time.Second

// newProgress returns the display for a run of steps steps named name,
// starting at step start, writing to w (a bar when w is a terminal).
func newProgress(w *os.File, name string, start, steps int) progress {
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		bar := progressbar.NewOptions(steps,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(name),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(20),
			progressbar.OptionClearOnFinish(),
		)
		bar.Set(start)
		return &barProgress{bar: bar, name: name}
	}
	return &lineProgress{w: w, name: name, steps: steps, start: start, began: time.Now(), last: time.Now()}
}

type barProgress struct {
	bar  *progressbar.ProgressBar
	name string
}

func (p *barProgress) Set(step int, status string) {
	if status != "" {
		p.bar.Describe(p.name + " " + status)
	}
	p.bar.Set(step)
}

func (p *barProgress) Finish() { p.bar.Finish() }

type lineProgress struct {
	w                  io.Writer
	name, status       string
	steps, start, step int
	began, last        time.Time
}

func (p *lineProgress) Set(step int, status string) {
	p.step = step
	if status != "" {
		p.status = status
	}
	if time.Since(p.last) >= lineEvery {
		p.line()
	}
}

func (p *lineProgress) line() {
	p.last = time.Now()
	elapsed := time.Since(p.began)
	eta := "?"
	if done := p.step - p.start; done > 0 {
		eta = (time.Duration(float64(elapsed) / float64(done) * float64(p.steps-p.step))).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "%s step %d/%d %s [%s, eta %s]\n", p.name, p.step, p.steps, p.status, elapsed.Round(time.Second), eta)
}

func (p *lineProgress) Finish() { p.line() }
