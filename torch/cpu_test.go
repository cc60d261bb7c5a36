package torch

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSIMDLevels runs the tests of the shim's own kernels again in child
// processes with HIDDENLAB_SIMD=avx512f (no bfloat16 screen in the codebook
// op), =avx2 and =generic, so that one machine
// checks the code every level runs (this test's own run checks the CPU's
// best). Each level must pass the same tests: the same results as the
// composed ops, the same ids and ties. The codebook op's lookup and its
// backward's scatter are compiled for AVX-512 without fused multiply-adds,
// so every level must also compute the same bits as this process: each
// child's TestCodebookOpBits logs hashes of its ids, output, MSE and code
// gradients (checked: the scatter compiled with FMA contraction fails it).
// (torch/optim's TestAdamWSIMDLevels does the same for the one-pass AdamW.)
func TestSIMDLevels(t *testing.T) {
	if os.Getenv(SIMDEnv) != "" {
		t.Skip("a child run of TestSIMDLevels")
	}
	if testing.Short() {
		t.Skip("runs the kernel tests twice more")
	}
	want := codebookOpBits()
	t.Logf("codebook op at this CPU's best level: %s", want)
	kernels := "^(TestCodebookQuantizeTopK|TestCodebookTopKOfScores|TestCodebookScreen|TestCodebookScores|TestCodebookOpBits|TestGroupLayerNorm|TestMonarchKernels|TestMonarch|TestSwiGLU|TestRouted|TestRoutedFloat32|TestLinearKernel|TestAttentionKernel)$"
	for _, level := range []string{"avx512f", "avx2", "generic"} {
		cmd := exec.Command(os.Args[0], "-test.run="+kernels, "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), SIMDEnv+"="+level)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "HIDDENLAB_SIMD=%s:\n%s", level, out)
		for _, test := range []string{"TestCodebookQuantizeTopK", "TestCodebookTopKOfScores", "TestGroupLayerNorm"} {
			require.Contains(t, string(out), "--- PASS: "+test, "HIDDENLAB_SIMD=%s", level)
		}
		require.Contains(t, string(out), "codebook op bits: "+want, "HIDDENLAB_SIMD=%s against this CPU's best level", level)
	}
}

// TestCodebookOpBits logs codebookOpBits for TestSIMDLevels' children.
func TestCodebookOpBits(t *testing.T) {
	if os.Getenv(SIMDEnv) == "" {
		t.Skip("a child of TestSIMDLevels, which computes the same in its own process")
	}
	t.Logf("codebook op bits: %s", codebookOpBits())
}

// codebookOpBits hashes the codebook op's ids, output, MSE and code
// gradients for Gaussian data (where the levels' different score kernels
// pick the same ids), G = 1 and 4: 500 tokens and an MSE weight of 0.37,
// so that the MSE term's factor 2·0.37/500 is no power of two and a fused
// multiply-add in the scatter would change bits.
func codebookOpBits() string {
	s := NewScope()
	defer s.Close()
	ManualSeed(1)
	var out []string
	for _, G := range []int{1, 4} {
		d := 256 / G
		x := Randn([]int{500, G, d}).SetRequiresGrad(true)
		codes := Randn([]int{G, 1024, d}).SetRequiresGrad(true)
		w := Randn([]int{500, G, d})
		y, ids, mse := CodebookQuantize(x, codes, 8, 0)
		y.Mul(w).Sum().Add(mse.MulScalar(0.37)).Backward()
		out = append(out, fmt.Sprintf("G=%d %x %x %x %x", G, bitsHash(ids.To(Float32)), bitsHash(y), bitsHash(mse), bitsHash(codes.Grad())))
	}
	return strings.Join(out, "; ")
}

// bitsHash is FNV-1a over a float32 tensor's bits.
func bitsHash(t *Tensor) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range t.Float32s() {
		b := math.Float32bits(v)
		for i := 0; i < 4; i++ {
			h = (h ^ uint64(byte(b>>(8*i)))) * 1099511628211
		}
	}
	return h
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
