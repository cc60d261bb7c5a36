package text

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// A pretokenized corpus is a token file (the format of [WriteTokens]: a
// 24-byte header, then the ids as little-endian uint16 when the vocabulary
// has at most 65536 ids, else uint32, as nanoGPT's .bin files but with a
// header) named *.bin, with a sidecar JSON file beside it (*.bin.json,
// [TokensMeta]) naming the tokenizer that made it. Training memory-maps it
// ([OpenTokens]) instead of reading and tokenizing the text.

// TokenFileExt is the extension that marks a corpus as pretokenized.
const TokenFileExt = ".bin"

// IsTokenFile reports whether path names a pretokenized corpus (*.bin).
func IsTokenFile(path string) bool { return strings.EqualFold(filepath.Ext(path), TokenFileExt) }

// TokensMeta is the sidecar of a pretokenized corpus: what it holds and the
// tokenizer that made it, so that training decodes samples with the same
// tokenizer and refuses another.
type TokensMeta struct {
	Format    string `json:"format"` // "HLTOK1", the header's magic
	DType     string `json:"dtype"`  // uint16 or uint32
	Count     int    `json:"count"`  // ids
	VocabSize int    `json:"vocab_size"`
	// Tokenizer is the tokenizer file's path as given when the corpus was
	// made, TokenizerName its kind (byte, bpe, hf) and TokenizerSHA256 the
	// SHA-256 of the file's bytes.
	Tokenizer       string `json:"tokenizer"`
	TokenizerName   string `json:"tokenizer_name"`
	TokenizerSHA256 string `json:"tokenizer_sha256"`
	// Source is the text file tokenized and SourceSHA256 its SHA-256.
	Source       string `json:"source"`
	SourceSHA256 string `json:"source_sha256"`
}

// MetaPath is the sidecar file of the token file path.
func MetaPath(path string) string { return path + ".json" }

// DTypeFor is the id type of a token file for a vocabulary of vocabSize ids.
func DTypeFor(vocabSize int) string {
	if tokWidth(vocabSize) == 2 {
		return "uint16"
	}
	return "uint32"
}

// WriteTokensMeta writes m as the sidecar of the token file path.
func WriteTokensMeta(path string, m TokensMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(MetaPath(path), append(b, '\n'), 0o644)
}

// ReadTokensMeta reads the sidecar of the token file path.
func ReadTokensMeta(path string) (*TokensMeta, error) {
	b, err := os.ReadFile(MetaPath(path))
	if err != nil {
		return nil, fmt.Errorf("tokens %s: sidecar: %w", path, pathErr(err))
	}
	var m TokensMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tokens %s: sidecar %s: %w", path, MetaPath(path), err)
	}
	return &m, nil
}

// MappedTokens is a token file memory-mapped read-only: its ids are read
// from the page cache on demand, so a corpus of any size costs no heap and
// the processes training on it share one copy. It is safe for concurrent
// reads; Close (or the garbage collector, once it is unreachable) unmaps it.
type MappedTokens struct {
	path  string
	data  []byte // the mapping, header included
	ids   []byte // the ids
	width int
	n     int
	vocab int
}

// OpenTokens memory-maps the token file path, checking its header and
// length as [ReadTokens] does and that every id is below the vocabulary
// size (one sequential pass over the mapping).
func OpenTokens(path string) (*MappedTokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens %s: %w", path, pathErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokens %s: %w", path, pathErr(err))
	}
	size := st.Size()
	if !st.Mode().IsRegular() || size < tokHeaderSize {
		return nil, fmt.Errorf("tokens %s: header: %d bytes, want %d", path, size, tokHeaderSize)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("tokens %s: %d bytes, too large to map", path, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("tokens %s: mmap: %w", path, err)
	}
	m := &MappedTokens{path: path, data: data}
	if err := m.check(); err != nil {
		syscall.Munmap(data)
		return nil, err
	}
	runtime.SetFinalizer(m, (*MappedTokens).Close)
	return m, nil
}

// check validates the header, the length and the ids.
func (m *MappedTokens) check() error {
	h, path := m.data[:tokHeaderSize], m.path
	if string(h[:6]) != tokMagic {
		return fmt.Errorf("tokens %s: magic %q, want %q (not a token file)", path, h[:6], tokMagic)
	}
	width := int(h[6])
	count := binary.LittleEndian.Uint64(h[8:])
	vocab := binary.LittleEndian.Uint32(h[16:])
	switch {
	case width != 2 && width != 4:
		return fmt.Errorf("tokens %s: id width %d bytes, want 2 or 4", path, width)
	case h[7] != 0 || binary.LittleEndian.Uint32(h[20:]) != 0:
		return fmt.Errorf("tokens %s: reserved header bytes are not zero", path)
	case vocab == 0 || uint64(vocab) > MaxVocabSize:
		return fmt.Errorf("tokens %s: vocab size %d, want 1..%d", path, vocab, MaxVocabSize)
	case width != tokWidth(int(vocab)):
		return fmt.Errorf("tokens %s: id width %d bytes for vocab size %d, want %d", path, width, vocab, tokWidth(int(vocab)))
	}
	data := uint64(len(m.data) - tokHeaderSize)
	if count > data/uint64(width) || data != count*uint64(width) {
		return fmt.Errorf("tokens %s: %d bytes of ids, want %d ids x %d bytes (truncated or trailing data)", path, data, count, width)
	}
	m.ids, m.width, m.n, m.vocab = m.data[tokHeaderSize:], width, int(count), int(vocab)
	for i := range m.n {
		if id := m.At(i); int(id) >= m.vocab {
			return fmt.Errorf("tokens %s: ids[%d] = %d, outside the vocabulary [0, %d)", path, i, id, vocab)
		}
	}
	return nil
}

// Path is the mapped file.
func (m *MappedTokens) Path() string { return m.path }

// Len is the number of ids.
func (m *MappedTokens) Len() int { return m.n }

// VocabSize is the header's vocabulary size; every id is below it.
func (m *MappedTokens) VocabSize() int { return m.vocab }

// At returns id i. It panics if i is out of range.
func (m *MappedTokens) At(i int) int32 {
	if m.width == 2 {
		return int32(binary.LittleEndian.Uint16(m.ids[2*i:]))
	}
	return int32(binary.LittleEndian.Uint32(m.ids[4*i:]))
}

// Slice copies ids [lo, hi).
func (m *MappedTokens) Slice(lo, hi int) []int32 {
	out := make([]int32, hi-lo)
	for i := range out {
		out[i] = m.At(lo + i)
	}
	return out
}

// fill writes ids [lo, lo+len(dst)) into dst.
func (m *MappedTokens) fill(dst []int64, lo int) {
	for i := range dst {
		dst[i] = int64(m.At(lo + i))
	}
}

// Close unmaps the file; the MappedTokens must not be used afterwards.
func (m *MappedTokens) Close() error {
	if m.data == nil {
		return nil
	}
	runtime.SetFinalizer(m, nil)
	err := syscall.Munmap(m.data)
	m.data, m.ids = nil, nil
	return err
}

// NewMappedBatcher returns a Batcher over ids [lo, hi) of a mapped token
// file: its batches equal those of NewBatcher(m.Slice(lo, hi), …) with the
// same arguments, without copying the ids. The Batcher keeps m.
func NewMappedBatcher(m *MappedTokens, lo, hi, batch, context int, seed uint64) (*Batcher, error) {
	if lo < 0 || hi > m.Len() || lo > hi {
		return nil, fmt.Errorf("batcher: range [%d, %d) outside the %d tokens of %s", lo, hi, m.Len(), m.path)
	}
	if err := checkBatcher(hi-lo, batch, context); err != nil {
		return nil, err
	}
	return &Batcher{batch: batch, context: context, seed: seed, src: m, lo: lo, n: hi - lo}, nil
}
