package text

import (
	"fmt"
	"iter"
)

// A Window is one evaluation window over a token sequence ids, for a given
// context length: the inputs are ids[Start:Start+context] and the targets
// ids[Start+1:Start+context+1]. The first Skip targets were scored by an
// earlier window and serve only as context; the rest are scored here.
type Window struct {
	Start int
	Skip  int
}

// EvalWindows returns, in order, windows of context ids over ids that score
// every target of ids (ids[1:]) exactly once, for a deterministic
// evaluation of a whole split.
//
// Windows start every stride tokens. With stride == context they do not
// overlap and every Skip is 0, except for the last window: when the targets
// do not divide into whole windows, a final window ends at the end of ids and
// skips the targets its predecessor already scored, so the tail is scored
// with full context and none is dropped. With stride < context each window
// after the first scores only its last stride targets and sees the
// context-stride before them (sliding-window evaluation); the first window
// scores all its targets.
//
// It returns an error unless 1 <= stride <= context and ids holds at least
// context+1 tokens.
func EvalWindows(ids []int32, context, stride int) ([]Window, error) {
	switch {
	case context < 1:
		return nil, fmt.Errorf("eval windows: context %d, want at least 1", context)
	case stride < 1 || stride > context:
		return nil, fmt.Errorf("eval windows: stride %d, want 1..context (%d)", stride, context)
	case len(ids) < context+1:
		return nil, fmt.Errorf("eval windows: %d tokens, want at least context+1 = %d", len(ids), context+1)
	}
	targets := len(ids) - 1
	var ws []Window
	scored := 0 // targets 0..scored-1 are scored
	for s := 0; s+context <= targets; s += stride {
		ws = append(ws, Window{Start: s, Skip: scored - s})
		scored = s + context
	}
	if scored < targets {
		s := targets - context
		ws = append(ws, Window{Start: s, Skip: scored - s})
	}
	return ws, nil
}

// An EvalBatch is consecutive evaluation windows as model input.
type EvalBatch struct {
	// Windows are the rows of the batch.
	Windows []Window
	// X and Y hold the inputs and targets, len(Windows)*context ids each,
	// row-major.
	X, Y []int64
	// Mask is 1 where a target is scored and 0 where it was scored by an
	// earlier window, len(Windows)*context values in the layout of Y.
	Mask []float32
	// Scored is the number of ones in Mask.
	Scored int
}

// EvalBatches yields windows, in order, in batches of batch rows; the last
// batch may have fewer. Summing a per-target loss times Mask over all
// batches, then dividing by the sum of Scored (len(ids)-1 for the windows of
// EvalWindows), gives the mean loss over the split. The windows must come
// from EvalWindows(ids, context, ...). It panics if batch < 1.
func EvalBatches(ids []int32, windows []Window, context, batch int) iter.Seq[EvalBatch] {
	if batch < 1 {
		panic(fmt.Sprintf("text: EvalBatches: batch size %d", batch))
	}
	return func(yield func(EvalBatch) bool) {
		for len(windows) > 0 {
			rows := windows[:min(batch, len(windows))]
			windows = windows[len(rows):]
			b := EvalBatch{
				Windows: rows,
				X:       make([]int64, len(rows)*context),
				Y:       make([]int64, len(rows)*context),
				Mask:    make([]float32, len(rows)*context),
			}
			for r, w := range rows {
				row := r * context
				for i := range context {
					b.X[row+i] = int64(ids[w.Start+i])
					b.Y[row+i] = int64(ids[w.Start+1+i])
					if i >= w.Skip {
						b.Mask[row+i] = 1
						b.Scored++
					}
				}
			}
			if !yield(b) {
				return
			}
		}
	}
}
