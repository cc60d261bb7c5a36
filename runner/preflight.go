package runner

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/recipe"
)

// preflight refuses, before anything is built, a recipe whose training
// would need more memory than the machine has available (or than
// train.max_memory allows): an estimate of the parameters with their
// gradients and AdamW moments, the batch's token buffers, and the
// activations of one forward and backward pass, from the model section's
// width, layers, vocabulary and context. The estimate is coarse (within a
// small factor of the true peak for the GPT-shaped families); it exists to
// turn "train.batch=100000000" or "model.width=1000000" into an error
// naming those keys instead of an out-of-memory crash.
func preflight(r *experiment.Recipe) error {
	model := r.Raw.Section("model")
	num := func(sec map[string]any, key string) float64 {
		switch v := sec[key].(type) {
		case int:
			return float64(v)
		case int64:
			return float64(v)
		case float64:
			return v
		}
		return 0
	}
	width, layers, vocab := num(model, "width"), num(model, "layers"), num(model, "vocab")
	context := num(model, "context")
	// The data sections hold the context when the model leaves it to them.
	if data := r.Raw.Section("data"); context == 0 && data != nil {
		for _, v := range data {
			if sec, ok := v.(map[string]any); ok {
				context = max(context, num(sec, "context"), num(sec, "seq_len"))
			}
		}
	}
	if vocab == 0 {
		vocab = 50304 // the largest vocabulary the built-in tokenizers make
	}
	if context == 0 {
		context = 256
	}
	batch := float64(r.Train.Batch)
	if layers == 0 {
		layers = 1
	}
	const f32 = 4
	params := 12*layers*width*width + vocab*width + context*width
	paramBytes := params * f32 * 4 // weights, gradients, two AdamW moments
	// Per token: the residual stream and the block's intermediates (about 34
	// widths per layer, as in Korthikanti et al. 2022 without attention
	// scores) plus the logits and their gradient.
	actBytes := batch * context * (34*layers*width + 2*vocab) * f32
	bufBytes := batch * (context + 1) * 8 * 2 // int64 inputs and targets
	need := paramBytes + actBytes + bufBytes

	limit, source := r.Train.MaxMemory*(1<<30), "train.max_memory"
	if limit == 0 {
		avail, err := availableMemory()
		if err != nil {
			return nil // no estimate of the machine: do not guess
		}
		limit, source = avail, "the available memory"
	}
	if need <= limit {
		return nil
	}
	key := "train.batch"
	if paramBytes > actBytes {
		key = "model.width"
	}
	return &recipe.SourceError{Source: r.Raw.SourceOf(key), Err: &recipe.KeyError{Key: key, Reason: fmt.Sprintf(
		"the run would need about %s (parameters and optimizer state %s for ~%s parameters; activations %s for batch %d × context %d) but %s is %s; lower train.batch, model.width, model.layers or the context (or set train.max_memory in GiB)",
		gib(need), gib(paramBytes), humanCount(params), gib(actBytes), r.Train.Batch, int(context), source, gib(limit))}}
}

// availableMemory reads MemAvailable from /proc/meminfo.
func availableMemory() (float64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemAvailable")
}

// gib formats a byte count in GiB (TiB, MiB when far from it).
func gib(b float64) string {
	switch {
	case b >= 1<<40:
		return fmt.Sprintf("%.1f TiB", b/(1<<40))
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func humanCount(n float64) string {
	switch {
	case n >= 1e12:
		return fmt.Sprintf("%.1fT", n/1e12)
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", n/1e6)
	}
	return fmt.Sprintf("%.0fK", n/1e3)
}
