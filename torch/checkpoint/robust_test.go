package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// tinyStore is a one-parameter model whose weights record the step they
// were saved at, so a test can tell which checkpoint was loaded.
func tinyStore(t *testing.T) (*nn.Store, *torch.Tensor) {
	t.Helper()
	s := nn.NewStore()
	w := s.Root().Param("w", torch.Zeros([]int{64}))
	t.Cleanup(s.Close)
	return s, w
}

func stepName(n int) string { return fmt.Sprintf("step-%09d", n) }

// saveStep saves step n of s with its weights set to n.
func saveStep(t *testing.T, root string, s *nn.Store, w *torch.Tensor, n, keep int) string {
	t.Helper()
	w.Fill(float64(n))
	dir, err := Save(root, s, nil, State{Step: int64(n)}, keep)
	require.NoError(t, err)
	return dir
}

// loadedStep loads dir into a fresh store and returns the value its weights
// hold (the step saved there).
func loadedStep(t *testing.T, dir string) int {
	t.Helper()
	s, w := tinyStore(t)
	_, err := Load(dir, s, nil, nn.LoadOptions{})
	require.NoError(t, err)
	var v float64
	torch.WithScope(func() { v = w.Float64s()[0] })
	return int(v)
}

// steps lists the step-* directories of root by step.
func steps(t *testing.T, root string) []int {
	t.Helper()
	ds, err := stepDirs(root)
	require.NoError(t, err)
	var out []int
	for _, d := range ds {
		out = append(out, int(d.step))
	}
	return out
}

func latestName(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, latestFile))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// requireLatestExists: latest names a step directory that exists and
// verifies.
func requireLatestExists(t *testing.T, root string) {
	t.Helper()
	name := latestName(t, root)
	_, err := Verify(filepath.Join(root, name))
	require.NoError(t, err, "latest names %s", name)
}

// flipTensorBits flips bits in the last byte of a safetensors file's tensor
// data (leaving its header intact, so only the checksum can tell).
func flipTensorBits(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(b[:8])
	require.Greater(t, uint64(len(b)), 8+n, "the file has tensor data")
	b[len(b)-1] ^= 0x5a
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestPruneKeepsNewAndNewer: a 60-step run and then a 30-step run into the
// same checkpoint directory (as a run that fell back, or a directory nobody
// cleared) never prune the checkpoint just written, leave latest naming an
// existing step after every save, and keep keep_checkpoints of the steps up
// to the current one.
func TestPruneKeepsNewAndNewer(t *testing.T) {
	for _, keep := range []int{1, 2, 3, 0} {
		t.Run(fmt.Sprintf("keep=%d", keep), func(t *testing.T) {
			root := t.TempDir()
			s, w := tinyStore(t)
			for n := 10; n <= 60; n += 10 {
				saveStep(t, root, s, w, n, keep)
				requireLatestExists(t, root)
			}
			first := steps(t, root)
			if keep > 0 {
				require.Len(t, first, keep)
				require.Equal(t, 60, first[len(first)-1])
			} else {
				require.Equal(t, []int{10, 20, 30, 40, 50, 60}, first)
			}
			// The second, shorter run into the same directory.
			for n := 10; n <= 30; n += 10 {
				dir := saveStep(t, root, s, w, n, keep)
				require.DirExists(t, dir, "the checkpoint just written survives its own save")
				require.Equal(t, stepName(n), latestName(t, root))
				requireLatestExists(t, root)
				require.Equal(t, n, loadedStep(t, dir))
				var upToNow int
				for _, st := range steps(t, root) {
					if st <= n {
						upToNow++
					} else {
						require.Contains(t, first, st, "only the first run's newer steps are left above the current one")
					}
				}
				if keep > 0 {
					require.LessOrEqual(t, upToNow, keep, "keep_checkpoints")
				}
			}
			latest, err := Latest(root)
			require.NoError(t, err)
			require.Equal(t, filepath.Join(root, stepName(30)), latest)
		})
	}
}

// TestPruneAfterFallback: a run that resumed from an older checkpoint
// because the newest one was damaged keeps writing; pruning never deletes
// the new checkpoints nor any newer step, and re-saving the damaged step
// replaces it.
func TestPruneAfterFallback(t *testing.T) {
	root := t.TempDir()
	s, w := tinyStore(t)
	for n := 10; n <= 60; n += 10 {
		saveStep(t, root, s, w, n, 3)
	}
	require.Equal(t, []int{40, 50, 60}, steps(t, root))
	flipTensorBits(t, filepath.Join(root, stepName(60), ModelFile))
	dir, notes, err := LatestVerified(root)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, stepName(50)), dir)
	require.Equal(t, 50, loadedStep(t, dir))
	require.Contains(t, strings.Join(notes, "\n"), "falling back to "+stepName(50))

	// The resumed run saves 55 with keep 2: 40 goes, 50 and 55 stay, and the
	// damaged 60 is newer than the current step: left alone.
	saveStep(t, root, s, w, 55, 2)
	require.Equal(t, []int{50, 55, 60}, steps(t, root))
	require.Equal(t, stepName(55), latestName(t, root))
	requireLatestExists(t, root)
	// It reaches 60 again: the damaged copy is replaced.
	saveStep(t, root, s, w, 60, 2)
	require.Equal(t, []int{55, 60}, steps(t, root))
	requireLatestExists(t, root)
	require.Equal(t, 60, loadedStep(t, filepath.Join(root, stepName(60))))
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		require.False(t, strings.Contains(e.Name(), ".tmp-"), "no debris: %s", e.Name())
	}
}

// TestLatestVerifiedFallback: a damaged, missing, dangling or hostile
// latest, or damaged step directories, make LatestVerified fall back to the
// newest step-* that verifies and say why; a directory with step-* never
// reads as "no checkpoint".
func TestLatestVerifiedFallback(t *testing.T) {
	cases := []struct {
		name     string
		damage   func(t *testing.T, root string)
		want     int    // the step resumed from; 0: an error
		wantNote string // in the notes (or the error)
		noCkpt   bool   // the error is ErrNoCheckpoint
	}{
		{"intact", func(*testing.T, string) {}, 30, "", false},
		{"bits flipped in the newest weights", func(t *testing.T, root string) {
			flipTensorBits(t, filepath.Join(root, stepName(30), ModelFile))
		}, 20, "does not match", false},
		{"bits flipped in the newest optimizer state", func(t *testing.T, root string) {
			flipTensorBits(t, filepath.Join(root, stepName(30), OptimizerFile))
		}, 20, "optimizer.safetensors: SHA-256", false},
		{"newest truncated", func(t *testing.T, root string) {
			p := filepath.Join(root, stepName(30), ModelFile)
			b, _ := os.ReadFile(p)
			require.NoError(t, os.WriteFile(p, b[:len(b)/2], 0o644))
		}, 20, "does not match", false},
		{"newest state.json missing", func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, stepName(30), StateFile)))
		}, 20, "incomplete", false},
		{"newest state.json garbage", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, stepName(30), StateFile), []byte("{"), 0o644))
		}, 20, "state.json", false},
		{"latest deleted", func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, latestFile)))
		}, 30, "", false},
		{"latest deleted and newest damaged", func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, latestFile)))
			flipTensorBits(t, filepath.Join(root, stepName(30), ModelFile))
		}, 20, "skipping " + stepName(30), false},
		{"latest dangling", func(t *testing.T, root string) {
			require.NoError(t, os.RemoveAll(filepath.Join(root, stepName(30))))
		}, 20, "latest names " + stepName(30) + ", which fails verification", false},
		{"latest outside the run", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), []byte("../../../../etc\n"), 0o644))
		}, 30, `"../../../../etc" is not a step name`, false},
		{"latest a path", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), []byte("a/b"), 0o644))
		}, 30, `"a/b" is not a step name`, false},
		{"latest a step path", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), []byte("step-1/../../x"), 0o644))
		}, 30, "is not a step name", false},
		{"latest an absolute path", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), []byte(filepath.Join(root, stepName(20))), 0o644))
		}, 30, "is not a step name", false},
		{"latest empty", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), nil, 0o644))
		}, 30, `"" is not a step name`, false},
		{"latest names an older step", func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), []byte(stepName(20)+"\n"), 0o644))
		}, 20, "", false},
		{"state lists a file outside the checkpoint", func(t *testing.T, root string) {
			p := filepath.Join(root, stepName(30), StateFile)
			b, _ := os.ReadFile(p)
			b = []byte(strings.Replace(string(b), `"sha256": {`, `"sha256": {"../../../../etc/passwd": "00",`, 1))
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}, 20, "not a checkpoint file", false},
		{"every step damaged", func(t *testing.T, root string) {
			for _, n := range []int{10, 20, 30} {
				flipTensorBits(t, filepath.Join(root, stepName(n), ModelFile))
			}
		}, 0, "no checkpoint verifies", false},
		{"latest hostile, no step left", func(t *testing.T, root string) {
			for _, n := range []int{10, 20, 30} {
				require.NoError(t, os.RemoveAll(filepath.Join(root, stepName(n))))
			}
			require.NoError(t, os.WriteFile(filepath.Join(root, latestFile), []byte("../../etc"), 0o644))
		}, 0, "no step-* directory is left", false},
		{"nothing at all", func(t *testing.T, root string) {
			for _, n := range []int{10, 20, 30} {
				require.NoError(t, os.RemoveAll(filepath.Join(root, stepName(n))))
			}
			require.NoError(t, os.Remove(filepath.Join(root, latestFile)))
		}, 0, "no checkpoint", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s, w := tinyStore(t)
			opt := testOptimizer(t, s)
			for n := 10; n <= 30; n += 10 {
				w.Fill(float64(n))
				_, err := Save(root, s, opt, State{Step: int64(n)}, 0)
				require.NoError(t, err)
			}
			c.damage(t, root)
			dir, notes, err := LatestVerified(root)
			if c.want == 0 {
				require.Error(t, err)
				require.ErrorContains(t, err, c.wantNote)
				require.Equal(t, c.noCkpt, errors.Is(err, ErrNoCheckpoint), "ErrNoCheckpoint only when there is nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, filepath.Join(root, stepName(c.want)), dir)
			require.Equal(t, c.want, loadedStep(t, dir), "the checkpoint loaded is the verified one")
			joined := strings.Join(notes, "\n")
			require.Contains(t, joined, c.wantNote)
			if c.want != 30 && c.name != "latest names an older step" {
				require.Contains(t, joined, "falling back to "+stepName(c.want))
			}
			// Load refuses the damaged checkpoint itself.
			if c.want == 20 && c.name != "latest names an older step" {
				s2, _ := tinyStore(t)
				_, err := Load(filepath.Join(root, stepName(30)), s2, nil, nn.LoadOptions{})
				require.Error(t, err)
			}
		})
	}
}

// testOptimizer is an AdamW over s's parameters after one step, so that it
// has state to save.
func testOptimizer(t *testing.T, s *nn.Store) optim.Optimizer {
	t.Helper()
	opt, err := optim.NewAdamW(&optim.Group{Params: s.Params(), LR: 1e-2})
	require.NoError(t, err)
	t.Cleanup(func() { opt.Close() })
	torch.WithScope(func() {
		s.Params()[0].T.Square().Sum().Backward()
		opt.Step(1)
	})
	return opt
}

// TestKillInsideSave: a kill between installing a step directory and
// switching latest (simulated with the hook: the save stops there) leaves
// latest naming the previous, intact checkpoint; the next save of that step
// replaces the orphan atomically. Re-saving the step latest names keeps
// latest naming an intact checkpoint at every moment.
func TestKillInsideSave(t *testing.T) {
	root := t.TempDir()
	s, w := tinyStore(t)
	saveStep(t, root, s, w, 10, 2)
	saveStep(t, root, s, w, 20, 2)

	killed := fmt.Errorf("killed")
	saveKilled := func(n int, stage string) {
		t.Helper()
		hook := func(dir string) {
			require.Equal(t, filepath.Join(root, stepName(n)), dir)
			panic(killed)
		}
		if stage == "before-install" {
			testHookBeforeInstall = hook
		} else {
			testHookAfterInstall = hook
		}
		defer func() {
			testHookBeforeInstall, testHookAfterInstall = nil, nil
			require.Equal(t, killed, recover())
		}()
		saveStep(t, root, s, w, n, 2)
	}

	// A new step: installed, latest not switched.
	saveKilled(30, "after-install")
	require.Equal(t, stepName(20), latestName(t, root))
	requireLatestExists(t, root)
	dir, _, err := LatestVerified(root)
	require.NoError(t, err)
	require.Equal(t, 20, loadedStep(t, dir), "resume from the checkpoint latest names")
	// The resumed run saves 30 again: the orphan is exchanged for the new copy.
	saveStep(t, root, s, w, 30, 2)
	require.Equal(t, stepName(30), latestName(t, root))
	require.Equal(t, []int{20, 30}, steps(t, root))

	// Re-saving the step latest names: at the moment between the exchange and
	// the switch, latest names an intact checkpoint.
	testHookAfterInstall = func(dir string) {
		requireLatestExists(t, root)
		require.Equal(t, 31, loadedStep(t, filepath.Join(root, latestName(t, root))), "the new copy is in place")
	}
	w.Fill(31)
	_, err = Save(root, s, nil, State{Step: 30}, 2)
	testHookAfterInstall = nil
	require.NoError(t, err)
	// And killed there, the new copy stands.
	saveKilled(30, "after-install")
	requireLatestExists(t, root)
	require.Equal(t, 30, loadedStep(t, filepath.Join(root, stepName(30))))

	// Killed while writing: a finished temporary directory never installed.
	// (A real kill leaves it behind; make one as it would be.)
	saveKilled(40, "before-install")
	require.Equal(t, stepName(30), latestName(t, root))
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".step-000000040.tmp-123456", "x"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, ".step-000000040.tmp-123456", ModelFile), []byte("half"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, stepName(30)+".old"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, ".latest.tmp-42"), []byte("step-"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "notes.old"), []byte("mine"), 0o644))
	require.NoError(t, CleanStale(root))
	var names []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	require.Equal(t, []string{"latest", "notes.old", stepName(20), stepName(30)}, names, "stale temporaries removed, nothing else")
	require.NoError(t, CleanStale(filepath.Join(root, "absent")))
}
