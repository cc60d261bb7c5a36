package lm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/data/text"
	"github.com/hiddenlab/hiddenlab/data/tokenize"
	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
)

func init() { experiment.Register("gpt", gpt.Family{}) }

// pretokRecipe trains a tiny GPT for a few steps on TRAIN / VALID; TOKENIZER
// is the data.text tokenizer lines (empty for a .bin's own).
const pretokRecipe = `name: pretok
model: {family: gpt, width: 32, layers: 1, heads: 2}
data:
  kind: text
  text:
    train: TRAIN
    valid: VALID
    context: 32
TOKENIZER
train: {steps: 6, batch: 4, threads: 1, log_every: 1, eval_every: 3, seed: 3,
        optimizer: {name: adamw, lr: 3.0e-3}}
eval: {samples: 0}
output: {progress: false}
`

// metrics are a run's records without wall-clock values.
func metrics(t *testing.T, dir string) []rundir.Record {
	t.Helper()
	recs, err := rundir.ReadMetrics(dir)
	require.NoError(t, err)
	for i := range recs {
		for _, k := range rundir.TimingKeys {
			delete(recs[i].Values, k)
		}
		recs[i].At, recs[i].Time = 0, time.Time{}
	}
	return recs
}

// Training from a pretokenized corpus (train, and valid too) gives exactly
// the losses of training from the text with the same tokenizer: the same
// ids, memory-mapped, give the same batches.
func TestPretokenizedEqualsText(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	dir := t.TempDir()
	corpus, err := os.ReadFile("../../third_party/tinystories/valid_first1000.txt")
	require.NoError(t, err)
	trainTxt, validTxt := filepath.Join(dir, "train.txt"), filepath.Join(dir, "valid.txt")
	require.NoError(t, os.WriteFile(trainTxt, corpus[:24<<10], 0o644))
	require.NoError(t, os.WriteFile(validTxt, corpus[24<<10:30<<10], 0o644))

	tokenizers := map[string]string{}
	byteTok, err := tokenize.New("byte", 0, nil)
	require.NoError(t, err)
	tokenizers["byte"] = filepath.Join(dir, "byte.json")
	require.NoError(t, tokenize.Save(tokenizers["byte"], byteTok))
	if b, err := exec.Command("gzip", "-dc", "../../data/tokenize/testdata/hf/hlbpe.tokenizer.json.gz").Output(); err == nil {
		tokenizers["hf bpe"] = filepath.Join(dir, "tokenizer.json")
		require.NoError(t, os.WriteFile(tokenizers["hf bpe"], b, 0o644))
	}
	for name, tokFile := range tokenizers {
		t.Run(name, func(t *testing.T) {
			sub := t.TempDir()
			trainBin, validBin := filepath.Join(sub, "train.bin"), filepath.Join(sub, "valid.bin")
			m, err := lm.Pretokenize(trainTxt, tokFile, trainBin)
			require.NoError(t, err)
			require.Equal(t, "uint16", m.DType)
			_, err = lm.Pretokenize(validTxt, tokFile, validBin)
			require.NoError(t, err)
			tok, err := tokenize.Load(tokFile)
			require.NoError(t, err)
			mapped, err := text.OpenTokens(trainBin)
			require.NoError(t, err)
			require.Equal(t, tok.Encode(string(corpus[:24<<10])), mapped.Slice(0, mapped.Len()))
			require.NoError(t, mapped.Close())

			fileTok := "    tokenizer: file\n    tokenizer_file: " + tokFile
			var runs [][]rundir.Record
			for _, c := range []struct{ train, valid, tok string }{
				{trainTxt, validTxt, fileTok}, // the reference: text, tokenized at load
				{trainBin, validTxt, ""},      // the .bin's own tokenizer (its sidecar)
				{trainBin, validBin, fileTok}, // both pretokenized; the recipe names the same tokenizer
			} {
				body := strings.NewReplacer("TRAIN", c.train, "VALID", c.valid, "TOKENIZER", c.tok).Replace(pretokRecipe)
				path := filepath.Join(t.TempDir(), "pretok.yaml")
				require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
				out := filepath.Join(t.TempDir(), "run")
				_, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + out}})
				require.NoError(t, err, c.train)
				runs = append(runs, metrics(t, out))
			}
			require.NotEmpty(t, runs[0])
			require.Contains(t, runs[0][0].Values, "loss")
			require.Equal(t, runs[0], runs[1], "train.bin, valid text")
			require.Equal(t, runs[0], runs[2], "train.bin, valid.bin")
		})
	}
}

// A .bin refuses a tokenizer other than the one that made it, and a
// tokenizer kind that cannot read ids.
func TestPretokenizedErrors(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "c.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(strings.Repeat("one two three four five six. ", 200)), 0o644))
	byteTok, err := tokenize.New("byte", 0, nil)
	require.NoError(t, err)
	tokFile := filepath.Join(dir, "byte.json")
	require.NoError(t, tokenize.Save(tokFile, byteTok))
	bin := filepath.Join(dir, "c.bin")
	_, err = lm.Pretokenize(corpus, tokFile, bin)
	require.NoError(t, err)
	other, err := tokenize.New("bpe", 270, []byte(strings.Repeat("one two three four five six. ", 200)))
	require.NoError(t, err)
	otherFile := filepath.Join(dir, "bpe.json")
	require.NoError(t, tokenize.Save(otherFile, other))
	_, err = lm.Pretokenize(corpus, tokFile, filepath.Join(dir, "c.tokens"))
	require.ErrorContains(t, err, "must end in .bin")

	for _, c := range []struct{ train, valid, tok, want string }{
		{bin, corpus, "    tokenizer: file\n    tokenizer_file: " + otherFile, "was made with the tokenizer"},
		{bin, corpus, "    tokenizer: bpe", "tokenizer: bpe cannot read the pretokenized"},
		{corpus, bin, "", "pretokenize both, or neither"},
	} {
		body := strings.NewReplacer("TRAIN", c.train, "VALID", c.valid, "TOKENIZER", c.tok).Replace(pretokRecipe)
		path := filepath.Join(t.TempDir(), "pretok.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
		_, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(t.TempDir(), "run")}})
		require.ErrorContains(t, err, c.want)
	}
}
