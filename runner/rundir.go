package runner

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"hiddenlab/internal/atomicio"
	"hiddenlab/torch"
)

// Files of a run directory.
const (
	RecipeFile      = "recipe.yaml"   // the resolved recipe
	EnvFile         = "env.json"      // where and how it ran
	MetricsFile     = "metrics.jsonl" // one JSON object per log or eval
	SummaryFile     = "summary.json"  // final status and numbers
	ReportFile      = "report.md"     // the human-readable report
	CheckpointDir   = "checkpoints"
	PlotsDir        = "plots"
	StatusCompleted = "completed"
	StatusRunning   = "running"
	StatusInterrupt = "interrupted"
	StatusFailed    = "failed"
)

// TimingKeys are metric keys that measure wall time; they are left out when
// runs are compared for reproducibility.
var TimingKeys = []string{"elapsed_s", "tok_per_s", "step_s"}

// Record is one line of metrics.jsonl.
type Record struct {
	Step   int     // optimizer steps taken
	Split  string  // "train" or "eval"
	Values Logs    // the metrics
	At     float64 // elapsed seconds (a timing key)
}

// MarshalJSON writes {"step":…,"split":…,<metrics sorted>…}.
func (r Record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"step":%d,"split":%q`, r.Step, r.Split)
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		fmt.Fprintf(&b, ",%s:%s", kb, jsonNumber(r.Values[k]))
	}
	fmt.Fprintf(&b, `,"elapsed_s":%s}`, jsonNumber(r.At))
	return b.Bytes(), nil
}

// jsonNumber writes NaN and ±Inf as strings JSON can hold.
func jsonNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return `"NaN"`
	case math.IsInf(v, 1):
		return `"Inf"`
	case math.IsInf(v, -1):
		return `"-Inf"`
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ReadMetrics reads a run's metrics.jsonl.
func ReadMetrics(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", filepath.Join(dir, MetricsFile), line, err)
		}
		r := Record{Values: Logs{}}
		for k, v := range raw {
			switch k {
			case "step":
				r.Step = int(v.(float64))
			case "split":
				r.Split, _ = v.(string)
			case "elapsed_s":
				r.At, _ = v.(float64)
			default:
				switch x := v.(type) {
				case float64:
					r.Values[k] = x
				case string:
					r.Values[k] = map[string]float64{"NaN": math.NaN(), "Inf": math.Inf(1), "-Inf": math.Inf(-1)}[x]
				}
			}
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// metricsWriter appends records to metrics.jsonl, flushing each line.
type metricsWriter struct {
	f *os.File
}

// openMetrics opens metrics.jsonl for appending, first dropping records
// after step keep (when resuming: they were logged past the checkpoint).
func openMetrics(dir string, keep int) (*metricsWriter, error) {
	path := filepath.Join(dir, MetricsFile)
	if keep >= 0 {
		recs, err := ReadMetrics(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		var buf bytes.Buffer
		for _, r := range recs {
			if r.Step <= keep {
				b, _ := json.Marshal(r)
				buf.Write(append(b, '\n'))
			}
		}
		if err := atomicio.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsWriter{f: f}, nil
}

func (w *metricsWriter) write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.f.Write(append(b, '\n'))
	return err
}

func (w *metricsWriter) Close() error { return w.f.Close() }

// Environment describes where a run ran.
type Environment struct {
	GitCommit   string   `json:"git_commit"`
	GitDirty    bool     `json:"git_dirty"`
	Torch       string   `json:"libtorch"`
	BuildInfo   string   `json:"build_info"`
	CUDA        bool     `json:"cuda_build"`
	Device      string   `json:"device"`
	Threads     int      `json:"threads"`
	GoVersion   string   `json:"go_version"`
	Host        string   `json:"host"`
	CPU         string   `json:"cpu"`
	Cores       int      `json:"cores"`
	Command     []string `json:"command"`
	Started     string   `json:"started"`
	Resumes     []string `json:"resumes,omitempty"`
	MallocTuned bool     `json:"malloc_tuned"`
}

func currentEnvironment(device string, threads int) Environment {
	e := Environment{
		Torch: torch.Version(), BuildInfo: firstLine(torch.BuildInfo()), CUDA: torch.BuiltWithCUDA(),
		Device: device, Threads: threads, GoVersion: runtime.Version(), Cores: runtime.NumCPU(),
		Command: os.Args, Started: time.Now().UTC().Format(time.RFC3339),
		MallocTuned: os.Getenv("HIDDENLAB_MALLOC") != "default",
	}
	e.Host, _ = os.Hostname()
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		e.GitCommit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
			e.GitDirty = len(bytes.TrimSpace(st)) > 0
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				_, v, _ := strings.Cut(line, ":")
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return e
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Summary is summary.json: how the run ended and its final numbers.
type Summary struct {
	Name      string  `json:"name"`
	Family    string  `json:"family"`
	Status    string  `json:"status"`
	Error     string  `json:"error,omitempty"`
	Steps     int     `json:"steps"`      // steps taken
	StepsPlan int     `json:"steps_plan"` // steps the recipe asked for
	Params    int     `json:"params"`
	WallS     float64 `json:"wall_s"`
	TokPerS   float64 `json:"tok_per_s,omitempty"`
	// Final metrics of the last train log and the last evaluation.
	Train Logs `json:"train"`
	Eval  Logs `json:"eval"`
	// Extra holds family-specific final results.
	Extra map[string]any `json:"extra,omitempty"`
}

// ReadSummary reads a run's summary.json.
func ReadSummary(dir string) (*Summary, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return &s, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(path, append(b, '\n'), 0o644)
}

// finite replaces non-finite values (JSON cannot hold them) by nil-able strings.
func finite(l Logs) Logs {
	out := Logs{}
	for k, v := range l {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}
