package atomicio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	require.NoError(t, WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, WriteFile(path, []byte("new"), 0o644))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "new", string(b))

	// A failing writer leaves the previous content and no temporary file.
	err = Write(path, 0o644, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("disk full")
	})
	require.ErrorContains(t, err, "disk full")
	b, _ = os.ReadFile(path)
	require.Equal(t, "new", string(b))
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1)

	require.Error(t, WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644))
}
