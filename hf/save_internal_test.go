package hf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// TestSaveLeavesNothingOnFailure: a save that fails after some files are
// written leaves neither the target nor its temporary directory.
func TestSaveLeavesNothingOnFailure(t *testing.T) {
	cfg := nn.GPTConfig{Vocab: 16, Context: 8, Width: 8, Layers: 2, Heads: 2, TiedHead: true}
	m, err := nn.NewGPT(cfg)
	require.NoError(t, err)
	defer m.Close()
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	written := 0
	beforeWrite = func(file string) error {
		if written++; written == 2 {
			return errors.New("disk full (simulated)")
		}
		return nil
	}
	defer func() { beforeWrite = nil }()
	err = Save(dir, GPT2, m.Config, m.Store, SaveOptions{MaxShardBytes: 2000})
	require.ErrorContains(t, err, "disk full")
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing half-written")
}
