package tensorboard

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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wall is the wall time the round-trip cases write with.
var wall = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// evenLimits returns the bucket limits of n equal buckets over [lo, hi].
func evenLimits(lo, hi float64, n int) []float64 {
	l := make([]float64, n)
	for i := range l {
		l[i] = lo + float64(i+1)*(hi-lo)/float64(n)
	}
	l[n-1] = hi
	return l
}

// roundTrip lists writes and the event each must produce, in order.
var roundTrip = []struct {
	name  string
	write func(w *Writer) error
	want  decodedEvent
}{
	{"scalar",
		func(w *Writer) error { return w.Scalar("train/loss", 1, 2.5, wall) },
		decodedEvent{Step: 1, Values: []decodedValue{{Tag: "train/loss", Kind: "scalar", Scalar: 2.5}}}},
	{"scalar rounded to float32",
		func(w *Writer) error { return w.Scalar("train/lr", 2, 0.1, wall) },
		decodedEvent{Step: 2, Values: []decodedValue{{Tag: "train/lr", Kind: "scalar", Scalar: float32(0.1)}}}},
	{"zero scalar at step zero",
		func(w *Writer) error { return w.Scalar("zero", 0, 0, wall) },
		decodedEvent{Step: 0, Values: []decodedValue{{Tag: "zero", Kind: "scalar", Scalar: 0}}}},
	{"NaN",
		func(w *Writer) error { return w.Scalar("eval/loss", 3, math.NaN(), wall) },
		decodedEvent{Step: 3, Values: []decodedValue{{Tag: "eval/loss", Kind: "scalar", Scalar: float32(math.NaN())}}}},
	{"+Inf",
		func(w *Writer) error { return w.Scalar("grad_norm", 4, math.Inf(1), wall) },
		decodedEvent{Step: 4, Values: []decodedValue{{Tag: "grad_norm", Kind: "scalar", Scalar: float32(math.Inf(1))}}}},
	{"-Inf and a negative step",
		func(w *Writer) error { return w.Scalar("x", -7, math.Inf(-1), wall) },
		decodedEvent{Step: -7, Values: []decodedValue{{Tag: "x", Kind: "scalar", Scalar: float32(math.Inf(-1))}}}},
	{"large step, unicode tag",
		func(w *Writer) error { return w.Scalar("ü/∑", 1<<40, -1e-30, wall) },
		decodedEvent{Step: 1 << 40, Values: []decodedValue{{Tag: "ü/∑", Kind: "scalar", Scalar: float32(-1e-30)}}}},
	{"scalars of one step, sorted by tag",
		func(w *Writer) error {
			return w.Scalars(10, map[string]float64{"train/lr": 3e-4, "train/loss": 1.75, "train/grad_norm": math.NaN()}, wall)
		},
		decodedEvent{Step: 10, Values: []decodedValue{
			{Tag: "train/grad_norm", Kind: "scalar", Scalar: float32(math.NaN())},
			{Tag: "train/loss", Kind: "scalar", Scalar: 1.75},
			{Tag: "train/lr", Kind: "scalar", Scalar: float32(3e-4)},
		}}},
	{"text",
		func(w *Writer) error {
			return w.Text("recipe", 0, "```yaml\nmodel: gpt\nlr: 3e-4\n```\nünïcode ✓", wall)
		},
		decodedEvent{Values: []decodedValue{{Tag: "recipe", Kind: "text", Plugin: "text", DataClass: 2, Dtype: 7, Text: []string{"```yaml\nmodel: gpt\nlr: 3e-4\n```\nünïcode ✓"}}}}},
	{"empty text",
		func(w *Writer) error { return w.Text("notes", 5, "", wall) },
		decodedEvent{Step: 5, Values: []decodedValue{{Tag: "notes", Kind: "text", Plugin: "text", DataClass: 2, Dtype: 7, Text: []string{""}}}}},
	{"histogram of values",
		func(w *Writer) error {
			return w.Histogram("acts", 6, []float64{1, 3, 3, math.NaN(), math.Inf(1)}, wall)
		},
		decodedEvent{Step: 6, Values: []decodedValue{{Tag: "acts", Kind: "histo", HistoCount: 7, Histo: Histogram{
			Min: 1, Max: 3, Num: 3, Sum: 7, SumSquares: 19,
			BucketLimit: evenLimits(1, 3, 30),
			Bucket:      append(append([]float64{1}, make([]float64, 28)...), 2),
		}}}}},
	{"histogram of equal values",
		func(w *Writer) error { return w.Histogram("const", 7, []float64{5, 5}, wall) },
		decodedEvent{Step: 7, Values: []decodedValue{{Tag: "const", Kind: "histo", HistoCount: 7, Histo: Histogram{
			Min: 5, Max: 5, Num: 2, Sum: 10, SumSquares: 50, BucketLimit: []float64{5}, Bucket: []float64{2},
		}}}}},
	{"histogram of counts (code usage)",
		func(w *Writer) error {
			return w.HistogramCounts("codebook/usage", 8, []float64{0, 1, 2, 3, 4}, []float64{0, 5, 3, 0}, wall)
		},
		// Codes 1 and 2 used: min and max are their outer edges; values
		// count at bucket middles 1.5 and 2.5.
		decodedEvent{Step: 8, Values: []decodedValue{{Tag: "codebook/usage", Kind: "histo", HistoCount: 7, Histo: Histogram{
			Min: 1, Max: 3, Num: 8, Sum: 5*1.5 + 3*2.5, SumSquares: 5*2.25 + 3*6.25,
			BucketLimit: []float64{1, 2, 3, 4}, Bucket: []float64{0, 5, 3, 0},
		}}}}},
}

// writeRoundTrip writes every roundTrip case to a new event file in dir
// and returns its path.
func writeRoundTrip(t *testing.T, dir string) string {
	t.Helper()
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range roundTrip {
		if err := tc.write(w); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Path()
}

// sameFloat32 compares scalars bit for bit, so that NaN equals NaN.
func sameFloat32(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

func diffValue(got, want decodedValue) string {
	switch {
	case got.Tag != want.Tag || got.Kind != want.Kind:
		return fmt.Sprintf("tag %q kind %q, want %q %q", got.Tag, got.Kind, want.Tag, want.Kind)
	case !sameFloat32(got.Scalar, want.Scalar):
		return fmt.Sprintf("scalar %g, want %g", got.Scalar, want.Scalar)
	case got.Plugin != want.Plugin || got.DataClass != want.DataClass || got.Dtype != want.Dtype || got.Dims != want.Dims:
		return fmt.Sprintf("plugin %q class %d dtype %d dims %d, want %q %d %d %d",
			got.Plugin, got.DataClass, got.Dtype, got.Dims, want.Plugin, want.DataClass, want.Dtype, want.Dims)
	case !slices.Equal(got.Text, want.Text):
		return fmt.Sprintf("text %q, want %q", got.Text, want.Text)
	case got.HistoCount != want.HistoCount:
		return fmt.Sprintf("histogram has %d fields, want %d", got.HistoCount, want.HistoCount)
	}
	g, w := got.Histo, want.Histo
	if g.Min != w.Min || g.Max != w.Max || g.Num != w.Num || g.Sum != w.Sum || g.SumSquares != w.SumSquares ||
		!slices.Equal(g.Bucket, w.Bucket) || len(g.BucketLimit) != len(w.BucketLimit) {
		return fmt.Sprintf("histogram %+v, want %+v", g, w)
	}
	for i := range g.BucketLimit {
		if math.Abs(g.BucketLimit[i]-w.BucketLimit[i]) > 1e-12 {
			return fmt.Sprintf("bucket limit %d = %g, want %g", i, g.BucketLimit[i], w.BucketLimit[i])
		}
	}
	return ""
}

// checkEvents compares decoded events with the file-version event and the
// roundTrip expectations.
func checkEvents(t *testing.T, evs []decodedEvent, decoder string) {
	t.Helper()
	if len(evs) != 1+len(roundTrip) {
		t.Fatalf("%s: %d events, want %d", decoder, len(evs), 1+len(roundTrip))
	}
	if first := evs[0]; first.FileVersion != "brain.Event:2" || len(first.Values) != 0 || time.Since(time.Unix(0, int64(first.Wall*1e9))).Abs() > time.Minute {
		t.Errorf("%s: first event %+v, want file_version brain.Event:2 at about now", decoder, first)
	}
	for i, tc := range roundTrip {
		got := evs[i+1]
		if got.Step != tc.want.Step || got.FileVersion != "" {
			t.Errorf("%s: %s: step %d file_version %q, want step %d", decoder, tc.name, got.Step, got.FileVersion, tc.want.Step)
		}
		if math.Abs(got.Wall-float64(wall.UnixNano())/1e9) > 1e-6 {
			t.Errorf("%s: %s: wall time %f, want %f", decoder, tc.name, got.Wall, float64(wall.UnixNano())/1e9)
		}
		if len(got.Values) != len(tc.want.Values) {
			t.Errorf("%s: %s: %d values, want %d", decoder, tc.name, len(got.Values), len(tc.want.Values))
			continue
		}
		for j := range got.Values {
			if d := diffValue(got.Values[j], tc.want.Values[j]); d != "" {
				t.Errorf("%s: %s: value %d: %s", decoder, tc.name, j, d)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := writeRoundTrip(t, t.TempDir())
	evs, err := readEventFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, evs, "Go decoder")
}

// python returns the path of a Python 3 interpreter, or skips the test.
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("no python3: skipping the check with the Python decoder")
	return ""
}

// readWithPython decodes the event file at path with testdata/read_events.py.
func readWithPython(t *testing.T, path string) ([]decodedEvent, error) {
	t.Helper()
	cmd := exec.Command(python(t), "testdata/read_events.py", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("python printed %q: %v", s, err)
		}
		return f
	}
	nums := func(ss []string) []float64 {
		var fs []float64
		for _, s := range ss {
			fs = append(fs, num(s))
		}
		return fs
	}
	var evs []decodedEvent
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var pe struct {
			WallTime    string `json:"wall_time"`
			Step        int64  `json:"step"`
			FileVersion string `json:"file_version"`
			Values      []struct {
				Tag        string   `json:"tag"`
				Kind       string   `json:"kind"`
				Scalar     string   `json:"scalar"`
				PluginName string   `json:"plugin_name"`
				DataClass  int      `json:"data_class"`
				Dtype      int      `json:"dtype"`
				Dims       int      `json:"dims"`
				StringVal  []string `json:"string_val"`
				Histo      *struct {
					Min, Max, Num, Sum string
					SumSquares         string   `json:"sum_squares"`
					BucketLimit        []string `json:"bucket_limit"`
					Bucket             []string `json:"bucket"`
				} `json:"histo"`
			} `json:"values"`
		}
		if err := json.Unmarshal(sc.Bytes(), &pe); err != nil {
			t.Fatalf("python printed %s: %v", sc.Bytes(), err)
		}
		e := decodedEvent{Wall: num(pe.WallTime), Step: pe.Step, FileVersion: pe.FileVersion}
		for _, pv := range pe.Values {
			v := decodedValue{Tag: pv.Tag, Kind: pv.Kind, Plugin: pv.PluginName, DataClass: pv.DataClass, Dtype: pv.Dtype, Dims: pv.Dims, Text: pv.StringVal}
			switch pv.Kind {
			case "scalar":
				v.Scalar = float32(num(pv.Scalar))
			case "tensor":
				v.Kind = "text"
			case "histo":
				h := pv.Histo
				v.Histo = Histogram{Min: num(h.Min), Max: num(h.Max), Num: num(h.Num), Sum: num(h.Sum), SumSquares: num(h.SumSquares),
					BucketLimit: nums(h.BucketLimit), Bucket: nums(h.Bucket)}
				v.HistoCount = 7 // the script reports fields by name
			}
			e.Values = append(e.Values, v)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

func TestRoundTripPython(t *testing.T) {
	path := writeRoundTrip(t, t.TempDir())
	evs, err := readWithPython(t, path)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, evs, "Python decoder")
}

func TestCRC32CKnownValue(t *testing.T) {
	// The CRC-32C check value (RFC 3720, B.4) for both implementations.
	if got := crc32cBitwise([]byte("123456789")); got != 0xE3069283 {
		t.Errorf("test decoder's CRC-32C = %#x, want 0xe3069283", got)
	}
	if got, want := maskedCRC([]byte("123456789")), maskCRC(0xE3069283); got != want {
		t.Errorf("writer's masked CRC = %#x, want %#x", got, want)
	}
}

func TestCorruptionDetected(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Scalar("a", 1, 1, wall); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	// The second record (the scalar) starts after the first.
	first := 16 + int(le64(good))
	n := int(le64(good[first:]))
	tests := []struct {
		name string
		at   int
	}{
		{"length", first + 1},
		{"length CRC", first + 9},
		{"data", first + 12 + n/2},
		{"data CRC", first + 12 + n + 2},
		{"first record's data", 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(good)
			bad[tt.at] ^= 0x10
			path := filepath.Join(t.TempDir(), "events.out.tfevents.bad")
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := readEventFile(path); !errors.Is(err, errCRC) {
				t.Errorf("Go decoder: error %v, want a CRC mismatch", err)
			}
			if _, err := readWithPython(t, path); err == nil || !strings.Contains(err.Error(), "crc mismatch") {
				t.Errorf("Python decoder: error %v, want a crc mismatch", err)
			}
		})
	}
}

func TestFlushing(t *testing.T) {
	count := func(t *testing.T, path string) int {
		t.Helper()
		evs, err := readEventFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	tests := []struct {
		name      string
		opts      []Option
		wantAfter []int // events on disk after each of 3 scalars, before Close
	}{
		{"default buffers", nil, []int{1, 1, 1}},
		{"every event", []Option{FlushEvery(1)}, []int{2, 3, 4}},
		{"every 2 events", []Option{FlushEvery(2)}, []int{1, 3, 3}},
		{"by time", []Option{FlushInterval(time.Nanosecond)}, []int{2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter(t.TempDir(), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.wantAfter {
				time.Sleep(time.Millisecond) // for the interval case
				if err := w.Scalar("s", int64(i), float64(i), time.Time{}); err != nil {
					t.Fatal(err)
				}
				if got := count(t, w.Path()); got != want {
					t.Errorf("after %d scalars %d events on disk, want %d", i+1, got, want)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := count(t, w.Path()); got != 4 {
				t.Errorf("after Flush %d events on disk, want 4", got)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := count(t, w.Path()); got != 4 {
				t.Errorf("after Close %d events on disk, want 4", got)
			}
		})
	}
}

// TestCrashLeavesCompleteRecords cuts a file inside its last record, as a
// crash during a write could, and checks the records before it still read.
func TestCrashLeavesCompleteRecords(t *testing.T) {
	path := writeRoundTrip(t, t.TempDir())
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readRecords(file[:len(file)-5])
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("cut file: error %v, want truncated", err)
	}
	if len(recs) != len(roundTrip) {
		t.Errorf("cut file: %d complete records, want %d", len(recs), len(roundTrip))
	}
}

func TestFileNames(t *testing.T) {
	dir := t.TempDir()
	pattern := regexp.MustCompile(`^events\.out\.tfevents\.\d{10}\.[^/]+$`)
	seen := map[string]bool{}
	for i := range 3 { // within one second: names must not collide
		w, err := NewWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(w.Path())
		if !pattern.MatchString(name) {
			t.Errorf("file name %q does not match %s", name, pattern)
		}
		if filepath.Dir(w.Path()) != dir || seen[name] {
			t.Errorf("writer %d: path %s", i, w.Path())
		}
		seen[name] = true
		if err := w.Scalar("w", int64(i), float64(i), time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for name := range seen {
		if evs, err := readEventFile(filepath.Join(dir, name)); err != nil || len(evs) != 2 {
			t.Errorf("%s: %d events, %v", name, len(evs), err)
		}
	}
	// A missing directory is created.
	w, err := NewWriter(filepath.Join(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}

func TestWriterErrors(t *testing.T) {
	w, err := NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		call    func() error
		wantMsg string
	}{
		{"empty scalar tag", func() error { return w.Scalar("", 0, 1, wall) }, "empty tag"},
		{"empty tag in scalars", func() error { return w.Scalars(0, map[string]float64{"": 1}, wall) }, "empty tag"},
		{"empty text tag", func() error { return w.Text("", 0, "x", wall) }, "empty tag"},
		{"empty histogram tag", func() error { return w.Histogram("", 0, []float64{1}, wall) }, "empty tag"},
		{"no finite values", func() error { return w.Histogram("h", 0, []float64{math.NaN()}, wall) }, "no finite values"},
		{"no values", func() error { return w.Histogram("h", 0, nil, wall) }, "no finite values"},
		{"edges count", func() error { return w.HistogramCounts("h", 0, []float64{0, 1}, []float64{1, 2}, wall) }, "2 edges for 2 buckets"},
		{"no buckets", func() error { return w.HistogramCounts("h", 0, []float64{0}, nil, wall) }, "no buckets"},
		{"decreasing edges", func() error { return w.HistogramCounts("h", 0, []float64{0, 2, 1}, []float64{1, 2}, wall) }, "edge 2 is 1"},
		{"NaN edge", func() error { return w.HistogramCounts("h", 0, []float64{math.NaN(), 1}, []float64{1}, wall) }, "edge 0 is NaN"},
		{"negative count", func() error { return w.HistogramCounts("h", 0, []float64{0, 1, 2}, []float64{1, -2}, wall) }, "bucket 1 has count -2"},
		{"proto without buckets", func() error { return w.HistogramProto("h", 0, Histogram{}, wall) }, "0 buckets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %v, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Rejected calls wrote nothing.
	if evs, err := readEventFile(w.Path()); err != nil || len(evs) != 1 {
		t.Errorf("after rejected calls: %d events, %v; want only the file version", len(evs), err)
	}
	for name, call := range map[string]func() error{
		"Scalar":  func() error { return w.Scalar("a", 0, 1, wall) },
		"Scalars": func() error { return w.Scalars(0, nil, wall) },
		"Flush":   w.Flush,
		"Close":   w.Close,
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestHistogramOf(t *testing.T) {
	tests := []struct {
		name    string
		values  []float64
		buckets int
		want    Histogram
	}{
		{"two buckets", []float64{0, 1, 2, 3}, 2, Histogram{Min: 0, Max: 3, Num: 4, Sum: 6, SumSquares: 14, BucketLimit: []float64{1.5, 3}, Bucket: []float64{2, 2}}},
		{"max in last bucket", []float64{0, 10}, 5, Histogram{Min: 0, Max: 10, Num: 2, Sum: 10, SumSquares: 100, BucketLimit: []float64{2, 4, 6, 8, 10}, Bucket: []float64{1, 0, 0, 0, 1}}},
		{"non-finite left out", []float64{math.Inf(-1), -1, math.NaN(), 1}, 1, Histogram{Min: -1, Max: 1, Num: 2, Sum: 0, SumSquares: 2, BucketLimit: []float64{1}, Bucket: []float64{2}}},
		{"edges in floating point", []float64{0, 0.1, 0.2, 0.3, 0.7, 0.9, 1}, 10, Histogram{Min: 0, Max: 1, Num: 7, Sum: 3.2, SumSquares: 2.44,
			BucketLimit: evenLimits(0, 1, 10), Bucket: []float64{1, 1, 2, 0, 0, 0, 1, 0, 0, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HistogramOf(tt.values, tt.buckets)
			if err != nil {
				t.Fatal(err)
			}
			got.Sum = math.Round(got.Sum*1e9) / 1e9
			got.SumSquares = math.Round(got.SumSquares*1e9) / 1e9
			if d := diffValue(decodedValue{Histo: got}, decodedValue{Histo: tt.want}); d != "" {
				t.Error(d)
			}
		})
	}
	if _, err := HistogramOf([]float64{1}, -1); err == nil {
		t.Error("negative bucket count: want error")
	}
	if h, err := HistogramOf([]float64{1, 2}, 0); err != nil || len(h.Bucket) != DefaultBuckets {
		t.Errorf("zero buckets: %d buckets, %v; want %d", len(h.Bucket), err, DefaultBuckets)
	}
}

func TestHistogramOfCountsAllZero(t *testing.T) {
	h, err := HistogramOfCounts([]float64{0, 1, 2}, []float64{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if h.Min != 0 || h.Max != 2 || h.Num != 0 {
		t.Errorf("all-zero counts: %+v, want min 0, max 2, num 0", h)
	}
}

func TestConcurrentWrites(t *testing.T) {
	w, err := NewWriter(t.TempDir(), FlushEvery(7))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := w.Scalar(fmt.Sprintf("g%d", g), int64(i), float64(i), time.Time{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := readEventFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1+4*50 {
		t.Errorf("%d events, want %d", len(evs), 1+4*50)
	}
}
