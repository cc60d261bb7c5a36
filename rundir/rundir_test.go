package rundir

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	line1 = `{"step":2,"split":"train","loss":2.5,"elapsed_s":0.1,"run_id":"ab12cd34"}` + "\n"
	line2 = `{"step":4,"split":"eval","loss":null,"ppl":"Inf","elapsed_s":0.2,"time":"2024-01-02T03:04:05Z"}` + "\n"
	line3 = `{"step":6,"split":"train","loss":2.1,"elapsed_s":0.3}` + "\n"
)

func writeMetrics(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(body), 0o644))
	return dir
}

// TestReadMetricsTornAndMalformed: a torn last line (a write cut off by a
// kill: no newline) is dropped and reported; any other bad line is an error
// naming file:line and what is wrong, never a panic.
func TestReadMetricsTornAndMalformed(t *testing.T) {
	torn := []struct {
		name, last string
	}{
		{"cut mid-object", `{"step":8,"split":"tra`},
		{"cut mid-number", `{"step":8,"split":"train","loss":2.`},
		{"cut after a key", `{"step"`},
		{"a lone brace", `{`},
		{"cut in a value of the wrong type", `{"step":"x`},
	}
	for _, c := range torn {
		t.Run("torn/"+c.name, func(t *testing.T) {
			dir := writeMetrics(t, line1+line2+line3+c.last)
			recs, wasTorn, err := readMetrics(dir)
			require.NoError(t, err)
			require.True(t, wasTorn)
			require.Len(t, recs, 3)
			require.Equal(t, 6, recs[2].Step)
			require.True(t, math.IsNaN(recs[1].Values["loss"]), "null reads back as NaN")
			require.True(t, math.IsInf(recs[1].Values["ppl"], 1))

			// Resuming (OpenMetrics) drops the torn line from the file and says so.
			w, err := OpenMetrics(dir, 6, "ab12cd34")
			require.NoError(t, err)
			require.True(t, w.Torn)
			require.NoError(t, w.Write(Record{Step: 8, Split: "train", Values: map[string]float64{"loss": 2}}))
			require.NoError(t, w.Close())
			recs, wasTorn, err = readMetrics(dir)
			require.NoError(t, err)
			require.False(t, wasTorn)
			require.Len(t, recs, 4)
			require.Equal(t, 8, recs[3].Step)
		})
	}

	// A complete last line without its newline is kept.
	dir := writeMetrics(t, line1+strings.TrimSuffix(line3, "\n"))
	recs, wasTorn, err := readMetrics(dir)
	require.NoError(t, err)
	require.False(t, wasTorn)
	require.Len(t, recs, 2)

	bad := []struct {
		name, line, want string
	}{
		{"step a string", `{"step":"x","split":"train"}`, `step: want a non-negative integer, got "x"`},
		{"null", `null`, "a record needs step and split"},
		{"empty object", `{}`, "a record needs step and split"},
		{"missing split", `{"step":3}`, "a record needs step and split"},
		{"split a number", `{"step":3,"split":7}`, "split: want a string, got 7"},
		{"negative step", `{"step":-3,"split":"train"}`, "step: want a non-negative integer, got -3"},
		{"fractional step", `{"step":1.5,"split":"train"}`, "step: want a non-negative integer, got 1.5"},
		{"huge step", `{"step":1e300,"split":"train"}`, "step: want a non-negative integer, got 1e+300"},
		{"metric a word", `{"step":3,"split":"train","loss":"low"}`, `loss: want a number, got "low"`},
		{"metric an object", `{"step":3,"split":"train","loss":{"a":1}}`, `loss: want a number, got {"a":1}`},
		{"metric a bool", `{"step":3,"split":"train","loss":true}`, "loss: want a number, got true"},
		{"bad time", `{"step":3,"split":"train","time":"yesterday"}`, `time: want an RFC 3339 time, got "yesterday"`},
		{"bad run id", `{"step":3,"split":"train","run_id":5}`, "run_id: want a string, got 5"},
		{"array", `[1,2,3]`, "cannot unmarshal array"},
		{"not json", `step=3 split=train`, "invalid character"},
	}
	for _, c := range bad {
		for _, where := range []string{"middle", "last"} {
			t.Run("bad/"+where+"/"+c.name, func(t *testing.T) {
				body := line1 + c.line + "\n" + line3
				lineNo := 2
				if where == "last" { // complete (newline-terminated): not a torn write
					body, lineNo = line1+line3+c.line+"\n", 3
				}
				dir := writeMetrics(t, body)
				path := filepath.Join(dir, MetricsFile)
				_, err := ReadMetrics(dir)
				require.ErrorContains(t, err, fmt.Sprintf("%s:%d: ", path, lineNo))
				require.ErrorContains(t, err, c.want)
				_, err = OpenMetrics(dir, 100, "x")
				require.ErrorContains(t, err, fmt.Sprintf("%s:%d: ", path, lineNo), "resume refuses a damaged file")
				b, _ := os.ReadFile(path)
				require.Equal(t, body, string(b), "and leaves it as it was")
			})
		}
	}

	_, err = ReadMetrics(t.TempDir())
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestReadSummaryMalformed: a damaged summary.json is an error naming the
// file, never a panic.
func TestReadSummaryMalformed(t *testing.T) {
	for _, body := range []string{`{"status": 3}`, `null`, `[`, `{"steps":"many"}`, ``} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, SummaryFile), []byte(body), 0o644))
		s, err := ReadSummary(dir)
		if body == "null" {
			require.NoError(t, err)
			require.NotNil(t, s)
			continue
		}
		require.ErrorContains(t, err, filepath.Join(dir, SummaryFile), body)
	}
}

// TestCompleted: completed runs grouped by configuration in first-seen
// order, each group's runs in the order given with their own summaries;
// running, failed and missing runs left out, and a configuration with no
// completed run absent.
func TestCompleted(t *testing.T) {
	root := t.TempDir()
	run := func(config string, seed int, status string) SweepRun {
		dir := filepath.Join(root, config, fmt.Sprint(seed))
		if status != "" {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, WriteJSON(filepath.Join(dir, SummaryFile), Summary{Status: status, Steps: seed}))
		}
		return SweepRun{Config: config, Seed: seed, Dir: dir}
	}
	runs := []SweepRun{
		run("b", 1, StatusCompleted),
		run("a", 1, StatusFailed),
		run("a", 2, StatusCompleted),
		run("b", 2, StatusRunning),
		run("b", 3, StatusCompleted),
		run("c", 1, ""), // no summary
		run("a", 3, StatusCompleted),
	}
	got := Completed(runs)
	require.Len(t, got, 2)
	type want struct {
		config string
		seeds  []int
	}
	for i, w := range []want{{"b", []int{1, 3}}, {"a", []int{2, 3}}} {
		g := got[i]
		require.Equal(t, w.config, g.Config)
		require.Len(t, g.Sums, len(g.Runs))
		for j, seed := range w.seeds {
			require.Equal(t, seed, g.Runs[j].Seed)
			require.Equal(t, seed, g.Sums[j].Steps, "summary %d of %s belongs to its run", j, w.config)
		}
		require.Len(t, g.Runs, len(w.seeds))
	}
	require.Empty(t, Completed(nil))
}
