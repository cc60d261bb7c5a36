package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoCheckpoint reports that a directory holds no checkpoint at all.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Test hooks: testHookBeforeInstall runs when a step's files are complete in
// their temporary directory, testHookAfterInstall after the step directory
// is in place and before latest is switched to it. A kill at either point
// must leave a resumable run.
var testHookBeforeInstall, testHookAfterInstall func(dir string)

// SetTestHook installs f (nil: none) to run inside every Save at stage
// "before-install" (the step's files are written in a temporary directory)
// or "after-install" (the step directory is in place, latest not yet
// switched), with the step directory's path. It exists for tests that kill
// a process inside a checkpoint write; programs never call it.
func SetTestHook(stage string, f func(dir string)) {
	switch stage {
	case "before-install":
		testHookBeforeInstall = f
	case "after-install":
		testHookAfterInstall = f
	default:
		panic("checkpoint.SetTestHook: unknown stage " + stage)
	}
}

// Latest returns the directory of root's newest verified checkpoint (see
// LatestVerified), without the notes.
func Latest(root string) (string, error) {
	dir, _, err := LatestVerified(root)
	return dir, err
}

// LatestVerified returns the checkpoint to resume from: the one root/latest
// names when it is complete and its files match their SHA-256; otherwise the
// newest step-* that verifies, with a note for each checkpoint passed over
// and why. A root with step-* directories of which none verifies is an
// error, never "no checkpoint": a run with checkpoints does not start over.
func LatestVerified(root string) (string, []string, error) {
	var notes []string
	name, err := readLatestName(root)
	switch {
	case err == nil:
		dir := filepath.Join(root, name)
		if _, verr := Verify(dir); verr == nil {
			return dir, nil, nil
		} else {
			notes = append(notes, fmt.Sprintf("latest names %s, which fails verification (%v)", name, verr))
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		notes = append(notes, err.Error())
	}
	steps, err := stepDirs(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", notes, err
	}
	if len(steps) == 0 {
		if len(notes) > 0 {
			return "", notes, fmt.Errorf("%s: %s, and no step-* directory is left", root, strings.Join(notes, "; "))
		}
		return "", nil, fmt.Errorf("%s: %w", root, ErrNoCheckpoint)
	}
	var bad []string
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		if s.name == name && len(notes) > 0 {
			continue // already found damaged
		}
		dir := filepath.Join(root, s.name)
		if _, verr := Verify(dir); verr != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", s.name, verr))
			notes = append(notes, fmt.Sprintf("skipping %s: %v", s.name, verr))
			continue
		}
		if name != s.name {
			notes = append(notes, fmt.Sprintf("falling back to %s, the newest checkpoint that verifies", s.name))
		}
		return dir, notes, nil
	}
	return "", notes, fmt.Errorf("%s: no checkpoint verifies (%s)", root, strings.Join(bad, "; "))
}

// readLatestName reads root/latest, which must hold a bare step name.
func readLatestName(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, latestFile))
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if _, ok := parseStep(name); !ok {
		return "", fmt.Errorf("%s: %q is not a step name (step-<number>)", filepath.Join(root, latestFile), name)
	}
	return name, nil
}

// Verify checks that the checkpoint in dir is complete and that each file
// matches the SHA-256 its state recorded, and returns the state.
// (Checkpoints written before hashes were recorded are checked for
// completeness only.)
func Verify(dir string) (State, error) {
	var st State
	path := filepath.Join(dir, StateFile)
	js, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("incomplete: %w", err)
	}
	if err := json.Unmarshal(js, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ModelFile)); err != nil {
		return st, fmt.Errorf("incomplete: %w", err)
	}
	for file, want := range st.SHA256 {
		if file != ModelFile && file != OptimizerFile {
			return st, fmt.Errorf("%s: sha256 lists %q, not a checkpoint file", path, file)
		}
		got, err := fileSHA256(filepath.Join(dir, file))
		if err != nil {
			return st, err
		}
		if got != want {
			return st, fmt.Errorf("%s: SHA-256 %s… does not match the %s… recorded in %s (the file is damaged)",
				filepath.Join(dir, file), got[:12], want[:min(12, len(want))], StateFile)
		}
	}
	return st, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type stepDir struct {
	name string
	step int64
}

// stepDirs lists root's step-* directories by step, oldest first.
func stepDirs(root string) ([]stepDir, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []stepDir
	for _, e := range entries {
		if n, ok := parseStep(e.Name()); ok && e.IsDir() {
			out = append(out, stepDir{e.Name(), n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].step < out[j].step })
	return out, nil
}

func parseStep(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "step-")
	if !ok || rest == "" || strings.ContainsAny(rest, "/\\") {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n >= 0
}

// installDir moves the finished tmp directory to dir. If dir exists (the
// same step saved again), the two are exchanged atomically and the old copy,
// now at tmp, is removed by the caller's cleanup.
func installDir(tmp, dir string) error {
	err := os.Rename(tmp, dir)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(dir); serr != nil {
		return err
	}
	if xerr := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); xerr == nil {
		return nil
	}
	// No RENAME_EXCHANGE (an old kernel or a filesystem without it): move the
	// old copy aside first; latest still names the step, and LatestVerified
	// falls back to the newest intact step if a kill lands in between.
	aside := dir + ".old"
	os.RemoveAll(aside)
	if err := os.Rename(dir, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(aside, dir)
		return err
	}
	return os.RemoveAll(aside)
}

// prune removes the oldest step-* directories so that keep remain among
// those up to step current (the one just written, which latest now names,
// is the newest of them), never touching one of a later step (left by a
// run that fell back to an older checkpoint, or by an earlier, longer run):
// a checkpoint of a later step sorts as newer, but it is not this run's.
func prune(root string, keep int, current int64) {
	steps, err := stepDirs(root)
	if err != nil {
		return
	}
	kept := 0
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		if s.step > current {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		os.RemoveAll(filepath.Join(root, s.name))
	}
}

// CleanStale removes the temporary directories and files of checkpoint
// writes that never finished (a kill during Save). Call it only while no Save runs in
// root (the engine does at start-up, holding the run's lock).
func CleanStale(root string) error {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		stale := strings.HasPrefix(name, ".step-") && strings.Contains(name, ".tmp-") || // a step being written
			strings.HasPrefix(name, "."+latestFile+".tmp-") || // latest being switched
			strings.HasPrefix(name, "step-") && strings.HasSuffix(name, ".old") // installDir's fallback
		if stale {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
