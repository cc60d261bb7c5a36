// Package torch is hiddenlab's Go API over libtorch: tensors, dtypes, devices,
// autograd and the ops a Transformer needs, backed by the C shim in cc/.
//
// # Ownership
//
// A *Tensor owns one libtorch handle. Ops register their results in the
// innermost open Scope, and Scope.Close frees them all in one call:
//
//	s := torch.NewScope()
//	defer s.Close()
//	loss := torch.CrossEntropy(torch.Linear(x, w, b), y)
//	loss.Backward()
//	return loss.Item() // scalars leave as Go values
//
// (Example shows it end to end.)
//
// A tensor that must outlive its scope is moved to the parent scope with
// Scope.Keep, or taken out of scopes altogether with Tensor.Retain (its owner
// then calls Free). Tensors created while no scope is open are owned by the
// caller. Memory is never left to Go's garbage collector: it cannot see
// libtorch's allocations, and finalizer-freed tensors measured ~3x slower.
//
// # Threads
//
// libtorch keeps grad mode, autocast and the CUDA stream per OS thread. All
// tensor work of one model runs on one goroutine locked to its OS thread (the
// device goroutine; see RunLocked). The scope stack is per process, so only one
// goroutine may use tensors at a time.
//
// # Errors
//
// Tensor math panics with a *Error (op, kind, message), as PyTorch raises; the
// runner recovers at step boundaries with Try. Functions that touch the outside
// world (devices, files) return errors.
//
// # Fused ops and profiling
//
// A few hot compositions are single shim calls with hand-written backwards,
// one autograd node each, summing in a fixed order (bitwise-reproducible
// runs): CodebookQuantize (models/codebook; CodebookScores returns the
// scores it ranks, CodebookCount counts the codes its ids select),
// GroupedMM, RoutedIn, RoutedOut, Monarch, SwiGLU, SquareSum and the
// router's choice RouteTopK (models/mohd), and LayerNorm with a gain and
// bias per group; Softmax over a short last dimension and IndexSelect of
// rows that need a gradient are nodes of the shim's on the CPU (libtorch's
// kernels are slow for rows of a few entries). Where the CPU has AVX-512,
// float32 Linear (and Matmul by a matrix), Attention without a mask or
// dropout, the codebook's scores, the routed products and the Monarch loops
// run AVX-512 kernels of the shim's own (the BLAS may be pinned to AVX2
// kernels: BLASCore); their products sum each output as one FMA chain, so a
// result does not depend on the thread count (SIMDEnv holds them back).
// Profile and ProfileByShape time every operator, autograd node and shim
// scope that runs, as PyTorch's profiler's key_averages does.
package torch
