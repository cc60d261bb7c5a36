package checkpoint_test

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
	"github.com/stretchr/testify/require"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	path := filepath.Join(t.TempDir(), "t.safetensors")
	in := map[string]*torch.Tensor{
		"f32":    torch.Randn([]int{3, 4}),
		"bf16":   torch.Randn([]int{5}).To(torch.BFloat16),
		"i64":    torch.Arange(0, 6, 1).View(2, 3),
		"bool":   torch.FromSlice([]bool{true, false, true}, nil),
		"scalar": torch.Scalar(2.5),
		"empty":  torch.Zeros([]int{0, 4}),
	}
	require.NoError(t, checkpoint.WriteSafetensors(path, in, map[string]string{"note": "x"}))
	f, err := checkpoint.ReadSafetensors(path)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, "x", f.Metadata["note"])
	require.Len(t, f.Tensors, len(in))
	for name, want := range in {
		got := f.Tensors[name]
		require.Equal(t, want.DType(), got.DType(), name)
		require.Equal(t, want.Shape(), got.Shape(), name)
		require.Equal(t, want.Bytes(), got.Bytes(), "%s is bit-exact", name)
	}

	// The layout is the published format: u64 header length, JSON, 8-byte alignment.
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(raw[:8])
	require.Zero(t, n%8)
	var header map[string]any
	require.NoError(t, json.Unmarshal(raw[8:8+n], &header))
	require.Equal(t, map[string]any{"dtype": "I64", "shape": []any{2.0, 3.0}, "data_offsets": header["i64"].(map[string]any)["data_offsets"]}, header["i64"])
}

func TestSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	s := torch.NewScope()
	defer s.Close()
	good := filepath.Join(dir, "good.safetensors")
	require.NoError(t, checkpoint.WriteSafetensors(good, map[string]*torch.Tensor{"w": torch.Ones([]int{64})}, nil))
	raw, _ := os.ReadFile(good)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"truncated data", "outside the", raw[:len(raw)-10]},
		{"truncated header", "exceeds the file", raw[:20]},
		{"tiny", "too short", raw[:4]},
		{"not json", "header", append(append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, []byte("not json")...), 0)},
	}
	for _, c := range cases {
		_, err := checkpoint.ReadSafetensors(write(c.name, c.data))
		require.ErrorContains(t, err, c.want, c.name)
		require.ErrorContains(t, err, c.name, "the error names the file")
	}
	hdr := []byte(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`)
	bad := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	bad = append(append(bad, hdr...), make([]byte, 8)...)
	_, err := checkpoint.ReadSafetensors(write("size mismatch", bad))
	require.ErrorContains(t, err, "tensor w: 8 data bytes, shape [3] of F32 needs 12")
	_, err = checkpoint.ReadSafetensors(filepath.Join(dir, "absent"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func model(t *testing.T, seed uint64, width int) (*nn.GPT, *optim.AdamW) {
	torch.ManualSeed(seed)
	m, err := nn.NewGPT(nn.GPTConfig{Vocab: 16, Context: 8, Width: width, Layers: 1, Heads: 2})
	require.NoError(t, err)
	opt, err := optim.NewAdamW(&optim.Group{Params: m.Store.Params(), LR: 1e-2})
	require.NoError(t, err)
	t.Cleanup(func() { opt.Close(); m.Close() })
	return m, opt
}

func train(m *nn.GPT, opt optim.Optimizer, steps int) {
	for i := 0; i < steps; i++ {
		torch.WithScope(func() {
			ids := torch.RandInt(0, 16, []int{2, 8})
			loss := nn.LMLoss(m.Forward(ids, nil), ids, -100)
			m.Store.ZeroGrad(true)
			loss.Backward()
			opt.Step(1)
		})
	}
}

// TestCheckpointRoundTrip: weights, optimizer state and RNG come back bit
// for bit, so training continues exactly as without the interruption.
func TestCheckpointRoundTrip(t *testing.T) {
	root := t.TempDir()
	a, optA := model(t, 1, 16)
	train(a, optA, 3)
	dir, err := checkpoint.Save(root, a.Store, optA, checkpoint.State{Step: 3, Extra: map[string]json.RawMessage{"tokens": json.RawMessage("1234")}}, 2)
	require.NoError(t, err)
	train(a, optA, 2) // continues from the checkpoint: uses the same RNG draws as b below

	b, optB := model(t, 99, 16)
	latest, err := checkpoint.Latest(root)
	require.NoError(t, err)
	require.Equal(t, dir, latest)
	st, err := checkpoint.Load(latest, b.Store, optB, nn.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(3), st.Step)
	require.Equal(t, int64(3), optB.Steps())
	require.JSONEq(t, "1234", string(st.Extra["tokens"]))
	train(b, optB, 2)
	for _, p := range a.Store.StateDict() {
		torch.WithScope(func() {
			require.Equal(t, p.T.Bytes(), b.Store.Get(p.Name).T.Bytes(), "%s after resume", p.Name)
		})
	}
}

func TestCheckpointMismatchAndFailure(t *testing.T) {
	root := t.TempDir()
	a, optA := model(t, 1, 16)
	_, err := checkpoint.Save(root, a.Store, optA, checkpoint.State{Step: 1}, 0)
	require.NoError(t, err)

	// A model of another shape names what differs.
	c, optC := model(t, 1, 8)
	dir, _ := checkpoint.Latest(root)
	_, err = checkpoint.Load(dir, c.Store, optC, nn.LoadOptions{})
	require.ErrorContains(t, err, "model.safetensors")
	require.ErrorContains(t, err, "wte.weight: shape [16 16], model has [16 8]")

	// A truncated weights file is reported, not loaded.
	w := filepath.Join(dir, checkpoint.ModelFile)
	raw, _ := os.ReadFile(w)
	require.NoError(t, os.WriteFile(w, raw[:len(raw)/2], 0o644))
	_, err = checkpoint.Load(dir, a.Store, optA, nn.LoadOptions{})
	require.ErrorContains(t, err, "does not match")
	err = checkpoint.LoadWeights(w, a.Store, nn.LoadOptions{}) // no state to verify against
	require.ErrorContains(t, err, "truncated")
	require.NoError(t, os.WriteFile(w, raw, 0o644))

	// A failed save leaves the previous checkpoint as the latest, and no debris.
	_, err = checkpoint.Save(root, a.Store, optA, checkpoint.State{Step: 2}, 0)
	require.NoError(t, err)
	broken, optBroken := model(t, 1, 16)
	broken.Store.Get("wte.weight").T.Free()
	_, err = checkpoint.Save(root, broken.Store, optBroken, checkpoint.State{Step: 3}, 0)
	require.Error(t, err)
	latest, err := checkpoint.Latest(root)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "step-000000002"), latest)
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{"latest", "step-000000001", "step-000000002"}, names)

	// Pruning keeps the newest.
	_, err = checkpoint.Save(root, a.Store, optA, checkpoint.State{Step: 4}, 2)
	require.NoError(t, err)
	entries, _ = os.ReadDir(root)
	require.Len(t, entries, 3)
	_, err = checkpoint.Latest(t.TempDir())
	require.ErrorIs(t, err, checkpoint.ErrNoCheckpoint)
}
