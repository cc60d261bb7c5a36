package tokenize

import (
	"strings"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// byteVocabSize is the Byte tokenizer's vocabulary: 256 bytes and EOT.
const byteVocabSize = 257

// Byte is the byte-level tokenizer: ids 0..255 are the bytes of the text and
// id 256 is EOT, written EndOfText in text. Its zero value is ready to use.
type Byte struct{}

// Encode returns one id per byte of text, except that each EndOfText in text
// becomes the single id 256.
func (Byte) Encode(text string) []int32 {
	ids := make([]int32, 0, len(text))
	for {
		i := strings.Index(text, EndOfText)
		if i < 0 {
			break
		}
		ids = appendBytes(ids, text[:i])
		ids = append(ids, eotID)
		text = text[i+len(EndOfText):]
	}
	return appendBytes(ids, text)
}

func appendBytes(ids []int32, s string) []int32 {
	for i := 0; i < len(s); i++ {
		ids = append(ids, int32(s[i]))
	}
	return ids
}

// Decode returns the bytes that ids name, with EndOfText for id 256 and
// U+FFFD for ids outside [0, 257).
func (Byte) Decode(ids []int32) string {
	var b strings.Builder
	b.Grow(len(ids))
	for _, id := range ids {
		switch {
		case id >= 0 && id < 256:
			b.WriteByte(byte(id))
		case id == eotID:
			b.WriteString(EndOfText)
		default:
			b.WriteRune('\uFFFD')
		}
	}
	return b.String()
}

// VocabSize returns 257.
func (Byte) VocabSize() int { return byteVocabSize }

// EOT returns 256.
func (Byte) EOT() int32 { return eotID }

// Name returns "byte".
func (Byte) Name() string { return "byte" }

// Save writes {"type":"byte","vocab_size":257,"eot":256} to path atomically.
func (Byte) Save(path string) error {
	return atomicio.WriteFile(path, []byte(`{"type":"byte","vocab_size":257,"eot":256}`+"\n"), 0o644)
}
