package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAtlasUsage: wrong arguments and flag values of atlas are usage
// errors (2) naming what is wrong; a directory that is not a run fails (1).
func TestAtlasUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range []struct {
		args string
		code int
		want string
	}{
		{"atlas", 2, "hiddenlab atlas: want <run dir> (got 0 arguments)"},
		{"atlas a b", 2, "want <run dir> (got 2 arguments)"},
		{"atlas -regex ( d", 2, `--regex "(": error parsing regexp`},
		{"atlas -per-page 0 d", 2, "--per-page 0: must be at least 1"},
		{"atlas -contexts 0 d", 2, "--contexts 0: must be at least 1"},
		{"atlas -seqs -1 d", 2, "--seqs -1: must be at least 0"},
		{"atlas -top -1 d", 2, "--top -1: must be at least 0"},
		{"atlas -min-fires 0 d", 2, "--min-fires 0: must be at least 1"},
		{"atlas -neurons=maybe d", 2, `invalid argument "maybe" for "--neurons" flag`},
		{"atlas nowhere", 1, "hiddenlab: "},
	} {
		code, out, errOut := hl(t, strings.Fields(c.args)...)
		require.Equal(t, c.code, code, "%s: %s", c.args, errOut)
		require.Contains(t, errOut, c.want, c.args)
		require.Empty(t, out, c.args)
	}
}
