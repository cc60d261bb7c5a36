package text

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	shakespeare  = "../../third_party/tinyshakespeare/input.txt"
	storiesTrain = "../../third_party/tinystories/train_sample_2MiB.txt"
	storiesValid = "../../third_party/tinystories/valid_first1000.txt"
)

func TestReadCorpus(t *testing.T) {
	b, err := ReadCorpus(shakespeare)
	require.NoError(t, err)
	require.Len(t, b, 1115394)
	require.True(t, bytes.HasPrefix(b, []byte("First Citizen:\n")))

	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = ReadCorpus(empty)
	require.EqualError(t, err, "corpus "+empty+": empty")
	missing := filepath.Join(dir, "missing.txt")
	_, err = ReadCorpus(missing)
	require.EqualError(t, err, "corpus "+missing+": stat: no such file or directory")
}

// TestReadCorpusRefusesEndless: a file that never ends (/dev/zero), one
// larger than the cap, a pipe or a directory is an error naming the file,
// returned at once and without reading more than the cap.
func TestReadCorpusRefusesEndless(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("a line of text\n"), 100), 0o644))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	defer func(c, d int64) { MaxCorpusBytes, MaxDeviceBytes = c, d }(MaxCorpusBytes, MaxDeviceBytes)
	MaxCorpusBytes, MaxDeviceBytes = 1000, 1<<20
	cases := []struct{ path, want string }{
		{"/dev/zero", "more than 1 MiB without an end"},
		{"/dev/urandom", "more than 1 MiB without an end"},
		{"/dev/null", "empty"},
		{big, "1500 bytes, more than the 1000 bytes a corpus may have"},
		{fifo, "a named pipe or socket"},
		{dir, "a directory"},
	}
	for _, c := range cases {
		if _, err := os.Stat(c.path); err != nil {
			continue // no such device here
		}
		_, err := ReadCorpus(c.path)
		require.ErrorContains(t, err, "corpus "+c.path+": ", c.path)
		require.ErrorContains(t, err, c.want, c.path)
	}
	MaxCorpusBytes = 1500
	b, err := ReadCorpus(big)
	require.NoError(t, err)
	require.Len(t, b, 1500)
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name, corpus string
		frac         float64
		sep          string
		train, val   string
		err          string
	}{
		// 11 bytes, the cut at byte 5 falls inside "bbbb\n": the split moves to its end.
		{"line", "aa\nbbbb\ncc\n", 0.5, "\n", "aa\nbbbb\n", "cc\n", ""},
		// A cut right after a separator stays there.
		{"on boundary", "aa\nbb\ncc\n", 1.0 / 3, "\n", "aa\nbb\n", "cc\n", ""},
		{"document", "one\n<eot>\ntwo\n<eot>\nthree\n<eot>\n", 0.4, "<eot>\n", "one\n<eot>\ntwo\n<eot>\n", "three\n<eot>\n", ""},
		{"no sep after cut", "aa\nbbbbbbbb", 0.5, "\n", "", "", `no "\n" after byte 5 of 11`},
		{"sep only at end", "aa\nbbbbbbbb\n", 0.5, "\n", "", "", `the only "\n" after byte 6 of 12 ends the corpus`},
		{"fraction 0", "aa\nbb\n", 0, "\n", "", "", "validation fraction 0, want it in (0, 1)"},
		{"fraction 1", "aa\nbb\n", 1, "\n", "", "", "validation fraction 1"},
		{"empty sep", "aa\nbb\n", 0.5, "", "", "", "empty separator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			train, val, err := Split([]byte(tc.corpus), tc.frac, tc.sep)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.train, string(train))
			require.Equal(t, tc.val, string(val))
		})
	}
}

func TestSplitShakespeare(t *testing.T) {
	b, err := ReadCorpus(shakespeare)
	require.NoError(t, err)
	train, val, err := Split(b, 0.1, "\n")
	require.NoError(t, err)
	// nanoGPT cuts at byte int(0.9*n) = 1003854; the line ends 2 bytes later.
	require.Len(t, train, 1003856)
	require.Len(t, val, len(b)-1003856)
	require.Equal(t, byte('\n'), train[len(train)-1])
}

func TestWholeDocuments(t *testing.T) {
	b, err := ReadCorpus(storiesTrain)
	require.NoError(t, err)
	const sep = "<|endoftext|>\n"
	whole := WholeDocuments(b, sep)
	require.Len(t, whole, 2096346, "the README's count of bytes in whole stories")
	require.Equal(t, 2316, bytes.Count(whole, []byte(sep)))

	tests := []struct{ corpus, want string }{
		{"a|b|", "a|b|"},
		{"a|b|tail", "a|b|"},
		{"no separator", ""},
		{"", ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, string(WholeDocuments([]byte(tc.corpus), "|")), "%q", tc.corpus)
	}
}
