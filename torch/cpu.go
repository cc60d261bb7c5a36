package torch

import (
	"os"

	"golang.org/x/sys/cpu"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// SIMDEnv names the environment variable that caps the instruction sets of
// the shim's own CPU kernels (float32 Linear and attention, the codebook
// op's scores and top-k, MoHD's routed products and Monarch loops, SwiGLU,
// AdamW): "avx512" (the default: whatever the CPU has), "avx512f" (AVX-512
// without its BF16 instructions, which only the codebook op's screen of
// the scores uses: the same ids), "avx2" (AVX2 with FMA at most) or
// "generic" (portable code only). The kernels at each level
// compute the same results, except the matrix products: at AVX-512 they are
// the shim's own GEMM, which sums each output as one FMA chain (the same
// bits on any number of threads); below it libtorch's BLAS, which may round
// some last bits differently (CodebookScores), and Linear and attention are
// libtorch's own. Tests use it to check
// every level on one machine; a run can use it to repeat a result made on
// a CPU without AVX-512. libtorch's and the BLAS's kernels are not affected.
const SIMDEnv = capi.SIMDEnv

// SIMD is the cap HIDDENLAB_SIMD sets ("avx512" when unset).
func SIMD() string {
	if v := os.Getenv(SIMDEnv); v != "" {
		return v
	}
	return "avx512"
}

// AVX512 reports whether the shim's own kernels run at AVX-512: the CPU (and
// its OS) has it and SIMD() allows it. Then float32 Linear, Matmul by a
// matrix and attention are the shim's GEMM, and its products (codebook
// scores included) are one FMA chain per output.
func AVX512() bool {
	s := SIMD()
	return (s == "avx512" || s == "avx512f") && cpu.X86.HasAVX512F
}

// BLASCore names the kernels OpenBLAS chose when it was loaded ("Haswell",
// "SkylakeX", …), or "" when libtorch's BLAS is not OpenBLAS. OpenBLAS picks
// them from the CPU model, or from OPENBLAS_CORETYPE where that is set; their
// summation orders differ, so a result repeats bit for bit only with the same
// kernels (runs record them: rundir's run.json, "blas").
func BLASCore() string { return capi.BLASCore() }
