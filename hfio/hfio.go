// Package hfio moves models between Hugging Face model directories and
// hiddenlab run directories, on top of package hf (weights and configs) and
// data/tokenize (tokenizer.json):
//
//	hiddenlab import hf <hf dir> <run dir>    Import
//	hiddenlab export hf <run dir> <hf dir>    Export
//
// An imported run is an ordinary run directory of the gpt family — a
// resolved recipe whose model section expresses the architecture, a
// step-0 checkpoint, the model's tokenizer.json, a summary — so every
// command that reads runs accepts it, and recipes start from it with
// train.init_from: <run dir> (or directly from the HF directory with
// train.init_from: hf:<dir>). Its data section names the model's own
// tokenizer (data.text.tokenizer: file) and a corpus (Options.Corpus), to
// be overridden by the recipe that trains from it. It also holds BaseFile,
// the model section and the tokenizer settings alone, for recipes to
// compose with: `base: base.yaml` and `hiddenlab run <recipe> --configs
// <run dir>` (see recipes/codebook-hf.yaml).
//
// Export writes the base GPT under HF's names and layouts (hf.Save) with
// config.json, generation_config.json, tokenizer.json and
// tokenizer_config.json. Families that add modules to the GPT (the codebook
// family's codebooks) have those tensors written, under hiddenlab's own
// names, to hiddenlab_extra.safetensors beside the HF files, and the export
// says so: transformers loads the base model and ignores that file. Families
// whose model is not an nn.GPT (MoHD's routed blocks) have no HF
// architecture and are refused.
package hfio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/data/tokenize"
	"github.com/hiddenlab/hiddenlab/hf"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/models/gpt"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// ExtraFile holds the tensors of an exported model that its HF architecture
// has no place for (e.g. codebooks), under hiddenlab's parameter names.
const ExtraFile = "hiddenlab_extra.safetensors"

// BaseFile is the imported run's composable part: model section and tokenizer.
const BaseFile = "base.yaml"

// DefaultCorpus is the data an imported run's recipe names until a recipe
// that trains from it says otherwise.
const DefaultCorpus = "third_party/tinystories/train_sample_2MiB.txt"

// Options configure Import.
type Options struct {
	Corpus  string // data.text.train of the imported run (DefaultCorpus when empty)
	Context int    // data.text.context (min(model context, 256) when 0)
	Force   bool   // replace dst if it exists
}

// Import makes run directory dst from the Hugging Face model directory src
// (config.json, model.safetensors or a sharded index, tokenizer.json). It
// is written under a temporary name and renamed into place at the end:
// a failure leaves nothing at dst.
func Import(src, dst string, o Options) error {
	cfg, typ, err := hf.ReadConfig(src)
	if err != nil {
		return err
	}
	tokPath := filepath.Join(src, tokenize.HFFileName)
	tok, err := tokenize.LoadHF(tokPath)
	if err != nil {
		return err
	}
	if tok.VocabSize() > cfg.Vocab {
		return fmt.Errorf("%s: the tokenizer has %d ids, more than config.json's vocab_size %d", tokPath, tok.VocabSize(), cfg.Vocab)
	}
	if err := checkTarget(dst, o.Force); err != nil {
		return err
	}
	if o.Corpus == "" {
		o.Corpus = DefaultCorpus
	}
	if o.Context == 0 {
		o.Context = min(cfg.Context, 256)
	}
	if o.Context > cfg.Context {
		return fmt.Errorf("context %d is longer than the model's %d", o.Context, cfg.Context)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dst)), "."+filepath.Base(dst)+".import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var params int
	var lerr, terr error
	torch.RunLocked(func() {
		terr = torch.Try(func() { params, lerr = loadAndSave(src, cfg, filepath.Join(tmp, rundir.CheckpointDir)) })
	})
	if terr != nil {
		return terr
	}
	if lerr != nil {
		return lerr
	}
	b, err := os.ReadFile(tokPath)
	if err != nil {
		return err
	}
	finalTok := filepath.Join(dst, tokenize.HFFileName)
	if err := os.WriteFile(filepath.Join(tmp, tokenize.HFFileName), b, 0o644); err != nil {
		return err
	}
	name := filepath.Base(filepath.Clean(dst))
	model := recipe.Encode(gpt.FromGPTConfig(cfg))
	res := map[string]any{
		"name":  name,
		"model": model,
		"data": map[string]any{"kind": "text", "text": map[string]any{
			"train": o.Corpus, "tokenizer": "file", "tokenizer_file": finalTok, "context": o.Context}},
		"train": map[string]any{"steps": 1},
	}
	y, err := recipe.Marshal(res)
	if err != nil {
		return err
	}
	by, err := recipe.Marshal(map[string]any{"model": model, "data": map[string]any{"kind": "text", "text": map[string]any{
		"tokenizer": "file", "tokenizer_file": finalTok}}})
	if err != nil {
		return err
	}
	bhead := fmt.Sprintf("# The %s model imported from %s: its architecture and tokenizer, for recipes to compose\n# with (base: %s, run with --configs %s); weights: train.init_from: %s.\n", typ, src, BaseFile, dst, dst)
	if err := os.WriteFile(filepath.Join(tmp, BaseFile), append([]byte(bhead), by...), 0o644); err != nil {
		return err
	}
	head := fmt.Sprintf("# Imported from the Hugging Face %s model in %s (hiddenlab import hf); not trained here.\n# Train from it with train.init_from: %s; the data section is a placeholder for that recipe to override.\n", typ, src, dst)
	if err := os.WriteFile(filepath.Join(tmp, rundir.RecipeFile), append([]byte(head), y...), 0o644); err != nil {
		return err
	}
	env := rundir.CurrentEnvironment("cpu", torch.NumThreads())
	if err := rundir.WriteJSON(filepath.Join(tmp, rundir.EnvFile), env); err != nil {
		return err
	}
	sum := rundir.Summary{Name: name, Family: "gpt", Status: rundir.StatusCompleted, Params: params,
		Extra: map[string]any{"imported_from": src, "hf_model_type": string(typ)}}
	if err := rundir.WriteJSON(filepath.Join(tmp, rundir.SummaryFile), sum); err != nil {
		return err
	}
	report := fmt.Sprintf("# %s: imported\n\nThe Hugging Face **%s** model in `%s` (%d parameters, %d layers, width %d, vocabulary %d, context %d), imported %s. Weights in `%s/`, tokenizer in `%s`.\n",
		name, typ, src, params, cfg.Layers, cfg.Width, cfg.Vocab, cfg.Context, time.Now().UTC().Format(time.RFC3339), rundir.CheckpointDir, tokenize.HFFileName)
	if err := os.WriteFile(filepath.Join(tmp, rundir.ReportFile), []byte(report), 0o644); err != nil {
		return err
	}
	if o.Force {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dst)
}

// loadAndSave builds the model of cfg, loads the HF weights of src into it
// and saves them as a step-0 checkpoint under root; it returns the number
// of parameters.
func loadAndSave(src string, cfg nn.GPTConfig, root string) (int, error) {
	g, err := nn.NewGPT(cfg)
	if err != nil {
		return 0, err
	}
	defer g.Close()
	if err := hf.LoadInto(src, g.Store); err != nil {
		return 0, err
	}
	_, err = checkpoint.Save(root, g.Store, nil, checkpoint.State{Step: 0}, 0)
	return g.Store.NumParams(nil), err
}

// checkTarget refuses an existing, non-empty dst unless force.
func checkTarget(dst string, force bool) error {
	entries, err := os.ReadDir(dst)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 && !force {
		return fmt.Errorf("%s exists and is not empty (use --force to replace it)", dst)
	}
	if len(entries) == 0 {
		return os.Remove(dst)
	}
	return nil
}

// Export writes the model of run directory dir (a gpt or codebook run,
// trained here or imported) as the Hugging Face model directory out, and
// returns the notes of what was written beyond the HF files.
func Export(dir, out string, dtype torch.DType) ([]string, error) {
	if err := checkTarget(out, false); err != nil {
		return nil, err
	}
	var notes []string
	var err, terr error
	torch.RunLocked(func() {
		terr = torch.Try(func() { notes, err = export(dir, out, dtype) })
	})
	if terr != nil {
		return nil, terr
	}
	return notes, err
}

func export(dir, out string, dtype torch.DType) ([]string, error) {
	run, err := rundir.Open(dir, rundir.OpenOptions{Device: torch.CPU})
	if err != nil {
		return nil, err
	}
	defer run.Close()
	x, ok := run.Experiment.(lm.Opened)
	if !ok {
		return nil, fmt.Errorf("%s: a %s run has no Hugging Face architecture (gpt and codebook runs do)", dir, run.Recipe.Family)
	}
	var model *nn.GPT
	switch m := x.LM().M.(type) {
	case *gpt.Model:
		model = m.GPT
	case *codebook.Model:
		model = m.GPT
	default:
		return nil, fmt.Errorf("%s: a %s model is not a GPT and has no Hugging Face architecture", dir, run.Recipe.Family)
	}
	typ, err := hf.TypeFor(model.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	// The base model's parameters; anything else in the store is the
	// family's addition.
	base, err := nn.NewGPT(model.Config)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	own := map[string]bool{}
	for _, p := range base.Store.StateDict() {
		own[p.Name] = true
	}
	extra := map[string]*torch.Tensor{}
	torch.NoGrad(func() {
		for _, p := range model.Store.StateDict() {
			if own[p.Name] {
				base.Store.Get(p.Name).T.CopyFrom(p.T)
			} else {
				extra[p.Name] = p.T
			}
		}
	})
	tmp := out + ".tmp-export"
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := hf.Save(tmp, typ, model.Config, base.Store, hf.SaveOptions{DType: dtype}); err != nil {
		return nil, err
	}
	var notes []string
	if len(extra) > 0 {
		names := make([]string, 0, len(extra))
		for n := range extra {
			names = append(names, n)
		}
		if err := checkpoint.WriteSafetensors(filepath.Join(tmp, ExtraFile), extra, map[string]string{"format": "pt", "hiddenlab_family": run.Recipe.Family}); err != nil {
			return nil, err
		}
		notes = append(notes, fmt.Sprintf("%d %s tensors that %s has no place for (e.g. %s) are in %s under hiddenlab's names", len(extra), run.Recipe.Family, typ, firstSorted(names), ExtraFile))
	}
	if tok := tokenizerOf(run); tok != nil {
		if err := tokenize.SaveHF(filepath.Join(tmp, tokenize.HFFileName), tok); err != nil {
			return nil, err
		}
		if err := tokenize.SaveHFConfig(filepath.Join(tmp, "tokenizer_config.json"), tok, model.Config.Context); err != nil {
			return nil, err
		}
	} else {
		notes = append(notes, "the run's data has no tokenizer file (a synthetic token set): no tokenizer.json written")
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return notes, nil
}

// tokenizerOf loads the run's tokenizer: its data section's file, or the
// one the run saved.
func tokenizerOf(run *rundir.Run) tokenize.Tokenizer {
	for _, p := range []string{filepath.Join(run.Dir, tokenize.HFFileName), filepath.Join(run.Dir, tokenize.FileName)} {
		if tok, err := tokenize.Load(p); err == nil {
			return tok
		}
	}
	return nil
}

func firstSorted(names []string) string {
	best := names[0]
	for _, n := range names {
		if strings.Compare(n, best) < 0 {
			best = n
		}
	}
	return best
}
