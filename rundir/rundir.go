// Package rundir is the run directory: its file names, the readers of what
// a run wrote (resolved recipe, summary, metrics, stages), the metrics writer
// the engine appends to, and Open, which rebuilds any finished run's
// experiment (model, data, tokenizer) through the family registry for the
// commands that analyse runs.
package rundir

import (
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

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/torch"
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

// TimingKeys are metric keys that measure wall time or the clock; they are
// left out when runs are compared for reproducibility.
var TimingKeys = []string{"elapsed_s", "tok_per_s", "step_s", "time"}

// Record is one line of metrics.jsonl.
type Record = experiment.Record

// marshalRecord writes {"step":…,"split":…,<metrics sorted>…,"elapsed_s":…,
// "time":…,"run_id":…}; non-finite values are written as null, which JSON
// can hold (they read back as NaN).
func marshalRecord(r Record, runID string) []byte {
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
	fmt.Fprintf(&b, `,"elapsed_s":%s`, jsonNumber(r.At))
	if !r.Time.IsZero() {
		fmt.Fprintf(&b, `,"time":%q`, r.Time.UTC().Format(time.RFC3339Nano))
	}
	if runID != "" {
		fmt.Fprintf(&b, `,"run_id":%q`, runID)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func jsonNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ReadMetrics reads a run's metrics.jsonl. Every field is type-checked and
// a bad line is an error naming file:line; a last line cut off by a torn
// write (no newline, not valid JSON) is dropped.
func ReadMetrics(dir string) ([]Record, error) {
	recs, _, err := readMetrics(dir)
	return recs, err
}

// readMetrics also reports whether a torn last line was dropped.
func readMetrics(dir string) ([]Record, bool, error) {
	path := filepath.Join(dir, MetricsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	var out []Record
	lines := bytes.Split(b, []byte("\n"))
	torn := false
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := parseRecord(line)
		if err != nil {
			if i == len(lines)-1 { // no newline after it: a torn write
				torn = true
				break
			}
			return nil, false, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, r)
	}
	return out, torn, nil
}

func parseRecord(line []byte) (Record, error) {
	var raw map[string]any
	if err := json.Unmarshal(line, &raw); err != nil {
		return Record{}, err
	}
	r := Record{Values: experiment.Logs{}, Step: -1}
	for k, v := range raw {
		switch k {
		case "step":
			f, ok := v.(float64)
			if !ok || f < 0 || f != math.Trunc(f) || f > 1<<53 {
				return r, fmt.Errorf("step: want a non-negative integer, got %s", describe(v))
			}
			r.Step = int(f)
		case "split":
			s, ok := v.(string)
			if !ok || s == "" {
				return r, fmt.Errorf("split: want a string, got %s", describe(v))
			}
			r.Split = s
		case "run_id":
			if _, ok := v.(string); !ok {
				return r, fmt.Errorf("run_id: want a string, got %s", describe(v))
			}
		case "time":
			s, ok := v.(string)
			t, err := time.Parse(time.RFC3339Nano, s)
			if !ok || err != nil {
				return r, fmt.Errorf("time: want an RFC 3339 time, got %s", describe(v))
			}
			r.Time = t
		default:
			var x float64
			switch y := v.(type) {
			case float64:
				x = y
			case nil:
				x = math.NaN()
			case string: // files written before null: "NaN", "Inf", "-Inf"
				f, ok := map[string]float64{"NaN": math.NaN(), "Inf": math.Inf(1), "-Inf": math.Inf(-1)}[y]
				if !ok {
					return r, fmt.Errorf("%s: want a number, got %s", k, describe(v))
				}
				x = f
			default:
				return r, fmt.Errorf("%s: want a number, got %s", k, describe(v))
			}
			if k == "elapsed_s" {
				r.At = x
			} else {
				r.Values[k] = x
			}
		}
	}
	if r.Step < 0 || r.Split == "" {
		return r, fmt.Errorf("a record needs step and split")
	}
	return r, nil
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// MetricsWriter appends records to metrics.jsonl, one line per write
// (flushed to the file at once), tagged with the run's id. It is the
// engine's always-present metrics sink.
type MetricsWriter struct {
	f     *os.File
	runID string
	// Torn is set when opening dropped a torn last line.
	Torn bool
}

// OpenMetrics opens metrics.jsonl for appending, first dropping records
// after step keep (when resuming: they were logged past the checkpoint) and
// a torn last line.
func OpenMetrics(dir string, keep int, runID string) (*MetricsWriter, error) {
	path := filepath.Join(dir, MetricsFile)
	recs, torn, err := readMetrics(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var buf bytes.Buffer
	for _, r := range recs {
		if r.Step <= keep {
			buf.Write(marshalRecord(r, runID))
		}
	}
	if err := atomicio.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &MetricsWriter{f: f, runID: runID, Torn: torn}, nil
}

// Write implements experiment.Sink.
func (w *MetricsWriter) Write(r Record) error {
	_, err := w.f.Write(marshalRecord(r, w.runID))
	return err
}

// Close implements experiment.Sink.
func (w *MetricsWriter) Close() error { return w.f.Close() }

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
	RunID       string   `json:"run_id"`
	MallocTuned bool     `json:"malloc_tuned"`
	// BLAS names OpenBLAS's kernels (torch.BLASCore): their rounding
	// differs, so a result repeats bit for bit only with the same ones.
	BLAS string `json:"blas,omitempty"`
	// SIMD caps the shim's own kernels (torch.SIMDEnv).
	SIMD string `json:"simd,omitempty"`
}

// CurrentEnvironment describes this process: build, device, host, command.
func CurrentEnvironment(device string, threads int) Environment {
	e := Environment{
		Torch: torch.Version(), BuildInfo: firstLine(torch.BuildInfo()), CUDA: torch.BuiltWithCUDA(),
		Device: device, Threads: threads, GoVersion: runtime.Version(), Cores: runtime.NumCPU(),
		Command: os.Args, Started: time.Now().UTC().Format(time.RFC3339),
		MallocTuned: os.Getenv("HIDDENLAB_MALLOC") != "default", BLAS: torch.BLASCore(),
		SIMD: torch.SIMD(),
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
	Train experiment.Logs `json:"train"`
	Eval  experiment.Logs `json:"eval"`
	RunID string          `json:"run_id,omitempty"`
	// Extra holds family-specific final results.
	Extra map[string]any `json:"extra,omitempty"`
}

// Metric reads a dotted metric of the summary: "eval.<key>", "train.<key>",
// "extra.<key>" (numbers only), "params", "wall_s" or "tok_per_s".
func (s *Summary) Metric(name string) (float64, bool) {
	section, key, _ := strings.Cut(name, ".")
	switch section {
	case "eval":
		v, ok := s.Eval[key]
		return v, ok
	case "train":
		v, ok := s.Train[key]
		return v, ok
	case "extra":
		switch x := s.Extra[key].(type) {
		case float64:
			return x, true
		case int:
			return float64(x), true
		}
		return 0, false
	case "params":
		return float64(s.Params), true
	case "wall_s":
		return s.WallS, true
	case "tok_per_s":
		return s.TokPerS, true
	}
	return 0, false
}

// Value is Metric(name), NaN where the summary has no such number.
func (s *Summary) Value(name string) float64 {
	if v, ok := s.Metric(name); ok {
		return v
	}
	return math.NaN()
}

// SweepRun is one run of a sweep: the name of its configuration, its seed
// and its directory.
type SweepRun struct {
	Config string
	Seed   int
	Dir    string
}

// ConfigRuns are one configuration's completed runs, in the order given,
// with their summaries (Sums[i] is Runs[i]'s).
type ConfigRuns struct {
	Config string
	Runs   []SweepRun
	Sums   []*Summary
}

// Completed reads the summaries of runs and keeps the completed ones,
// grouped by configuration in the order the configurations first appear.
// Runs without a readable summary or not completed (still running, failed)
// are left out: a study tabulates what has finished.
func Completed(runs []SweepRun) []ConfigRuns {
	var out []ConfigRuns
	at := map[string]int{}
	for _, r := range runs {
		s, err := ReadSummary(r.Dir)
		if err != nil || s.Status != StatusCompleted {
			continue
		}
		i, ok := at[r.Config]
		if !ok {
			i = len(out)
			at[r.Config] = i
			out = append(out, ConfigRuns{Config: r.Config})
		}
		out[i].Runs = append(out[i].Runs, r)
		out[i].Sums = append(out[i].Sums, s)
	}
	return out
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

// WriteJSON writes v as indented JSON, atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(path, append(b, '\n'), 0o644)
}

// Finite drops non-finite values (JSON cannot hold them) by nil-able strings.
func Finite(l experiment.Logs) experiment.Logs {
	out := experiment.Logs{}
	for k, v := range l {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}
