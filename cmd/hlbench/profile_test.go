package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"
)

func TestOpKind(t *testing.T) {
	for _, c := range []struct{ name, kind string }{
		{"aten::mm", "GEMM"},
		{"aten::mm [2048, 256] [256, 1024]", "GEMM"},
		{"aten::bmm", "GEMM"},
		{"hl::linear_backward", "GEMM"}, // the shim's own GEMM (its scope's self time)
		{"hl::attention", "attention"},
		{"aten::_softmax_backward_data", "attention"},
		{"aten::native_layer_norm_backward", "norms"},
		{"aten::gelu_backward", "activations"},
		{"hl::codebook_quantize", "codebook op"},
		{"hl::codebook_quantize_backward", "codebook op"},
		{"hl::adamw_step", "AdamW"},
		{"aten::index_select", "indexing"},
		{"aten::cat { [2, 3] [2, 3] }", "copies and fills"},
		{"aten::add_", "elementwise"},
		{"MmBackward0", "autograd nodes"},
		{"aten::select", "other"},
		{"hl::grouped_mm", "other"},
	} {
		if got := opKind(c.name); got != c.kind {
			t.Errorf("opKind(%q) = %q, want %q", c.name, got, c.kind)
		}
	}
}

func TestWriteProfile(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	// Two steps of 10 ms: 5 ms/step of GEMM, 1 of elementwise, 1.5 in the
	// AdamW scope of which 0.5 its own: 2.5 ms/step outside operators.
	ops := []torch.OpTime{
		{Name: "aten::mm", Calls: 4, Self: ms(10), Total: ms(10)},
		{Name: "aten::mul", Calls: 6, Self: ms(2), Total: ms(2)},
		{Name: "hl::adamw_step", Calls: 2, Self: ms(1), Total: ms(3)},
		{Name: "aten::add_", Calls: 2, Self: ms(2), Total: ms(2)},
	}
	var b bytes.Buffer
	writeProfile(&b, ops, 2, 0.010)
	out := b.String()
	for _, want := range []string{
		"2 step(s), 10.0 ms per step",
		"GEMM                          5.0   50.0%",
		"elementwise                   2.0   20.0%",
		"AdamW                         0.5    5.0%",
		"outside operators             2.5   25.0%",
		"hl::adamw_step                           total      1.5 ms/step   15.0%",
		"aten::mm                                                          2.0       5.00       5.00   50.0%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("profile lacks %q:\n%s", want, out)
		}
	}
}
