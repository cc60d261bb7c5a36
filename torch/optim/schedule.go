package optim

import (
	"fmt"
	"math"
)

// Schedule maps a step (from 0) to a learning-rate factor in [0, 1] that
// scales every group's LR.
type Schedule interface {
	Factor(step int) float64
}

// Constant keeps the LR fixed, after an optional linear warmup.
type Constant struct {
	Warmup int
}

// Factor implements Schedule.
func (c Constant) Factor(step int) float64 { return warmup(step, c.Warmup, 1) }

// Cosine warms up linearly for Warmup steps, then decays along a half cosine
// to MinFactor at Total steps (and stays there).
type Cosine struct {
	Warmup, Total int
	MinFactor     float64
}

// Factor implements Schedule.
func (c Cosine) Factor(step int) float64 {
	return decay(step, c.Warmup, c.Total, c.MinFactor, func(p float64) float64 { return 0.5 * (1 + math.Cos(math.Pi*p)) })
}

// Linear warms up linearly for Warmup steps, then decays linearly to
// MinFactor at Total steps.
type Linear struct {
	Warmup, Total int
	MinFactor     float64
}

// Factor implements Schedule.
func (l Linear) Factor(step int) float64 {
	return decay(step, l.Warmup, l.Total, l.MinFactor, func(p float64) float64 { return 1 - p })
}

// decay warms up for warmup steps, then follows shape (1 at progress 0, 0 at
// progress 1) from 1 down to minFactor at total steps.
func decay(step, warmupSteps, total int, minFactor float64, shape func(progress float64) float64) float64 {
	if step < warmupSteps {
		return warmup(step, warmupSteps, 1)
	}
	span := total - warmupSteps
	if span <= 0 || step >= total {
		return minFactor
	}
	return minFactor + (1-minFactor)*shape(float64(step-warmupSteps)/float64(span))
}

// warmup ramps linearly as top·(step+1)/n over the first n steps, so the
// first step already moves the parameters.
func warmup(step, n int, top float64) float64 {
	if n <= 0 || step >= n {
		return top
	}
	return top * float64(step+1) / float64(n)
}

// NewSchedule builds a schedule by name: "constant", "cosine" or "linear".
func NewSchedule(name string, warmup, total int, minFactor float64) (Schedule, error) {
	if warmup < 0 || total < 0 || minFactor < 0 || minFactor > 1 {
		return nil, fmt.Errorf("schedule: warmup %d, total %d, min factor %v out of range", warmup, total, minFactor)
	}
	switch name {
	case "constant", "":
		return Constant{Warmup: warmup}, nil
	case "cosine":
		return Cosine{Warmup: warmup, Total: total, MinFactor: minFactor}, nil
	case "linear":
		return Linear{Warmup: warmup, Total: total, MinFactor: minFactor}, nil
	}
	return nil, fmt.Errorf("unknown schedule %q (want constant, cosine or linear)", name)
}
