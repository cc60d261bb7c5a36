package hfio_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/hiddenlab/hiddenlab/families"
	"github.com/hiddenlab/hiddenlab/hfio"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
)

const pythonTorch = "/usr/bin/python3" // Debian's python3-torch (make setup)

// hfModel writes a randomly initialised Qwen2-layout checkpoint with the
// PyTorch reference (hf/testdata/hf_reference.py, HF's names and layouts)
// and a real byte-level BPE tokenizer.json (hiddenlab's 4096-id BPE as
// Hugging Face's format, data/tokenize/testdata), and returns its directory.
func hfModel(t *testing.T, root string) string {
	t.Helper()
	cases := []map[string]any{{"name": "qwen2small", "seed": 3, "variants": []string{"bf16"}, "config": map[string]any{
		"model_type": "qwen2", "vocab_size": 4096, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": true}}}
	js, err := json.Marshal(cases)
	require.NoError(t, err)
	cp := filepath.Join(root, "cases.json")
	require.NoError(t, os.WriteFile(cp, js, 0o644))
	out, err := exec.Command(pythonTorch, "../hf/testdata/hf_reference.py", "make", cp, root).CombinedOutput()
	require.NoError(t, err, "the PyTorch reference (python3-torch is installed by make setup): %s", out)
	dir := filepath.Join(root, "qwen2small", "bf16")
	f, err := os.Open("../data/tokenize/testdata/hf/hlbpe.tokenizer.json.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644))
	return dir
}

// TestImportFinetuneExportReimport is the paper's main path on a small
// model: import a Hugging Face checkpoint, insert codebooks and finetune it
// with recipes/codebook-hf.yaml, export the result, re-import it. The
// re-imported weights equal the finetuned base model's exactly, the
// codebooks are in the side file, and nothing is written where an import
// or export fails.
func TestImportFinetuneExportReimport(t *testing.T) {
	baseline := torch.LiveTensors()
	t.Cleanup(func() { require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after the test's runs") })
	root := t.TempDir()
	src := hfModel(t, root)
	imported := filepath.Join(root, "imported")
	require.NoError(t, hfio.Import(src, imported, hfio.Options{Corpus: "../third_party/tinystories/valid_first1000.txt", Context: 32}))
	require.FileExists(t, filepath.Join(imported, hfio.BaseFile))
	require.Error(t, hfio.Import(src, imported, hfio.Options{}), "an existing run is not overwritten")

	// Insert codebooks and finetune a few steps.
	run := filepath.Join(root, "cb")
	_, err := runner.Run(runner.Options{Recipe: "codebook-hf.yaml", RecipesDir: "../recipes", ConfigsDir: imported,
		Overrides: []string{"train.init_from=" + imported, "output.dir=" + run, "train.steps=3", "train.batch=4",
			"train.eval_every=0", "train.threads=1", "model.codebook.kmeans_init=1", "model.codebook.codes=32",
			"data.text.train=../third_party/tinystories/valid_first1000.txt", "data.text.valid=''",
			"data.text.context=32", "data.text.valid_tokens=512", "eval.samples=0", "output.progress=false"}})
	require.NoError(t, err)
	s, err := rundir.ReadSummary(run)
	require.NoError(t, err)
	require.Equal(t, rundir.StatusCompleted, s.Status)
	require.Equal(t, "codebook", s.Family)

	// Export, then import the export again.
	out := filepath.Join(root, "exported")
	notes, err := hfio.Export(run, out, torch.Float32)
	require.NoError(t, err)
	require.Len(t, notes, 1)
	require.Contains(t, notes[0], "codebook tensors")
	for _, f := range []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", hfio.ExtraFile} {
		require.FileExists(t, filepath.Join(out, f))
	}
	_, err = hfio.Export(run, out, torch.Float32)
	require.ErrorContains(t, err, "not empty")
	again := filepath.Join(root, "reimported")
	require.NoError(t, hfio.Import(out, again, hfio.Options{Corpus: "../third_party/tinystories/valid_first1000.txt", Context: 32}))

	// The re-imported weights are the finetuned run's base weights.
	fine, err := checkpoint.ReadSafetensors(filepath.Join(run, "checkpoints", "step-000000003", checkpoint.ModelFile))
	require.NoError(t, err)
	defer fine.Close()
	back, err := checkpoint.ReadSafetensors(filepath.Join(again, "checkpoints", "step-000000000", checkpoint.ModelFile))
	require.NoError(t, err)
	defer back.Close()
	require.NotEmpty(t, back.Tensors)
	torch.RunLocked(func() {
		for name, w := range back.Tensors {
			f, ok := fine.Tensors[name]
			require.True(t, ok, name)
			require.Equal(t, f.Float32s(), w.Float32s(), name)
		}
	})
	// The codebooks are the side file's only tensors.
	extra, err := checkpoint.ReadSafetensors(filepath.Join(out, hfio.ExtraFile))
	require.NoError(t, err)
	defer extra.Close()
	require.Equal(t, len(fine.Tensors)-len(back.Tensors), len(extra.Tensors))
}

// TestImportErrors: bad inputs name the file and the field, and leave
// nothing behind.
func TestImportErrors(t *testing.T) {
	root := t.TempDir()
	src := hfModel(t, root)
	for _, c := range []struct {
		name  string
		edit  func(dir string)
		wants string
	}{
		{"unknown model_type", func(d string) { patchJSON(t, filepath.Join(d, "config.json"), "model_type", "mamba") }, `unknown model_type "mamba"`},
		{"no tokenizer", func(d string) { os.Remove(filepath.Join(d, "tokenizer.json")) }, "tokenizer.json"},
		{"unsupported tokenizer", func(d string) {
			os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte(`{"version":"1.0","model":{"type":"WordPiece","vocab":{}}}`), 0o644)
		}, "WordPiece"},
		{"truncated weights", func(d string) {
			p := filepath.Join(d, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:100], 0o644)
		}, "model.safetensors"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
			c.edit(dir)
			dst := filepath.Join(t.TempDir(), "run")
			err := hfio.Import(dir, dst, hfio.Options{})
			require.ErrorContains(t, err, c.wants)
			_, statErr := os.Stat(dst)
			require.True(t, os.IsNotExist(statErr), "nothing is written on failure")
		})
	}
}

func patchJSON(t *testing.T, path, key string, v any) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m[key] = v
	b, _ = json.Marshal(m)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}
