// Command hlprobe is the test program of TestRelocatedBinary: it starts as
// the hiddenlab CLI does (exit 1 with torch.LoadError's message), reports
// the shim it loaded and does a little tensor math. With -nocheck it skips
// the LoadError check, to show what tensor work without a shim does.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hiddenlab/hiddenlab/torch"
)

func main() {
	nocheck := flag.Bool("nocheck", false, "skip the torch.LoadError check")
	flag.Parse()
	if err := torch.LoadError(); err != nil && !*nocheck {
		fmt.Fprintln(os.Stderr, "hlprobe:", err)
		os.Exit(1)
	}
	sum := torch.Ones([]int{2, 3}).Sum().Item()
	fmt.Printf("shim: %s\nlibtorch: %s\nsum: %g\n", torch.ShimPath(), torch.Version(), sum)
}
