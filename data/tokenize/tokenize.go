// Package tokenize turns text into token ids and back.
//
// Three tokenizers implement Tokenizer: Byte, whose ids are the bytes of the
// text; BPE, a byte-level byte-pair encoding trained in Go with TrainBPE; and
// HF, a byte-level BPE read from a Hugging Face tokenizer.json (GPT-2,
// GPT-NeoX/Pythia, Qwen2, Llama-3 and the like). Byte and BPE reserve id 256
// for the end-of-text marker that separates documents and encode the literal
// EndOfText in a text as that id, so every string, valid UTF-8 or not,
// round-trips: Decode(Encode(s)) == s.
//
// Byte and BPE are saved as a small JSON file of hiddenlab's own schema
// (Save, Byte.Save, BPE.Save), by convention named FileName in a run
// directory. Any of the three can also be written as a Hugging Face
// tokenizer.json (SaveHF, named HFFileName). Load reads both schemas. New
// builds a tokenizer by name, as recipes name them.
package tokenize

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// FileName is the name of hiddenlab's own tokenizer file in a run directory.
// Runs written before it existed named theirs "tokenizer.json" (HFFileName);
// Load reads either schema under any name.
const FileName = "hiddenlab_tokenizer.json"

// HFFileName is the name Hugging Face gives a tokenizer.json; SaveHF writes
// that schema.
const HFFileName = "tokenizer.json"

// EndOfText is the literal that marks a document boundary in text. Encode maps
// it to the tokenizer's EOT id and Decode maps that id back to it.
const EndOfText = "<|endoftext|>"

// eotID is the end-of-text id of both tokenizers: the first id after the 256
// byte ids.
const eotID = 256

// Tokenizer maps text to token ids and back.
//
// Implementations are safe for concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text. It never fails: any byte has an id.
	Encode(text string) []int32
	// Decode returns the text of ids. An id outside [0, VocabSize()) decodes
	// to the replacement character U+FFFD.
	Decode(ids []int32) string
	// VocabSize is the number of ids; every id is in [0, VocabSize()).
	VocabSize() int
	// EOT is the end-of-text id that separates documents.
	EOT() int32
	// Name is the tokenizer's kind as New and the saved file name it: "byte"
	// or "bpe"; "hf" for a tokenizer read from a Hugging Face tokenizer.json.
	Name() string
}

// New returns the tokenizer a recipe names. For "byte", vocabSize must be 0
// or 257 and trainText is ignored. For "bpe", New trains on trainText with
// TrainBPE and default options.
func New(name string, vocabSize int, trainText []byte) (Tokenizer, error) {
	switch name {
	case "byte":
		if vocabSize != 0 && vocabSize != byteVocabSize {
			return nil, fmt.Errorf("tokenizer byte: vocab size %d, want %d (or 0)", vocabSize, byteVocabSize)
		}
		return Byte{}, nil
	case "bpe":
		return TrainBPE(trainText, vocabSize, BPEOptions{})
	}
	return nil, fmt.Errorf("tokenizer %q: unknown kind (want \"byte\" or \"bpe\")", name)
}

// Save writes tok to path in hiddenlab's schema as Load reads it, replacing
// the file atomically. It returns an error for a Tokenizer that is neither
// Byte nor *BPE; SaveHF writes any of the three as a Hugging Face file.
func Save(path string, tok Tokenizer) error {
	switch t := tok.(type) {
	case Byte:
		return t.Save(path)
	case *BPE:
		return t.Save(path)
	}
	return fmt.Errorf("tokenizer %s: cannot save a %T", path, tok)
}

// fileJSON is the saved form of a tokenizer. Pointers tell a missing key from
// a zero value.
type fileJSON struct {
	Type      *string    `json:"type"`
	VocabSize *int       `json:"vocab_size"`
	EOT       *int64     `json:"eot"`
	Merges    *[][]int64 `json:"merges"`
}

// Load reads a tokenizer that Save or SaveHF wrote, or any Hugging Face
// tokenizer.json that LoadHF accepts. A file that starts with gzip's magic
// bytes is decompressed first. A JSON object with a "model" key is a Hugging
// Face file (see LoadHF); anything else is read as hiddenlab's schema.
//
// For hiddenlab's schema Load checks the whole file: the JSON itself, the
// type, that every merge refers only to ids defined before it, and that
// vocab_size and eot agree with the type and the merges. Errors name the file
// and the offending key.
func Load(path string) (Tokenizer, error) {
	data, err := readTokenizerFile(path)
	if err != nil {
		return nil, err
	}
	if isHF(data) {
		h, err := parseHF(path, data)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("tokenizer %s: data after the JSON object", path)
	}
	if f.Type == nil {
		return nil, fmt.Errorf("tokenizer %s: type: missing", path)
	}
	switch *f.Type {
	case "byte":
		return loadByte(path, &f)
	case "bpe":
		return loadBPE(path, &f)
	}
	return nil, fmt.Errorf("tokenizer %s: type: unknown %q (want \"byte\" or \"bpe\")", path, *f.Type)
}

func loadByte(path string, f *fileJSON) (Tokenizer, error) {
	if f.VocabSize != nil && *f.VocabSize != byteVocabSize {
		return nil, fmt.Errorf("tokenizer %s: vocab_size: %d, want %d for type byte", path, *f.VocabSize, byteVocabSize)
	}
	if f.EOT != nil && *f.EOT != eotID {
		return nil, fmt.Errorf("tokenizer %s: eot: %d, want %d", path, *f.EOT, eotID)
	}
	if f.Merges != nil {
		return nil, fmt.Errorf("tokenizer %s: merges: not allowed for type byte", path)
	}
	return Byte{}, nil
}

func loadBPE(path string, f *fileJSON) (Tokenizer, error) {
	switch {
	case f.VocabSize == nil:
		return nil, fmt.Errorf("tokenizer %s: vocab_size: missing", path)
	case f.EOT == nil:
		return nil, fmt.Errorf("tokenizer %s: eot: missing", path)
	case f.Merges == nil:
		return nil, fmt.Errorf("tokenizer %s: merges: missing", path)
	case *f.EOT != eotID:
		return nil, fmt.Errorf("tokenizer %s: eot: %d, want %d", path, *f.EOT, eotID)
	}
	raw := *f.Merges
	if want := baseVocabSize + len(raw); *f.VocabSize != want {
		return nil, fmt.Errorf("tokenizer %s: vocab_size: %d, but %d base ids + %d merges make %d",
			path, *f.VocabSize, baseVocabSize, len(raw), want)
	}
	merges := make([][2]int32, len(raw))
	seen := make(map[uint64]int, len(raw))
	for i, m := range raw {
		if len(m) != 2 {
			return nil, fmt.Errorf("tokenizer %s: merges[%d]: %d ids, want 2", path, i, len(m))
		}
		for _, id := range m {
			switch {
			case id == eotID:
				return nil, fmt.Errorf("tokenizer %s: merges[%d]: merges the end-of-text id %d", path, i, id)
			case id < 0 || id >= int64(baseVocabSize+i):
				return nil, fmt.Errorf("tokenizer %s: merges[%d]: id %d is not defined before this merge (ids 0..%d are)",
					path, i, id, baseVocabSize+i-1)
			}
		}
		merges[i] = [2]int32{int32(m[0]), int32(m[1])}
		key := pairKey(merges[i][0], merges[i][1])
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("tokenizer %s: merges[%d]: duplicate of merges[%d] %v", path, i, j, merges[i])
		}
		seen[key] = i
	}
	return newBPE(merges), nil
}

// readTokenizerFile returns the bytes of path, gunzipped if they start with
// gzip's magic bytes.
func readTokenizerFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, pathErr(err))
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s: gzip: %w", path, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("tokenizer %s: gzip: %w", path, err)
		}
	}
	return data, nil
}

// pathErr drops the path from a *fs.PathError, which callers already name.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
