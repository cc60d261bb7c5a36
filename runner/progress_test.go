package runner

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProgressOffTerminal: writing to a pipe (a log, CI) gives plain lines,
// not bar redraws: nothing until lineEvery has passed, one line on Finish.
func TestProgressOffTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	p := newProgress(w, "tiny", 0, 100)
	require.IsType(t, &lineProgress{}, p)
	for step := 1; step <= 100; step++ {
		p.Set(step, map[bool]string{true: "loss 1.2345 100 tok/s"}[step == 50])
	}
	p.Finish()
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Regexp(t, `^tiny step 100/100 loss 1.2345 100 tok/s \[\d+s, eta 0s\]\n$`, string(out))
}
