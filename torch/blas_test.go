package torch

import (
	"os"
	"strings"
	"testing"
)

// TestBLASCore: the kernels reported are OpenBLAS's own answer, so they
// follow OPENBLAS_CORETYPE where it is set, and are named whenever the
// process has OpenBLAS mapped.
func TestBLASCore(t *testing.T) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps:", err)
	}
	core := BLASCore()
	if !strings.Contains(string(maps), "libopenblas") {
		if core != "" {
			t.Fatalf("BLASCore = %q without OpenBLAS loaded", core)
		}
		t.Skip("libtorch's BLAS is not OpenBLAS here")
	}
	if core == "" {
		t.Fatal(`BLASCore = "" with OpenBLAS loaded`)
	}
	if want := os.Getenv("OPENBLAS_CORETYPE"); want != "" && !strings.EqualFold(core, want) {
		t.Fatalf("BLASCore = %q, OPENBLAS_CORETYPE = %q", core, want)
	}
	t.Logf("OpenBLAS kernels: %s", core)
}
