package main

import (
	"fmt"
	"runtime"

	"hiddenlab/torch"
)

func init() { commands["info"] = cmdInfo }

// cmdInfo prints the loaded shim, its libtorch and the visible devices.
func cmdInfo(args []string) error {
	fmt.Printf("libtorch %s; shim built with CUDA: %v; threads %d; %d CPU cores\n", torch.Version(), torch.BuiltWithCUDA(), torch.NumThreads(), runtime.NumCPU())
	n := torch.CUDADeviceCount()
	fmt.Printf("CUDA devices: %d\n", n)
	for i := 0; i < n; i++ {
		info, err := torch.CUDADeviceInfo(i)
		if err != nil {
			return err
		}
		fmt.Printf("  cuda:%d %s, %.1f GiB\n", i, info.Name, float64(info.TotalMemory)/(1<<30))
	}
	return nil
}
