// Command hlbench runs hiddenlab's benchmarks, each side by side with the
// same workload in PyTorch eager (Debian's python3-torch: the same libtorch)
// at the same thread count, and prints the ratios.
//
//	go run ./cmd/hlbench [-suite core] [-threads 1] [-seconds 2]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"
)

// suite is one benchmark family.
type suite struct {
	name string
	run  func(cfg config) error
}

type config struct {
	threads int
	seconds float64
	repeats int
	rounds  int
	python  string
}

var suites = []suite{
	{"core", runCore},
	{"gpt", runGPT},
	{"gpu", runGPU},
}

func main() {
	var cfg config
	only := flag.String("suite", "", "run only this suite ("+suiteNames()+")")
	flag.IntVar(&cfg.threads, "threads", 1, "libtorch threads, for Go and PyTorch alike")
	flag.Float64Var(&cfg.seconds, "seconds", 2, "measuring time per case and side")
	flag.IntVar(&cfg.repeats, "repeats", 5, "timed repeats per case and round")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds alternating Go and PyTorch (the median over all repeats is reported)")
	flag.StringVar(&cfg.python, "python", "/usr/bin/python3", "Python interpreter with torch (the PyTorch reference)")
	child := flag.String("child", "", "run one measurement in this process (suite:case; gpt:large, codebook:codebook, mohd:'C50 gathered', …) and print it as JSON")
	prof := flag.Bool("profile", false, "with -child: profile the timed steps by operator (written to stderr)")
	flag.BoolVar(&profileShapes, "profile-shapes", false, "with -profile: key operators by name and input sizes")
	flag.IntVar(&profileRows, "profile-rows", profileRows, "with -profile: operators listed, most self time first (0: all)")
	flag.Parse()

	if err := torch.SetNumThreads(cfg.threads); err != nil {
		fmt.Fprintln(os.Stderr, "hlbench:", err)
		os.Exit(1)
	}
	if *prof {
		if *child == "" {
			fmt.Fprintln(os.Stderr, "hlbench: -profile needs -child suite:case")
			os.Exit(2)
		}
		profileOut = os.Stderr
	}
	if *child != "" {
		if err := runChild(cfg, *child); err != nil {
			fmt.Fprintln(os.Stderr, "hlbench:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Printf("hlbench: libtorch %s, %d thread(s), OpenBLAS kernels %q (Go and PyTorch alike), %s\n", torch.Version(), torch.NumThreads(), torch.BLASCore(), time.Now().Format(time.RFC3339))
	ran := false
	for _, s := range suites {
		if *only != "" && s.name != *only {
			continue
		}
		ran = true
		fmt.Printf("\n== %s ==\n", s.name)
		if err := s.run(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "hlbench: %s: %v\n", s.name, err)
			os.Exit(1)
		}
	}
	if !ran {
		fmt.Fprintf(os.Stderr, "hlbench: unknown suite %q (have %s)\n", *only, suiteNames())
		os.Exit(2)
	}
}

func suiteNames() string {
	var names []string
	for _, s := range suites {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// measure times fn(n) for about cfg.seconds over cfg.repeats repeats and
// returns the microseconds per iteration of each repeat.
func measure(cfg config, fn func(n int)) []float64 {
	fn(100) // warm up
	n, elapsed := 100, time.Duration(0)
	per := time.Duration(cfg.seconds / float64(cfg.repeats) * float64(time.Second))
	for elapsed < per/4 {
		n *= 2
		t0 := time.Now()
		fn(n)
		elapsed = time.Since(t0)
	}
	n = max(1, int(float64(n)*float64(per)/float64(elapsed)))
	samples := make([]float64, cfg.repeats)
	for i := range samples {
		t0 := time.Now()
		fn(n)
		samples[i] = float64(time.Since(t0).Nanoseconds()) / 1e3 / float64(n)
	}
	return samples
}

// inRoundOrder is the order in which round r measures a suite's cases: as
// listed in even rounds, reversed in odd ones. This host's speed drifts by
// tens of percent within a minute; in a fixed order the first case of a
// round and the last are always measured apart (the codebook suite had
// codebook ÷ vanilla at 1.28x–1.35x where children of the two cases run back
// to back gave 1.17x–1.21x, benchmarks/ab.py alike), and reversing every
// other round makes a steady drift hit both ends alike.
func inRoundOrder[T any](cases []T, r int) []T {
	if r%2 == 0 {
		return cases
	}
	out := make([]T, len(cases))
	for i, c := range cases {
		out[len(cases)-1-i] = c
	}
	return out
}

// median of samples.
func median(samples []float64) float64 {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// sideBySide alternates Go and PyTorch rounds so that load from elsewhere on
// the machine falls on both alike, and returns the median per case of each side.
func sideBySide(cfg config, goSide func() map[string][]float64, pySide func() (map[string][]float64, error)) (gos, pys map[string]float64, err error) {
	all := func(dst map[string][]float64, src map[string][]float64) {
		for k, v := range src {
			dst[k] = append(dst[k], v...)
		}
	}
	g, p := map[string][]float64{}, map[string][]float64{}
	for r := 0; r < cfg.rounds; r++ {
		all(g, goSide())
		py, err := pySide()
		if err != nil {
			return nil, nil, err
		}
		all(p, py)
	}
	gos, pys = map[string]float64{}, map[string]float64{}
	for k, v := range g {
		gos[k] = median(v)
	}
	for k, v := range p {
		pys[k] = median(v)
	}
	return gos, pys, nil
}

// mallocEnv gives a PyTorch process the glibc malloc settings hiddenlab's
// torch package sets for itself (thresholds and one arena; see
// torch/runtime.go and hl_tune_malloc).
var mallocEnv = []string{"MALLOC_MMAP_THRESHOLD_=67108864", "MALLOC_TRIM_THRESHOLD_=268435456", "MALLOC_ARENA_MAX=1"}

// pytorch runs a reference script from benchmarks/ and decodes its JSON.
func pytorch(cfg config, script string, args []string, out any, env ...string) error {
	if _, err := os.Stat(cfg.python); err != nil {
		return fmt.Errorf("PyTorch reference needs %s with torch (Debian python3-torch; make setup installs it): %w", cfg.python, err)
	}
	cmd := exec.Command(cfg.python, append([]string{script}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("OMP_NUM_THREADS=%d", cfg.threads)), env...)
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w", script, err)
	}
	return json.Unmarshal(b, out)
}

// runChild runs one measurement for a parent hlbench (suite:case), so that
// each gets a fresh process and its own peak RSS.
func runChild(cfg config, spec string) error {
	suite, name, _ := strings.Cut(spec, ":")
	switch suite {
	case "gpt":
		return gptChild(cfg, name)
	case "codebook":
		return codebookChild(cfg, name)
	case "mohd":
		return mohdChild(name)
	}
	return fmt.Errorf("unknown child measurement %q", spec)
}
