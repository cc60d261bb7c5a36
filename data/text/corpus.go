// Package text prepares text corpora for language-model training: it reads
// and splits corpora, stores token ids in packed files, and serves
// deterministic training batches and evaluation windows.
//
// Token ids come from a tokenizer (see hiddenlab/data/tokenize); this package
// handles them only as int32s below a vocabulary size.
package text

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxCorpusBytes is the largest corpus file ReadCorpus reads (2 GiB);
// MaxDeviceBytes the most it reads from a file that is not a regular file
// (a device such as /dev/zero never ends).
var (
	MaxCorpusBytes int64 = 2 << 30
	MaxDeviceBytes int64 = 64 << 20
)

// ReadCorpus returns the contents of the text file at path. An empty file is
// an error, and so is a file larger than MaxCorpusBytes, a device that
// yields more than MaxDeviceBytes (one that never ends, like /dev/zero), a
// named pipe or a socket (a read could wait forever): corpora are files.
func ReadCorpus(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, pathErr(err))
	}
	limit := MaxCorpusBytes
	switch mode := fi.Mode(); {
	case mode.IsDir():
		return nil, fmt.Errorf("corpus %s: a directory, not a text file", path)
	case mode&(fs.ModeNamedPipe|fs.ModeSocket) != 0:
		return nil, fmt.Errorf("corpus %s: a named pipe or socket, not a text file (reading it could wait forever)", path)
	case !mode.IsRegular():
		limit = MaxDeviceBytes
	case fi.Size() > limit:
		return nil, fmt.Errorf("corpus %s: %d bytes, more than the %s a corpus may have", path, fi.Size(), sizeString(limit))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, pathErr(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("corpus %s: more than %s without an end (not a regular file, such as a device?); corpora are text files", path, sizeString(limit))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("corpus %s: empty", path)
	}
	return b, nil
}

func sizeString(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Split divides corpus into a training and a validation part, with about
// valFraction of the bytes in the validation part, at a boundary marked by
// sep: the split falls right after the first sep that ends at or after the
// byte offset (1-valFraction)*len(corpus). Use "\n" to split at a line
// boundary, or a document separator to keep documents whole.
//
// For Tiny Shakespeare, Split(corpus, 0.1, "\n") gives nanoGPT's 90/10
// split, moved forward to the end of the line it falls in.
//
// It returns an error if valFraction is not strictly between 0 and 1, or if
// the validation part would be empty (no sep after the offset but the one
// that ends the corpus).
func Split(corpus []byte, valFraction float64, sep string) (train, val []byte, err error) {
	if !(valFraction > 0 && valFraction < 1) {
		return nil, nil, fmt.Errorf("split: validation fraction %v, want it in (0, 1)", valFraction)
	}
	if sep == "" {
		return nil, nil, errors.New("split: empty separator")
	}
	cut := int(float64(len(corpus)) * (1 - valFraction))
	from := max(cut-len(sep), 0)
	i := bytes.Index(corpus[from:], []byte(sep))
	if i < 0 {
		return nil, nil, fmt.Errorf("split: no %q after byte %d of %d", sep, cut, len(corpus))
	}
	at := from + i + len(sep)
	if at == len(corpus) {
		return nil, nil, fmt.Errorf("split: the only %q after byte %d of %d ends the corpus", sep, cut, len(corpus))
	}
	return corpus[:at], corpus[at:], nil
}

// WholeDocuments returns corpus up to and including its last sep, dropping a
// trailing document that sep does not close, as when a corpus sample was cut
// at a byte limit. It returns corpus unchanged if it ends with sep, and an
// empty slice if it holds no sep.
func WholeDocuments(corpus []byte, sep string) []byte {
	i := bytes.LastIndex(corpus, []byte(sep))
	if i < 0 {
		return corpus[:0]
	}
	return corpus[:i+len(sep)]
}

// pathErr drops the path from a *fs.PathError, which callers already name.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
