package runner

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/experiment"
)

// TestConsoleOffTerminal: written to a pipe (a log, a sweep worker, CI) the
// console prints one nanoGPT-style line per train log and one per
// evaluation with every eval metric, no bar redraws; with progress on or
// off alike.
func TestConsoleOffTerminal(t *testing.T) {
	for _, progress := range []bool{true, false} {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		c := newConsole(w, "tiny", 0, 100, progress)
		require.Nil(t, c.bar)
		for step := 10; step <= 100; step += 10 {
			require.NoError(t, c.Write(experiment.Record{Step: step, Split: "train",
				Values: experiment.Logs{"loss": 1.2345, "lr": 1e-3, "tok_per_s": 100}}))
		}
		require.NoError(t, c.Write(experiment.Record{Step: 100, Split: "eval", Values: experiment.Logs{"loss": 1.5, "accuracy": 0.25}}))
		require.NoError(t, c.Close())
		require.NoError(t, w.Close())
		out, err := io.ReadAll(r)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		require.Len(t, lines, 11)
		require.Regexp(t, `^tiny step 10/100: loss 1.2345, lr 0.001, 100 tok/s \[\d+s, eta \S+\]$`, lines[0])
		require.Equal(t, "tiny step 100/100 eval: accuracy 0.25, loss 1.5", lines[10])
	}
}
