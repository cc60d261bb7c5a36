package runner_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/rundir"
)

// TestTensorBoardEqualsMetrics: a run's TensorBoard event file, read back by
// an independent decoder (tensorboard/testdata/read_events.py: standard
// library Python, its own CRC-32C and protobuf parser), holds every scalar
// of metrics.jsonl under split/key at the same step (as float32, the type
// TensorBoard stores), plus the resolved recipe as text.
func TestTensorBoardEqualsMetrics(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	require.NoError(t, err, "python3 is installed by make setup")
	p := writeFile(t, t.TempDir(), "tb.yaml", tinyRecipe)
	dir, err := run(t, p)
	require.NoError(t, err)
	files, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	require.Len(t, files, 1)
	out, err := exec.Command(py, "../tensorboard/testdata/read_events.py", files[0]).Output()
	require.NoError(t, err)

	got := map[string]float64{} // "step tag" → value
	recipeText := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var ev struct {
			Step   int64
			Values []struct {
				Tag        string
				Kind       string
				Scalar     string
				PluginName string   `json:"plugin_name"`
				StringVal  []string `json:"string_val"`
			}
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		for _, v := range ev.Values {
			switch v.Kind {
			case "scalar":
				f, err := strconv.ParseFloat(v.Scalar, 64)
				require.NoError(t, err)
				got[strconv.FormatInt(ev.Step, 10)+" "+v.Tag] = f
			case "tensor":
				require.Equal(t, "text", v.PluginName)
				require.Contains(t, v.StringVal[0], "family: gpt")
				recipeText = true
			}
		}
	}
	require.True(t, recipeText, "the resolved recipe is in the event file")

	recs, err := rundir.ReadMetrics(dir)
	require.NoError(t, err)
	n := 0
	for _, r := range recs {
		for k, v := range r.Values {
			key := strconv.Itoa(r.Step) + " " + r.Split + "/" + k
			g, ok := got[key]
			require.True(t, ok, "missing in the event file: %s", key)
			require.Equal(t, float64(float32(v)), g, key)
			n++
		}
	}
	require.Equal(t, n, len(got), "the event file has no scalar metrics.jsonl lacks")
	require.Greater(t, n, 10)
}
