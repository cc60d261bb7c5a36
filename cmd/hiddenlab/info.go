package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/hiddenlab/hiddenlab/torch"
)

// infoCmd is "hiddenlab info": the loaded shim, its libtorch and the visible
// devices.
func infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Print the libtorch build, threads and visible CUDA devices",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("takes no arguments (got %q)", args)
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			w := c.OutOrStdout()
			fmt.Fprintf(w, "hiddenlab %s\n", version)
			fmt.Fprintf(w, "libtorch %s; shim built with CUDA: %v; threads %d; %d CPU cores\n", torch.Version(), torch.BuiltWithCUDA(), torch.NumThreads(), runtime.NumCPU())
			if core := torch.BLASCore(); core != "" {
				fmt.Fprintf(w, "OpenBLAS kernels: %s (OPENBLAS_CORETYPE=%q)\n", core, os.Getenv("OPENBLAS_CORETYPE"))
			}
			fmt.Fprintf(w, "shim's own CPU kernels: up to %s (%s)\n", torch.SIMD(), torch.SIMDEnv)
			if torch.AVX512() {
				fmt.Fprintf(w, "float32 Linear, Matmul by a matrix and attention: the shim's AVX-512 GEMM\n")
			}
			n := torch.CUDADeviceCount()
			fmt.Fprintf(w, "CUDA devices: %d\n", n)
			for i := 0; i < n; i++ {
				info, err := torch.CUDADeviceInfo(i)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "  cuda:%d %s, %.1f GiB\n", i, info.Name, float64(info.TotalMemory)/(1<<30))
			}
			return nil
		},
	}
}
