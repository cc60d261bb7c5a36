package torch

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSIMDLevels runs the tests of the shim's own kernels again in child
// processes with HIDDENLAB_SIMD=avx2 and =generic, so that one machine
// checks the code every level runs (this test's own run checks the CPU's
// best). Each level must pass the same tests: the same results as the
// composed ops, the same ids and ties. (torch/optim's TestAdamWSIMDLevels
// does the same for the one-pass AdamW.)
func TestSIMDLevels(t *testing.T) {
	if os.Getenv(SIMDEnv) != "" {
		t.Skip("a child run of TestSIMDLevels")
	}
	if testing.Short() {
		t.Skip("runs the kernel tests twice more")
	}
	kernels := "^(TestCodebookQuantizeTopK|TestCodebookTopKOfScores|TestCodebookScores|TestGroupLayerNorm|TestMonarchKernels|TestMonarch|TestSwiGLU|TestRouted|TestRoutedFloat32|TestLinearKernel|TestAttentionKernel)$"
	for _, level := range []string{"avx2", "generic"} {
		cmd := exec.Command(os.Args[0], "-test.run="+kernels, "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), SIMDEnv+"="+level)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "HIDDENLAB_SIMD=%s:\n%s", level, out)
		for _, test := range []string{"TestCodebookQuantizeTopK", "TestCodebookTopKOfScores", "TestGroupLayerNorm"} {
			require.Contains(t, string(out), "--- PASS: "+test, "HIDDENLAB_SIMD=%s", level)
		}
	}
}

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
