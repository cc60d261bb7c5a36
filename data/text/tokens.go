package text

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// A token file holds token ids packed as little-endian unsigned integers
// after a 24-byte header, also little-endian:
//
//	offset  size  field
//	0       6     magic "HLTOK1"
//	6       1     bytes per id: 2 (uint16) if the vocabulary has at most 65536 ids, else 4 (uint32)
//	7       1     zero
//	8       8     number of ids (uint64)
//	16      4     vocabulary size (uint32); every id is below it
//	20      4     zero
//	24      ...   the ids
//
// The file is exactly 24 + count*width bytes long.
const (
	tokMagic      = "HLTOK1"
	tokHeaderSize = 24
)

// MaxVocabSize is the largest vocabulary a token file can describe: ids are
// int32s.
const MaxVocabSize = math.MaxInt32 + 1

// tokWidth is the bytes per id for a vocabulary of vocabSize ids.
func tokWidth(vocabSize int) int {
	if vocabSize <= 1<<16 {
		return 2
	}
	return 4
}

// WriteTokens writes ids to path as a token file, replacing the file
// atomically. Ids take 2 bytes each if vocabSize is at most 65536, else 4.
// Every id must be in [0, vocabSize), and vocabSize in [1, MaxVocabSize].
func WriteTokens(path string, ids []int32, vocabSize int) error {
	if vocabSize < 1 || vocabSize > MaxVocabSize {
		return fmt.Errorf("tokens %s: vocab size %d, want 1..%d", path, vocabSize, MaxVocabSize)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocabSize {
			return fmt.Errorf("tokens %s: ids[%d] = %d, outside the vocabulary [0, %d)", path, i, id, vocabSize)
		}
	}
	width := tokWidth(vocabSize)
	var h [tokHeaderSize]byte
	copy(h[:], tokMagic)
	h[6] = byte(width)
	binary.LittleEndian.PutUint64(h[8:], uint64(len(ids)))
	binary.LittleEndian.PutUint32(h[16:], uint32(vocabSize))
	return atomicio.Write(path, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		bw.Write(h[:])
		var buf [4]byte
		for _, id := range ids {
			if width == 2 {
				binary.LittleEndian.PutUint16(buf[:], uint16(id))
			} else {
				binary.LittleEndian.PutUint32(buf[:], uint32(id))
			}
			bw.Write(buf[:width])
		}
		return bw.Flush()
	})
}

// ReadTokens reads a token file that WriteTokens wrote. It checks the magic,
// the id width, that the file length matches the count, and that every id is
// below the vocabulary size; errors name the file and what is wrong.
func ReadTokens(path string) (ids []int32, vocabSize int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("tokens %s: %w", path, pathErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("tokens %s: %w", path, pathErr(err))
	}
	size := st.Size()
	r := bufio.NewReaderSize(f, 1<<16)
	var h [tokHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, 0, fmt.Errorf("tokens %s: header: %d bytes, want %d", path, size, tokHeaderSize)
	}
	if string(h[:6]) != tokMagic {
		return nil, 0, fmt.Errorf("tokens %s: magic %q, want %q (not a token file)", path, h[:6], tokMagic)
	}
	width := int(h[6])
	count := binary.LittleEndian.Uint64(h[8:])
	vocab := binary.LittleEndian.Uint32(h[16:])
	switch {
	case width != 2 && width != 4:
		return nil, 0, fmt.Errorf("tokens %s: id width %d bytes, want 2 or 4", path, width)
	case h[7] != 0 || binary.LittleEndian.Uint32(h[20:]) != 0:
		return nil, 0, fmt.Errorf("tokens %s: reserved header bytes are not zero", path)
	case vocab == 0 || uint64(vocab) > MaxVocabSize:
		return nil, 0, fmt.Errorf("tokens %s: vocab size %d, want 1..%d", path, vocab, MaxVocabSize)
	case width != tokWidth(int(vocab)):
		return nil, 0, fmt.Errorf("tokens %s: id width %d bytes for vocab size %d, want %d", path, width, vocab, tokWidth(int(vocab)))
	}
	data := uint64(size - tokHeaderSize)
	if count > data/uint64(width) || data != count*uint64(width) {
		return nil, 0, fmt.Errorf("tokens %s: %d bytes of ids, want %d ids x %d bytes (truncated or trailing data)",
			path, data, count, width)
	}
	ids = make([]int32, count)
	buf := make([]byte, 1<<16-(1<<16)%width)
	for done := 0; done < len(ids); {
		n := min(len(buf)/width, len(ids)-done)
		if _, err := io.ReadFull(r, buf[:n*width]); err != nil {
			return nil, 0, fmt.Errorf("tokens %s: %w", path, err)
		}
		for i := range n {
			var id uint32
			if width == 2 {
				id = uint32(binary.LittleEndian.Uint16(buf[i*width:]))
			} else {
				id = binary.LittleEndian.Uint32(buf[i*width:])
			}
			if id >= vocab {
				return nil, 0, fmt.Errorf("tokens %s: ids[%d] = %d, outside the vocabulary [0, %d)", path, done+i, id, vocab)
			}
			ids[done+i] = int32(id)
		}
		done += n
	}
	return ids, int(vocab), nil
}
