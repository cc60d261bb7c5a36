// Package lm is the shared machinery of language-model families (gpt,
// codebook, mohd): the recipe's data section (text corpora with a byte or BPE
// tokenizer, TokFSM, SynthStories), deterministic batches, and an Experiment
// that trains any model mapping token ids to logits, evaluates it on a
// held-out split and samples from it.
package lm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/hiddenlab/hiddenlab/data/synthstories"
	"github.com/hiddenlab/hiddenlab/data/text"
	"github.com/hiddenlab/hiddenlab/data/tokenize"
	"github.com/hiddenlab/hiddenlab/data/tokfsm"
	"github.com/hiddenlab/hiddenlab/experiment"
)

// Data is a tokenized dataset with deterministic training batches.
type Data interface {
	Vocab() int
	// Context is the length of a training sequence.
	Context() int
	// Batch returns training step step's inputs and targets, batch×Context
	// ids each (row-major), a pure function of the seed and the step.
	Batch(step, batch int) (x, y []int64)
	// Eval yields the held-out split in batches; mask (nil: all) marks the
	// targets to score.
	Eval(batch int) iter.Seq[text.EvalBatch]
	Encode(s string) []int64
	Decode(ids []int64) string
	// Start is the token that begins a sample (EOT or BOS).
	Start() int64
	Describe() string
}

// DataConfig is the recipe's data section for language models.
type DataConfig struct {
	Kind         string              `key:"kind" required:"true"` // text, tokfsm or synthstories
	Text         *TextConfig         `key:"text"`
	TokFSM       *FSMConfig          `key:"tokfsm"`
	SynthStories *SynthStoriesConfig `key:"synthstories"`
}

// TextConfig reads a corpus and tokenizes it.
type TextConfig struct {
	Train         string  `key:"train" required:"true"` // corpus file
	Valid         string  `key:"valid"`                 // held-out file; empty: the tail of train
	ValidFraction float64 `key:"valid_fraction"`        // tail share of train held out when valid is empty
	// Tokenizer is byte, bpe (trained on the train split), or file: the
	// tokenizer in TokenizerFile (a Hugging Face tokenizer.json, e.g. of an
	// imported model, or hiddenlab's own file).
	Tokenizer     string `key:"tokenizer"`
	TokenizerFile string `key:"tokenizer_file"`
	VocabSize     int    `key:"vocab_size"` // bpe only
	Context       int    `key:"context"`
	// ValidTokens caps the held-out tokens evaluated (0: all), for speed.
	ValidTokens int `key:"valid_tokens"`
}

// FSMConfig generates TokFSM sequences (Tamkin et al. §3).
type FSMConfig struct {
	States   int    `key:"states"`
	Edges    int    `key:"edges"`
	Base     int    `key:"base"`
	SeqLen   int    `key:"seq_len"`
	Seed     uint64 `key:"seed"`      // the graph
	EvalSeqs int    `key:"eval_seqs"` // held-out sequences
}

// SynthStoriesConfig generates the SynthStories-char corpus (MoHD brief §7).
type SynthStoriesConfig struct {
	TrainChars  int    `key:"train_chars"`
	ValidChars  int    `key:"valid_chars"`
	TrainSeed   uint64 `key:"train_seed"`
	ValidSeed   uint64 `key:"valid_seed"`
	Context     int    `key:"context"`
	ValidTokens int    `key:"valid_tokens"`
}

// LoadData decodes the recipe's data section and builds the dataset; the
// text tokenizer is saved into dir (when set). seed fixes the batch order.
// The section of the chosen kind starts from its defaults, so a recipe names
// only what it changes.
func LoadData(r *experiment.Recipe, dir string, seed uint64) (Data, *DataConfig, error) {
	cfg := &DataConfig{}
	kind, _ := r.Raw.Section("data")["kind"].(string)
	switch kind {
	case "text":
		cfg.Text = &TextConfig{Tokenizer: "byte", Context: 128, ValidFraction: 0.1}
	case "tokfsm":
		s := tokfsm.SmallConfig
		cfg.TokFSM = &FSMConfig{States: s.States, Edges: s.Edges, Base: s.Base, SeqLen: s.SeqLen, Seed: s.Seed, EvalSeqs: 512}
	case "synthstories":
		cfg.SynthStories = &SynthStoriesConfig{TrainChars: synthstories.TrainChars, ValidChars: synthstories.ValidChars,
			TrainSeed: synthstories.TrainSeed, ValidSeed: synthstories.ValidSeed, Context: 128}
	}
	if err := r.Decode("data", cfg); err != nil {
		return nil, nil, err
	}
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: data.%s: %s", r.Raw.Path, key, fmt.Sprintf(format, args...))
	}
	given := map[string]bool{"text": cfg.Text != nil, "tokfsm": cfg.TokFSM != nil, "synthstories": cfg.SynthStories != nil}
	for k, ok := range given {
		if ok && k != cfg.Kind {
			return nil, nil, bad(k, "given, but data.kind is %q", cfg.Kind)
		}
	}
	if err := checkData(r, cfg); err != nil {
		return nil, nil, err
	}
	var d Data
	var err error
	switch cfg.Kind {
	case "text":
		switch {
		case text.IsTokenFile(cfg.Text.Train): // pretokenized: memory-mapped (see Pretokenize)
			d, err = newBinData(*cfg.Text, dir, seed)
		case text.IsTokenFile(cfg.Text.Valid):
			err = fmt.Errorf("valid: %s is pretokenized, train %s is not (pretokenize both, or neither)", cfg.Text.Valid, cfg.Text.Train)
		default:
			d, err = newTextData(*cfg.Text, dir, seed)
		}
	case "tokfsm":
		d, err = NewFSMData(*cfg.TokFSM, seed)
	case "synthstories":
		d, err = newStoriesData(*cfg.SynthStories, seed)
	default:
		return nil, nil, bad("kind", "want text, tokfsm or synthstories, got %q", cfg.Kind)
	}
	if err != nil {
		return nil, nil, bad(cfg.Kind, "%v", err)
	}
	return d, cfg, nil
}

// checkData range-checks the numeric keys of the data section's chosen kind,
// naming the key and the source that set it.
func checkData(r *experiment.Recipe, cfg *DataConfig) error {
	var checks []Check
	if c := cfg.Text; c != nil && cfg.Kind == "text" {
		checks = append(checks,
			Check{c.Context > 0, "data.text.context", fmt.Sprintf("must be positive, got %d", c.Context)},
			Check{c.ValidTokens >= 0, "data.text.valid_tokens", fmt.Sprintf("must not be negative (0: all), got %d", c.ValidTokens)},
			Check{c.VocabSize >= 0, "data.text.vocab_size", fmt.Sprintf("must not be negative, got %d", c.VocabSize)},
			Check{c.Valid != "" || (c.ValidFraction > 0 && c.ValidFraction < 1), "data.text.valid_fraction",
				fmt.Sprintf("want a number in (0, 1) (the tail of data.text.train held out), got %v", c.ValidFraction)},
		)
	}
	if c := cfg.TokFSM; c != nil && cfg.Kind == "tokfsm" {
		checks = append(checks,
			Check{c.States >= 2, "data.tokfsm.states", fmt.Sprintf("need at least 2, got %d", c.States)},
			Check{c.Edges >= 1 && c.Edges <= c.States, "data.tokfsm.edges", fmt.Sprintf("need 1 ≤ edges ≤ states = %d, got %d", c.States, c.Edges)},
			Check{c.Base >= 2 && c.Base < math.MaxInt32, "data.tokfsm.base", fmt.Sprintf("need 2 ≤ base < 2^31-1, got %d", c.Base)},
			Check{c.SeqLen >= 3, "data.tokfsm.seq_len", fmt.Sprintf("need at least 3 (BOS and two digits), got %d", c.SeqLen)},
			Check{c.EvalSeqs >= 1, "data.tokfsm.eval_seqs", fmt.Sprintf("must be positive, got %d", c.EvalSeqs)},
		)
	}
	if c := cfg.SynthStories; c != nil && cfg.Kind == "synthstories" {
		checks = append(checks,
			Check{c.TrainChars > 0, "data.synthstories.train_chars", fmt.Sprintf("must be positive, got %d", c.TrainChars)},
			Check{c.ValidChars > 0, "data.synthstories.valid_chars", fmt.Sprintf("must be positive, got %d", c.ValidChars)},
			Check{c.Context > 0, "data.synthstories.context", fmt.Sprintf("must be positive, got %d", c.Context)},
			Check{c.ValidTokens >= 0, "data.synthstories.valid_tokens", fmt.Sprintf("must not be negative (0: all), got %d", c.ValidTokens)},
		)
	}
	return CheckKeys(r, checks...)
}

// tokenData is a token stream with a tokenizer-like codec.
type tokenData struct {
	train, valid []int32
	context      int
	vocab        int
	seed         uint64
	encode       func(string) []int32
	decode       func([]int32) string
	start        int64
	describe     string
	validTokens  int
}

func (d *tokenData) Vocab() int   { return d.vocab }
func (d *tokenData) Context() int { return d.context }
func (d *tokenData) Start() int64 { return d.start }

func (d *tokenData) Describe() string { return d.describe }

func (d *tokenData) Batch(step, batch int) (x, y []int64) {
	b, err := text.NewBatcher(d.train, batch, d.context, d.seed)
	if err != nil {
		panic(err)
	}
	return b.Batch(step)
}

func (d *tokenData) Eval(batch int) iter.Seq[text.EvalBatch] {
	ids := d.valid
	if d.validTokens > 0 && len(ids) > d.validTokens+1 {
		ids = ids[:d.validTokens+1]
	}
	ws, err := text.EvalWindows(ids, d.context, d.context)
	if err != nil {
		panic(err)
	}
	return text.EvalBatches(ids, ws, d.context, batch)
}

func (d *tokenData) Encode(s string) []int64 {
	ids := d.encode(s)
	out := make([]int64, len(ids))
	for i, v := range ids {
		out[i] = int64(v)
	}
	return out
}

func (d *tokenData) Decode(ids []int64) string {
	in := make([]int32, len(ids))
	for i, v := range ids {
		in[i] = int32(v)
	}
	return d.decode(in)
}

func newTextData(c TextConfig, dir string, seed uint64) (*tokenData, error) {
	corpus, err := text.ReadCorpus(c.Train)
	if err != nil {
		return nil, err
	}
	trainText, validText := corpus, []byte(nil)
	if c.Valid != "" {
		if validText, err = text.ReadCorpus(c.Valid); err != nil {
			return nil, err
		}
	} else {
		if trainText, validText, err = text.Split(corpus, c.ValidFraction, "\n"); err != nil {
			return nil, err
		}
	}
	tok, err := textTokenizer(c, trainText)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		save := func() error { return tokenize.Save(filepath.Join(dir, tokenize.FileName), tok) }
		if _, isHF := tok.(*tokenize.HF); isHF { // a model's own tokenizer stays in HF's format
			save = func() error { return tokenize.SaveHF(filepath.Join(dir, tokenize.HFFileName), tok) }
		}
		if err := save(); err != nil {
			return nil, err
		}
	}
	d := &tokenData{
		train: tok.Encode(string(trainText)), valid: tok.Encode(string(validText)), context: c.Context,
		vocab: tok.VocabSize(), seed: seed, encode: tok.Encode, decode: tok.Decode, start: int64(tok.EOT()),
		validTokens: c.ValidTokens,
	}
	d.describe = fmt.Sprintf("%s: %d train / %d valid tokens (%s tokenizer, vocab %d), context %d",
		filepath.Base(c.Train), len(d.train), len(d.valid), tok.Name(), d.vocab, d.context)
	if c.ValidTokens > 0 && c.ValidTokens < len(d.valid) {
		d.describe += fmt.Sprintf("; evaluation scores the first %d valid tokens (data.*.valid_tokens)", c.ValidTokens)
	}
	if len(d.valid) < c.Context+1 {
		return nil, fmt.Errorf("validation split has %d tokens, fewer than context+1", len(d.valid))
	}
	return d, nil
}

func newStoriesData(c SynthStoriesConfig, seed uint64) (*StoriesData, error) {
	train, _ := synthstories.Generate(c.TrainSeed, c.TrainChars)
	valid, slots := synthstories.Generate(c.ValidSeed, c.ValidChars)
	enc := func(b []byte) ([]int32, error) {
		ids, err := synthstories.Encode(b)
		out := make([]int32, len(ids))
		for i, v := range ids {
			out[i] = int32(v)
		}
		return out, err
	}
	tr, err := enc(train)
	if err != nil {
		return nil, err
	}
	va, err := enc(valid)
	if err != nil {
		return nil, err
	}
	codec := func(s string) []int32 {
		ids, _ := enc([]byte(s))
		return ids
	}
	decode := func(ids []int32) string {
		var b strings.Builder
		for _, id := range ids {
			if id >= 0 && int(id) < len(synthstories.Alphabet) {
				b.WriteByte(synthstories.Alphabet[id])
			}
		}
		return b.String()
	}
	d := &StoriesData{tokenData: tokenData{train: tr, valid: va, context: c.Context, vocab: len(synthstories.Alphabet),
		seed: seed, encode: codec, decode: decode, start: int64(strings.IndexByte(synthstories.Alphabet, '\n')),
		validTokens: c.ValidTokens}, Slots: slots}
	d.describe = fmt.Sprintf("SynthStories-char: %d train / %d valid chars (alphabet %d), context %d, %d recall slots",
		len(tr), len(va), d.vocab, d.context, len(slots))
	return d, nil
}

// StoriesData is SynthStories-char, with the validation split's recall slots.
type StoriesData struct {
	tokenData
	Slots []synthstories.RecallSlot
}

// Valid returns the validation ids.
func (d *StoriesData) Valid() []int32 { return d.valid }

// FSMData is TokFSM: sequences generated on the fly from a seeded FSM.
type FSMData struct {
	FSM      *tokfsm.FSM
	seed     uint64
	evalSeqs int
}

// NewFSMData builds the FSM of c; seed fixes the batch order.
func NewFSMData(c FSMConfig, seed uint64) (*FSMData, error) {
	f, err := tokfsm.New(tokfsm.Config{States: c.States, Edges: c.Edges, Base: c.Base, SeqLen: c.SeqLen, Seed: c.Seed})
	if err != nil {
		return nil, err
	}
	return &FSMData{FSM: f, seed: seed, evalSeqs: c.EvalSeqs}, nil
}

func (d *FSMData) Vocab() int   { return d.FSM.Vocab() }
func (d *FSMData) Context() int { return d.FSM.Config().SeqLen - 1 }
func (d *FSMData) Start() int64 { return int64(d.FSM.BOS()) }

func (d *FSMData) Batch(step, batch int) (x, y []int64) { return d.FSM.Batch(d.seed, step, batch) }

func (d *FSMData) Eval(batch int) iter.Seq[text.EvalBatch] {
	x, y := d.FSM.EvalSet(d.seed, d.evalSeqs)
	T := d.Context()
	return func(yield func(text.EvalBatch) bool) {
		for r := 0; r < d.evalSeqs; r += batch {
			n := min(batch, d.evalSeqs-r)
			b := text.EvalBatch{X: x[r*T : (r+n)*T], Y: y[r*T : (r+n)*T], Scored: n * T}
			if !yield(b) {
				return
			}
		}
	}
}

func (d *FSMData) Encode(s string) []int64 {
	var out []int64
	for _, c := range s {
		if c >= '0' && c <= '9' {
			out = append(out, int64(c-'0'))
		}
	}
	return out
}

func (d *FSMData) Decode(ids []int64) string {
	var b strings.Builder
	for _, id := range ids {
		if id == int64(d.FSM.BOS()) {
			b.WriteString("<bos>")
		} else {
			fmt.Fprintf(&b, "%d", id)
		}
	}
	return b.String()
}

func (d *FSMData) Describe() string {
	c := d.FSM.Config()
	return fmt.Sprintf("TokFSM: %d states, %d successors each, base %d (%d digits/state), sequences of %d tokens, %d eval sequences",
		c.States, c.Edges, c.Base, d.FSM.Digits(), c.SeqLen, d.evalSeqs)
}

// textTokenizer makes the text section's tokenizer: a file's, or a byte or
// BPE tokenizer. A trained BPE is cached (in the user's cache directory,
// keyed by the SHA-256 of the training text and the vocabulary size), so
// the runs of a sweep and a resumed run reuse one tokenizer instead of
// retraining it; training is deterministic, so the cache changes nothing
// but time.
func textTokenizer(c TextConfig, trainText []byte) (tokenize.Tokenizer, error) {
	switch c.Tokenizer {
	case "file":
		if c.TokenizerFile == "" {
			return nil, fmt.Errorf("data.text.tokenizer_file: required with tokenizer: file")
		}
		return tokenize.Load(c.TokenizerFile)
	case "bpe":
		h := sha256.New()
		h.Write(trainText)
		fmt.Fprintf(h, "|vocab %d|", c.VocabSize)
		var path string
		if dir, err := os.UserCacheDir(); err == nil {
			path = filepath.Join(dir, "hiddenlab", "tokenizers", hex.EncodeToString(h.Sum(nil))[:32]+".json")
			if tok, err := tokenize.Load(path); err == nil && tok.VocabSize() == c.VocabSize {
				return tok, nil
			}
		}
		tok, err := tokenize.New(c.Tokenizer, c.VocabSize, trainText)
		if err == nil && path != "" && os.MkdirAll(filepath.Dir(path), 0o755) == nil {
			tokenize.Save(path, tok) // a cache: failing to write it costs only time
		}
		return tok, err
	}
	if c.TokenizerFile != "" {
		return nil, fmt.Errorf("data.text.tokenizer_file: only with tokenizer: file (got tokenizer: %s)", c.Tokenizer)
	}
	return tokenize.New(c.Tokenizer, c.VocabSize, trainText)
}
