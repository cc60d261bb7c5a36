package torch

import (
	"strings"
	"testing"
	"time"
)

// The profiled products are float64: in float32 on AVX-512 CPUs Matmul by a
// matrix is the shim's own GEMM (one hl::linear scope, no aten::mm inside),
// and these tests check how libtorch's nested operators are counted.
func TestProfile(t *testing.T) {
	a := Randn([]int{64, 64}, Float64).Retain()
	defer a.Free()
	w := Randn([]int{64, 64}, Float64).SetRequiresGrad(true).Retain()
	defer w.Free()
	start := time.Now()
	ops, err := Profile(func() {
		s := NewScope()
		defer s.Close()
		for i := 0; i < 3; i++ {
			a.Matmul(w).Relu().Sum().Backward()
		}
	})
	wall := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]OpTime{}
	var self time.Duration
	for i, op := range ops {
		byName[op.Name] = op
		self += op.Self
		if op.Calls < 1 || op.Self < 0 || op.Self > op.Total {
			t.Errorf("%s: calls %d, self %v, total %v", op.Name, op.Calls, op.Self, op.Total)
		}
		if i > 0 && ops[i-1].Self < op.Self {
			t.Errorf("not sorted by self time: %s %v before %s %v", ops[i-1].Name, ops[i-1].Self, op.Name, op.Self)
		}
	}
	if self > wall {
		t.Errorf("self times add up to %v, more than the %v the profile ran", self, wall)
	}
	// Three forward products (aten::mm under aten::matmul) and, for w's
	// gradient, one product per backward in MmBackward0.
	for _, c := range []struct {
		name  string
		calls int
	}{
		{"aten::matmul", 3},
		{"aten::relu", 3},
		{"MmBackward0", 3},
		{"ReluBackward0", 3},
	} {
		op, ok := byName[c.name]
		if !ok {
			t.Errorf("%s missing from the profile", c.name)
			continue
		}
		if op.Calls != c.calls {
			t.Errorf("%s: %d calls, want %d", c.name, op.Calls, c.calls)
		}
	}
	// aten::matmul calls aten::mm: matmul's self time excludes the three
	// forward products, whose time is part of mm's total (with the three
	// of the backward, which do the same FLOPs, so no share is fixed).
	if mm, mat := byName["aten::mm"], byName["aten::matmul"]; mm.Calls != 6 || mat.Total-mat.Self <= 0 || mat.Total-mat.Self > mm.Total {
		t.Errorf("aten::mm %+v should run 6 times, 3 under aten::matmul %+v", mm, mat)
	}
	// A second profile starts from an empty table; profiles do not nest.
	ops, err = Profile(func() {
		if _, err := Profile(func() {}); err == nil || !strings.Contains(err.Error(), "already on") {
			t.Errorf("nested profile: %v, want an 'already on' error", err)
		}
	})
	if err != nil || len(ops) != 0 {
		t.Errorf("empty profile: %v, %v", ops, err)
	}
}

func TestProfileByShape(t *testing.T) {
	a := Randn([]int{8, 4}, Float64).Retain()
	defer a.Free()
	b := Randn([]int{4, 3}, Float64).Retain()
	defer b.Free()
	ops, err := ProfileByShape(func() {
		s := NewScope()
		defer s.Close()
		a.Matmul(b)
		a.Matmul(b)
		b.T().Matmul(a.T())
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, op := range ops {
		calls[op.Name] = op.Calls
	}
	for name, want := range map[string]int{"aten::mm [8, 4] [4, 3]": 2, "aten::mm [3, 4] [4, 8]": 1} {
		if calls[name] != want {
			t.Errorf("%s: %d calls, want %d (profile %v)", name, calls[name], want, calls)
		}
	}
}

func TestParseProfile(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []OpTime
		err  bool
	}{
		{"", nil, false},
		{"aten::add\t2\t30\t40\naten::mm\t1\t500\t500\n", []OpTime{{"aten::mm", 1, 500, 500}, {"aten::add", 2, 30, 40}}, false},
		{"aten::mm\t1\t500\n", nil, true},
		{"aten::mm\tx\t500\t500\n", nil, true},
	} {
		got, err := parseProfile(c.in)
		if (err != nil) != c.err {
			t.Errorf("%q: error %v, want error %v", c.in, err, c.err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: %v, want %v", c.in, got, c.want)
			}
		}
	}
}
