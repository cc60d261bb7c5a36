package torch

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// OpTime is one operator's share of a Profile: PyTorch's key_averages()
// row, with its "self CPU" column as Self.
type OpTime struct {
	// Name is libtorch's operator name ("aten::mm"), an autograd node's
	// ("MmBackward0") or a shim scope's ("hl::adamw_step"), followed in
	// ProfileByShape by its tensor inputs' sizes.
	Name  string
	Calls int
	// Self is the time in the operator less the time of the operators it
	// called; the Self times of a profile add up to the time spent in
	// operators. Total includes the operators it called.
	Self, Total time.Duration
}

// Profile runs f with the shim's operator profiler on and returns every
// operator that ran, on any thread, by Self time, largest first. Timing each
// operator costs about a microsecond, so profile a few steps after a warm-up
// and read the shares, not the absolute times. Only one profile runs at a
// time.
func Profile(f func()) ([]OpTime, error) { return profile(f, false) }

// ProfileByShape is Profile with operators keyed by name and input sizes
// ("aten::mm [2048, 128] [128, 384]"), as PyTorch's
// key_averages(group_by_input_shape=True); recording the sizes makes each
// operator slower still.
func ProfileByShape(f func()) ([]OpTime, error) { return profile(f, true) }

func profile(f func(), shapes bool) ([]OpTime, error) {
	if err := capi.ProfileStart(shapes); err != nil {
		return nil, newError("profile", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = capi.ProfileStop()
		}
	}()
	f()
	stopped = true
	if err := capi.ProfileStop(); err != nil {
		return nil, newError("profile", err)
	}
	return parseProfile(capi.ProfileTable())
}

// parseProfile reads the shim's table: "name\tcalls\tself_ns\ttotal_ns" lines.
func parseProfile(table string) ([]OpTime, error) {
	var out []OpTime
	for _, line := range strings.Split(strings.TrimSuffix(table, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("profile: malformed line %q from the shim", line)
		}
		var n [3]int64
		for i := range n {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("profile: malformed line %q from the shim: %w", line, err)
			}
			n[i] = v
		}
		out = append(out, OpTime{Name: f[0], Calls: int(n[0]), Self: time.Duration(n[1]), Total: time.Duration(n[2])})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Self != out[j].Self {
			return out[i].Self > out[j].Self
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
