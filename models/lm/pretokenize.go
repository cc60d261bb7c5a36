package lm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hiddenlab/hiddenlab/data/text"
	"github.com/hiddenlab/hiddenlab/data/tokenize"
)

// Pretokenize tokenizes the text file corpus once with the tokenizer file
// tokenizerFile (a Hugging Face tokenizer.json or hiddenlab's own) and
// writes the ids to out, a token file (*.bin: uint16 ids when the
// vocabulary has at most 65536, else uint32, after a 24-byte header; see
// package text), with its sidecar out.json naming the tokenizer (path and
// SHA-256) and the source. A recipe then trains on it with
// data.text.train: out (or valid: out): memory-mapped, not re-tokenized,
// with the same ids and so the same batches and losses as training on the
// text with that tokenizer. `hiddenlab data pretokenize` is this function.
func Pretokenize(corpus, tokenizerFile, out string) (*text.TokensMeta, error) {
	if !text.IsTokenFile(out) {
		return nil, fmt.Errorf("pretokenize: %s: the output must end in %s (a recipe recognises token files by it)", out, text.TokenFileExt)
	}
	tok, err := tokenize.Load(tokenizerFile)
	if err != nil {
		return nil, err
	}
	tokSum, err := fileSHA256(tokenizerFile)
	if err != nil {
		return nil, err
	}
	src, err := text.ReadCorpus(corpus)
	if err != nil {
		return nil, err
	}
	srcSum := sha256.Sum256(src)
	ids := tok.Encode(string(src))
	if err := text.WriteTokens(out, ids, tok.VocabSize()); err != nil {
		return nil, err
	}
	absTok, err := filepath.Abs(tokenizerFile)
	if err != nil {
		return nil, err
	}
	m := text.TokensMeta{Format: "HLTOK1", DType: text.DTypeFor(tok.VocabSize()), Count: len(ids), VocabSize: tok.VocabSize(),
		Tokenizer: absTok, TokenizerName: tok.Name(), TokenizerSHA256: tokSum,
		Source: corpus, SourceSHA256: hex.EncodeToString(srcSum[:])}
	if err := text.WriteTokensMeta(out, m); err != nil {
		return nil, err
	}
	return &m, nil
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("tokenizer %s: %w", path, err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// binData is a text dataset whose training split is a memory-mapped token
// file.
type binData struct {
	tokenData
	mapped *text.MappedTokens
	lo, hi int // the training ids
}

// Batch serves the windows NewBatcher would over the same ids.
func (d *binData) Batch(step, batch int) (x, y []int64) {
	b, err := text.NewMappedBatcher(d.mapped, d.lo, d.hi, batch, d.context, d.seed)
	if err != nil {
		panic(err)
	}
	return b.Batch(step)
}

// binTokenizer is the tokenizer of a token file: the recipe's file if it
// names one (it must be the file the corpus was made with, by content),
// else the sidecar's.
func binTokenizer(c TextConfig, path string) (tokenize.Tokenizer, error) {
	meta, err := text.ReadTokensMeta(path)
	if err != nil && c.TokenizerFile == "" {
		return nil, fmt.Errorf("%w (it names the tokenizer; or set data.text.tokenizer: file and tokenizer_file)", err)
	}
	switch c.Tokenizer {
	case "byte", "file", "": // byte is the default: the corpus's own tokenizer applies
	default:
		return nil, fmt.Errorf("data.text.tokenizer: %s cannot read the pretokenized %s: it holds ids of the tokenizer in %s", c.Tokenizer, path, text.MetaPath(path))
	}
	file := c.TokenizerFile
	if file == "" {
		file = meta.Tokenizer
	}
	tok, err := tokenize.Load(file)
	if err != nil {
		return nil, err
	}
	if meta != nil {
		sum, err := fileSHA256(file)
		if err != nil {
			return nil, err
		}
		if sum != meta.TokenizerSHA256 {
			return nil, fmt.Errorf("%s was made with the tokenizer %s (SHA-256 %.12s…), not %s (%.12s…)", path, meta.Tokenizer, meta.TokenizerSHA256, file, sum)
		}
	}
	return tok, nil
}

// newBinData builds text data whose train split (and optionally valid) is
// pretokenized: train ids are memory-mapped; the validation ids (a token
// file, a text file tokenized here, or the train file's last
// valid_fraction of ids) are read into memory.
func newBinData(c TextConfig, dir string, seed uint64) (*binData, error) {
	tok, err := binTokenizer(c, c.Train)
	if err != nil {
		return nil, err
	}
	m, err := text.OpenTokens(c.Train)
	if err != nil {
		return nil, err
	}
	if m.VocabSize() != tok.VocabSize() {
		return nil, fmt.Errorf("%s: vocabulary of %d ids, its tokenizer has %d", c.Train, m.VocabSize(), tok.VocabSize())
	}
	lo, hi := 0, m.Len()
	var valid []int32
	switch {
	case c.Valid == "":
		hi = m.Len() - int(float64(m.Len())*c.ValidFraction)
		valid = m.Slice(hi, m.Len())
	case text.IsTokenFile(c.Valid):
		if _, err := binTokenizer(TextConfig{Tokenizer: "file", TokenizerFile: tokFileOf(c, c.Train)}, c.Valid); err != nil {
			return nil, err
		}
		vm, err := text.OpenTokens(c.Valid)
		if err != nil {
			return nil, err
		}
		valid = vm.Slice(0, vm.Len())
		vm.Close()
	default:
		vt, err := text.ReadCorpus(c.Valid)
		if err != nil {
			return nil, err
		}
		valid = tok.Encode(string(vt))
	}
	if dir != "" { // as newTextData: a model's own tokenizer stays in HF's format
		save := func() error { return tokenize.Save(filepath.Join(dir, tokenize.FileName), tok) }
		if _, isHF := tok.(*tokenize.HF); isHF {
			save = func() error { return tokenize.SaveHF(filepath.Join(dir, tokenize.HFFileName), tok) }
		}
		if err := save(); err != nil {
			return nil, err
		}
	}
	d := &binData{tokenData: tokenData{valid: valid, context: c.Context, vocab: tok.VocabSize(), seed: seed,
		encode: tok.Encode, decode: tok.Decode, start: int64(tok.EOT()), validTokens: c.ValidTokens},
		mapped: m, lo: lo, hi: hi}
	d.describe = fmt.Sprintf("%s: %d train / %d valid tokens, pretokenized and memory-mapped (%s, %s tokenizer, vocab %d), context %d",
		filepath.Base(c.Train), hi-lo, len(valid), text.DTypeFor(d.vocab), tok.Name(), d.vocab, d.context)
	if hi-lo < c.Context+1 {
		return nil, fmt.Errorf("%s: the training split has %d tokens, fewer than context+1", c.Train, hi-lo)
	}
	if len(valid) < c.Context+1 {
		return nil, fmt.Errorf("validation split has %d tokens, fewer than context+1", len(valid))
	}
	return d, nil
}

// tokFileOf is the tokenizer file a token file's data uses: the recipe's,
// else its sidecar's.
func tokFileOf(c TextConfig, path string) string {
	if c.TokenizerFile != "" {
		return c.TokenizerFile
	}
	if m, err := text.ReadTokensMeta(path); err == nil {
		return m.Tokenizer
	}
	return ""
}
