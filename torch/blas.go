package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

// BLASCore names the kernels OpenBLAS chose when it was loaded ("Haswell",
// "SkylakeX", …), or "" when libtorch's BLAS is not OpenBLAS. OpenBLAS picks
// them from the CPU model, or from OPENBLAS_CORETYPE where that is set; their
// summation orders differ, so a result repeats bit for bit only with the same
// kernels (runs record them: rundir's run.json, "blas").
func BLASCore() string { return capi.BLASCore() }
