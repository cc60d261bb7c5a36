package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// File names inside a checkpoint directory.
const (
	ModelFile     = "model.safetensors"
	OptimizerFile = "optimizer.safetensors"
	StateFile     = "state.json"
	latestFile    = "latest"
)

// State is the non-tensor part of a checkpoint.
type State struct {
	Step int64  `json:"step"` // optimizer steps taken
	RNG  []byte `json:"rng"`  // libtorch's CPU generator state
	// Extra holds the caller's state (data position, best metric, ...).
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
	// SHA256 is the hex SHA-256 of each tensor file of the checkpoint,
	// checked before anything is loaded from it.
	SHA256 map[string]string `json:"sha256,omitempty"`
}

// Save writes a checkpoint of model, opt (may be nil) and st as
// root/step-<Step>/ with the SHA-256 of its files in its state, then
// atomically points root/latest at it, and removes older checkpoints beyond
// the newest keep up to this step (keep ≤ 0 keeps all) — never this one nor
// any of a later step. If anything fails, the previous checkpoint stays
// the latest. Saving a step that already exists swaps the new copy in with
// one atomic rename (RENAME_EXCHANGE) before the old copy is removed, so no
// kill leaves latest pointing at nothing.
func Save(root string, model *nn.Store, opt optim.Optimizer, st State, keep int) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	name := fmt.Sprintf("step-%09d", st.Step)
	dir := filepath.Join(root, name)
	tmp, err := os.MkdirTemp(root, "."+name+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up on failure
	if err := WriteSafetensors(filepath.Join(tmp, ModelFile), stateDict(model), map[string]string{"format": "pt"}); err != nil {
		return "", err
	}
	if opt != nil {
		meta := map[string]string{"steps": strconv.FormatInt(opt.Steps(), 10)}
		if err := WriteSafetensors(filepath.Join(tmp, OptimizerFile), opt.State(), meta); err != nil {
			return "", err
		}
	}
	if st.RNG == nil {
		rng := torch.RNGState()
		st.RNG = rng.Bytes()
		rng.Free()
	}
	st.SHA256 = map[string]string{}
	for _, f := range []string{ModelFile, OptimizerFile} {
		if _, err := os.Stat(filepath.Join(tmp, f)); err != nil {
			continue
		}
		sum, err := fileSHA256(filepath.Join(tmp, f))
		if err != nil {
			return "", err
		}
		st.SHA256[f] = sum
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicio.WriteFile(filepath.Join(tmp, StateFile), js, 0o644); err != nil {
		return "", err
	}
	if testHookBeforeInstall != nil {
		testHookBeforeInstall(dir)
	}
	if err := installDir(tmp, dir); err != nil {
		return "", err
	}
	if testHookAfterInstall != nil {
		testHookAfterInstall(dir)
	}
	if err := atomicio.WriteFile(filepath.Join(root, latestFile), []byte(name+"\n"), 0o644); err != nil {
		return "", err
	}
	if keep > 0 {
		prune(root, keep, st.Step)
	}
	return dir, nil
}

func stateDict(s *nn.Store) map[string]*torch.Tensor {
	out := map[string]*torch.Tensor{}
	for _, p := range s.StateDict() {
		out[p.Name] = p.T
	}
	return out
}

// Load verifies the checkpoint in dir (Verify) and restores model (names,
// shapes and dtypes checked as nn.LoadStateDict does), opt when non-nil, and the RNG state from the checkpoint in dir.
func Load(dir string, model *nn.Store, opt optim.Optimizer, o nn.LoadOptions) (State, error) {
	st, err := Verify(dir)
	if err != nil {
		return st, err
	}
	if err := LoadWeights(filepath.Join(dir, ModelFile), model, o); err != nil {
		return st, err
	}
	if opt != nil {
		f, err := ReadSafetensors(filepath.Join(dir, OptimizerFile))
		if err != nil {
			return st, err
		}
		defer f.Close()
		steps, err := strconv.ParseInt(f.Metadata["steps"], 10, 64)
		if err != nil {
			return st, fmt.Errorf("%s: bad steps metadata %q", filepath.Join(dir, OptimizerFile), f.Metadata["steps"])
		}
		if err := opt.LoadState(f.Tensors, steps); err != nil {
			return st, fmt.Errorf("%s: %w", filepath.Join(dir, OptimizerFile), err)
		}
	}
	if len(st.RNG) > 0 {
		var terr error
		torch.WithScope(func() {
			terr = torch.Try(func() { torch.SetRNGState(torch.FromBytes(st.RNG, torch.Uint8, []int{len(st.RNG)})) })
		})
		if terr != nil {
			return st, fmt.Errorf("%s: rng state: %w", filepath.Join(dir, StateFile), terr)
		}
	}
	return st, nil
}

// LoadWeights copies the tensors of a safetensors file into model.
func LoadWeights(path string, model *nn.Store, o nn.LoadOptions) error {
	f, err := ReadSafetensors(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := model.LoadStateDict(f.Tensors, o); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
