package torch

import (
	"os"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// SIMDEnv names the environment variable that caps the instruction sets of
// the shim's own CPU kernels (the codebook op's scores and top-k, MoHD's
// shared products and Monarch loops, SwiGLU, AdamW): "avx512" (the default:
// whatever the CPU has), "avx2" (AVX2 with FMA at most) or "generic"
// (portable code only). The kernels at each level compute the same results,
// except the codebook's scores and MoHD's shared products: AVX-512 sums each
// as one FMA chain, below it the BLAS's GEMM may round some last bits
// differently (CodebookScores). Tests use it to check
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

// BLASCore names the kernels OpenBLAS chose when it was loaded ("Haswell",
// "SkylakeX", …), or "" when libtorch's BLAS is not OpenBLAS. OpenBLAS picks
// them from the CPU model, or from OPENBLAS_CORETYPE where that is set; their
// summation orders differ, so a result repeats bit for bit only with the same
// kernels (runs record them: rundir's run.json, "blas").
func BLASCore() string { return capi.BLASCore() }
