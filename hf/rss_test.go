package hf_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/hf"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// TestPeakRSS measures the peak resident memory (VmHWM) of a process that
// loads a synthetic Llama-shaped checkpoint of about HL_HF_RSS_MB megabytes
// of f32 weights, saved as f32 and as bf16. It is skipped unless HL_HF_RSS_MB
// is set, as it writes gigabytes:
//
//	HL_HF_RSS_MB=1200 go test -run TestPeakRSS -v ./hf
func TestPeakRSS(t *testing.T) {
	mb, _ := strconv.Atoi(os.Getenv("HL_HF_RSS_MB"))
	if mb <= 0 {
		t.Skip("set HL_HF_RSS_MB (e.g. 1200) to measure the peak RSS of loading a checkpoint that large")
	}
	const V, C, F = 32000, 2048, 5632
	perLayer := (16+2*4)*128*C + C*C + 3*C*F + 2*C
	layers := max(1, (mb<<20/4-2*V*C)/perLayer)
	cfg := nn.GPTConfig{Vocab: V, Context: 2048, Width: C, Layers: layers, Heads: 16, KVHeads: 4, Positions: "rotary",
		Norm: "rmsnorm", GatedMLP: true, Activation: nn.SiLU, NoBias: true, MLPWidth: F}
	root := t.TempDir()
	m, err := nn.NewGPT(cfg)
	require.NoError(t, err)
	f32 := int64(4 * m.Store.NumParams(nil))
	for _, dt := range []torch.DType{torch.Float32, torch.BFloat16} {
		require.NoError(t, hf.Save(filepath.Join(root, dt.String()), hf.Llama, m.Config, m.Store, hf.SaveOptions{DType: dt}))
	}
	m.Close()
	for _, dt := range []torch.DType{torch.Float32, torch.BFloat16} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSChild$", "-test.v")
		cmd.Env = append(os.Environ(), "HL_HF_RSS_DIR="+filepath.Join(root, dt.String()))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		var base, peak int64
		for _, line := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "rss: baseline %d peak %d", &base, &peak); err == nil {
				break
			}
		}
		require.NotZero(t, peak, "%s", out)
		st, err := os.Stat(filepath.Join(root, dt.String(), hf.WeightsFile))
		require.NoError(t, err)
		t.Logf("%d layers, f32 model %.0f MiB, %s file %.0f MiB: peak RSS %.0f MiB = %.3f × the f32 model "+
			"(process baseline before loading %.0f MiB; load adds %.0f MiB = %.3f ×)",
			layers, mib(f32), dt, mib(st.Size()), mib(peak), float64(peak)/float64(f32), mib(base), mib(peak-base), float64(peak-base)/float64(f32))
		require.Less(t, float64(peak), 1.3*float64(f32))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// TestPeakRSSChild is TestPeakRSS's child process.
func TestPeakRSSChild(t *testing.T) {
	dir := os.Getenv("HL_HF_RSS_DIR")
	if dir == "" {
		t.Skip("run by TestPeakRSS")
	}
	base := vmHWM(t)
	m, err := hf.Load(dir, torch.CPU)
	require.NoError(t, err)
	defer m.Close()
	fmt.Printf("rss: baseline %d peak %d\n", base, vmHWM(t))
}

// vmHWM reads the process's peak resident set size in bytes.
func vmHWM(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), "VmHWM: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
