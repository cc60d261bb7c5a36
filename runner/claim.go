package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hiddenlab/hiddenlab/rundir"
)

// LockFile is the lock a run holds on its directory for its whole life.
const LockFile = ".lock"

// ErrBusy reports a run directory locked by another live process.
var ErrBusy = errors.New("run directory in use")

// claim makes dir this run's: it takes an exclusive lock on dir/.lock (held
// until the returned function is called or the process dies), and for a
// fresh run refuses a directory that already holds a run unless force, in
// which case the old run is removed first.
func claim(dir string, resume, force bool) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	if resume {
		return unlock, nil
	}
	if has := existingRun(dir); has != "" {
		if !force {
			unlock()
			return nil, fmt.Errorf("%s already holds a run (%s): resume it with -resume %s, or start over with -force", dir, has, dir)
		}
		if err := clearRun(dir); err != nil {
			unlock()
			return nil, fmt.Errorf("-force: clearing %s: %w", dir, err)
		}
	}
	return unlock, nil
}

// lockDir takes the lock without waiting; the file records the holder's pid
// for the message another process gets.
func lockDir(dir string) (func(), error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, busy(dir)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// busy is the ErrBusy error for dir, naming the pid its lock file records.
func busy(dir string) error {
	b, _ := os.ReadFile(filepath.Join(dir, LockFile))
	holder := strings.TrimSpace(string(b))
	if holder == "" {
		holder = "another process"
	} else {
		holder = "pid " + holder
	}
	return fmt.Errorf("%s: %w by %s (a run, resume or sweep worker is still running there)", dir, ErrBusy, holder)
}

// CheckFree returns an ErrBusy error naming the holder when a live process
// holds dir's run lock, and nil otherwise (also when dir or its lock file
// does not exist). It leaves the directory as it is: for tools, such as the
// sweep, that must not touch a directory in use.
func CheckFree(dir string) error {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		return nil // never locked (or unreadable: the run's own claim decides)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return busy(dir)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return nil
}

// existingRun names what makes dir a run directory already ("" if nothing):
// a recipe, checkpoints or metrics. (A summary alone is a run that failed
// before its first step, a bad eval value say: nothing to lose, and the
// corrected rerun may have the directory.)
func existingRun(dir string) string {
	for _, name := range []string{rundir.RecipeFile, rundir.CheckpointDir, rundir.MetricsFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return name
		}
	}
	return ""
}

// clearRun removes everything in dir but the lock.
func clearRun(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == LockFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
