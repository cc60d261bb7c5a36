package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"
)

// profileOut, when not nil (hlbench -child suite:case -profile), makes
// timeSteps run the timed steps under the operator profiler and write where
// their time went there.
var profileOut io.Writer

// profileShapes keys the profile's operators by name and input sizes.
var profileShapes bool

// profileRows is how many operators the profile's table lists (all when ≤ 0).
var profileRows = 25

// timeSteps runs warmup steps, then times steps more: wall and CPU seconds
// per step.
func timeSteps(step func(), warmup, steps int) (wallS, cpuS float64, err error) {
	for i := 0; i < warmup; i++ {
		step()
	}
	run := func() {
		for i := 0; i < steps; i++ {
			step()
		}
	}
	t0, c0, f0 := time.Now(), cpuSeconds(), minorFaults()
	var ops []torch.OpTime
	if profileOut == nil {
		run()
	} else if profileShapes {
		if ops, err = torch.ProfileByShape(run); err != nil {
			return 0, 0, err
		}
	} else if ops, err = torch.Profile(run); err != nil {
		return 0, 0, err
	}
	n := float64(steps)
	wallS, cpuS = time.Since(t0).Seconds()/n, (cpuSeconds()-c0)/n
	if profileOut != nil {
		writeProfile(profileOut, ops, steps, wallS)
		fmt.Fprintf(profileOut, "minor page faults per step: %.0f\n", float64(minorFaults()-f0)/n)
	}
	return wallS, cpuS, nil
}

// opKinds sorts operators into the kinds of the profile's summary by name
// prefix, first match wins (the Python references' --profile use the same).
var opKinds = []struct {
	kind     string
	prefixes []string
}{
	{"GEMM", []string{"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::matmul", "aten::linear", "hl::linear"}},
	{"attention", []string{"aten::scaled_dot_product", "aten::_scaled_dot_product", "aten::_softmax", "aten::softmax", "aten::_softmax_backward_data",
		"hl::attention"}},
	{"cross-entropy", []string{"aten::cross_entropy", "aten::log_softmax", "aten::_log_softmax", "aten::nll_loss"}},
	{"norms", []string{"aten::layer_norm", "aten::native_layer_norm", "aten::rsqrt"}},
	{"activations", []string{"aten::gelu", "aten::silu", "aten::relu", "aten::threshold"}},
	{"codebook op", []string{"hl::codebook"}},
	{"AdamW", []string{"hl::adamw", "aten::_foreach_"}},
	{"indexing", []string{"aten::index", "aten::_index_put", "aten::index_put", "aten::index_select", "aten::index_add",
		"aten::sort", "aten::topk", "aten::one_hot", "aten::gather", "aten::scatter", "aten::embedding", "aten::masked_fill"}},
	{"copies and fills", []string{"aten::copy_", "aten::fill_", "aten::zero_", "aten::zeros", "aten::empty", "aten::clone",
		"aten::contiguous", "aten::cat", "aten::to", "aten::_to_copy", "aten::ones"}},
	{"elementwise", []string{"aten::add", "aten::mul", "aten::div", "aten::sub", "aten::sum", "aten::mean", "aten::square",
		"aten::sqrt", "aten::pow", "aten::clamp", "aten::neg", "aten::exp", "aten::log", "aten::where", "aten::cos", "aten::sin"}},
}

func opKind(name string) string {
	for _, k := range opKinds {
		for _, p := range k.prefixes {
			if strings.HasPrefix(name, p) {
				return k.kind
			}
		}
	}
	if strings.HasSuffix(name, "Backward0") || strings.HasSuffix(name, "Backward1") {
		return "autograd nodes"
	}
	return "other"
}

// writeProfile prints the profiled steps' self time by kind and the
// operators with the most self time, per step and as shares of the step's
// wall time; what the operators leave of the step is Go, the binding and
// the autograd engine.
func writeProfile(w io.Writer, ops []torch.OpTime, steps int, wallS float64) {
	perStep := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(steps) }
	wallMs := wallS * 1e3
	byKind := map[string]time.Duration{}
	var inOps time.Duration
	for _, op := range ops {
		byKind[opKind(op.Name)] += op.Self
		inOps += op.Self
	}
	fmt.Fprintf(w, "profile: %d step(s), %.1f ms per step (wall, profiler on); self time per step by kind:\n", steps, wallMs)
	fmt.Fprintf(w, "%-22s %10s %7s\n", "kind", "ms/step", "share")
	var kinds []string
	for _, k := range opKinds {
		kinds = append(kinds, k.kind)
	}
	kinds = append(kinds, "autograd nodes", "other")
	for _, k := range kinds {
		if d, ok := byKind[k]; ok {
			fmt.Fprintf(w, "%-22s %10.1f %6.1f%%\n", k, perStep(d), 100*perStep(d)/wallMs)
		}
	}
	rest := wallMs - perStep(inOps)
	fmt.Fprintf(w, "%-22s %10.1f %6.1f%%\n", "outside operators", rest, 100*rest/wallMs)
	fmt.Fprintf(w, "(self times on several threads add up: inside a parallel region they can exceed the wall time.)\n")
	// The shim's scopes (AdamW, the fused ops) call libtorch operators whose
	// self time counts under their own kinds above; their totals say what
	// the scope costs in all.
	for _, op := range ops {
		if strings.HasPrefix(op.Name, "hl::") {
			fmt.Fprintf(w, "%-40s total %8.1f ms/step %6.1f%%\n", op.Name, perStep(op.Total), 100*perStep(op.Total)/wallMs)
		}
	}
	fmt.Fprintf(w, "\n%-60s %8s %10s %10s %7s\n", "operator (most self time)", "calls", "self ms", "total ms", "share")
	for i, op := range ops {
		if i == profileRows && profileRows > 0 {
			break
		}
		fmt.Fprintf(w, "%-60s %8.1f %10.2f %10.2f %6.1f%%\n", op.Name, float64(op.Calls)/float64(steps),
			perStep(op.Self), perStep(op.Total), 100*perStep(op.Self)/wallMs)
	}
}
