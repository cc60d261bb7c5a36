package capi

/*
#include <stdlib.h>
#include "hlshim.h"
#include "hlcapi.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// ShimDirEnv names the environment variable that selects the directory of
// the shim to load (e.g. build/cuda for the CUDA build), instead of the search.
const ShimDirEnv = "HIDDENLAB_SHIM_DIR"

// ShimName is the shim's file name and soname.
const ShimName = "libhlshim.so.1"

// sourceShimDir is the shim directory of the source tree the package was
// built from, searched after the executable's directories. Empty: build/cpu
// of this file's compile-time location (none under -trimpath); "none": no
// such directory. A build can set it with
// -ldflags "-X github.com/hiddenlab/hiddenlab/torch/internal/capi.sourceShimDir=<dir>".
var sourceShimDir string

var (
	loadOnce sync.Once
	loadErr  error
	loaded   string
)

// Load finds libhlshim.so.1, loads it (with its libtorch) and binds every
// entry point of the package to it; later calls return the first call's
// result. The search:
//
//  1. $HIDDENLAB_SHIM_DIR/libhlshim.so.1 when the variable is set, and
//     nothing else: an unloadable file there is an error, naming the
//     variable and the path;
//  2. next to the executable: <exe dir>/libhlshim.so.1, then
//     <exe dir>/../lib/hiddenlab/libhlshim.so.1 (the make install layout);
//  3. build/cpu of the source tree the binary was built from (so go test and
//     go run work in the repository);
//  4. the dynamic linker's own search for the soname (LD_LIBRARY_PATH,
//     ld.so.cache, the system directories).
//
// The first file found is loaded; if it cannot be loaded, or its ABI version
// (ABIVersion) differs from HeaderABIVersion, Load reports that instead of
// trying the next. When nothing is found the error lists every place
// searched. Until Load succeeds, every other function of the package prints
// that error and exits the process with status 1.
func Load() error {
	loadOnce.Do(func() {
		if loadErr = checkSIMD(); loadErr == nil {
			loaded, loadErr = load()
		}
		if loadErr != nil {
			msg := C.CString(loadErr.Error())
			C.hlcapi_set_error(msg)
			C.free(unsafe.Pointer(msg))
		}
	})
	return loadErr
}

// SIMDEnv names the variable that caps the shim's own kernels' instruction
// sets (read by the shim itself, once: hl::simd_avx2 and hl::simd_avx512).
const SIMDEnv = "HIDDENLAB_SIMD"

// checkSIMD refuses a HIDDENLAB_SIMD other than the four levels the shim
// knows, before the shim could read it.
func checkSIMD() error {
	switch v := os.Getenv(SIMDEnv); v {
	case "", "avx512", "avx512f", "avx2", "generic":
		return nil
	default:
		return fmt.Errorf("environment: %s=%q: want avx512, avx512f, avx2 or generic", SIMDEnv, v)
	}
}

// Path reports the file Load loaded ("" before a successful Load).
func Path() string {
	if Load() != nil {
		return ""
	}
	return loaded
}

func load() (string, error) {
	if dir := os.Getenv(ShimDirEnv); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %v", ShimDirEnv, dir, err)
		}
		path := filepath.Join(abs, ShimName)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%s=%s: no shim at %s (%v); point it at a directory that holds %s (make shim builds one into build/cpu, make shim-cuda into build/cuda) or unset it to search next to the executable",
				ShimDirEnv, dir, path, statReason(err), ShimName)
		}
		file, err := open(path)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", ShimDirEnv, dir, err)
		}
		return file, nil
	}
	var tried []string
	for _, path := range searchPath() {
		if _, err := os.Stat(path); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%s)", path, statReason(err)))
			continue
		}
		file, err := open(path)
		if err != nil {
			return "", fmt.Errorf("%w; set %s to the directory of a working build", err, ShimDirEnv)
		}
		return file, nil
	}
	file, err := open(ShimName)
	if err == nil {
		return file, nil
	}
	var oe *openError
	if !errors.As(err, &oe) || !strings.HasPrefix(oe.reason, "cannot open shared object file") {
		return "", fmt.Errorf("%w; set %s to the directory of a working build", err, ShimDirEnv)
	}
	tried = append(tried, ShimName+" on the dynamic linker's path (LD_LIBRARY_PATH, ld.so.cache, system directories)")
	return "", fmt.Errorf("cannot find the shim %s; searched:\n  %s\nset %s to the directory that holds it, "+
		"install it next to the binary (make install puts it in <prefix>/lib/hiddenlab), or build it (make shim)",
		ShimName, strings.Join(tried, "\n  "), ShimDirEnv)
}

// searchPath lists the places of steps 2 and 3 of Load's search.
func searchPath() []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		dirs = append(dirs, dir, filepath.Join(dir, "..", "lib", "hiddenlab"))
	}
	if dir := sourceDir(); dir != "" {
		dirs = append(dirs, dir)
	}
	var paths []string
	seen := map[string]bool{}
	for _, d := range dirs {
		p := filepath.Join(d, ShimName)
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	return paths
}

// sourceDir is step 3's directory, or "".
func sourceDir() string {
	switch sourceShimDir {
	case "none":
		return ""
	case "":
		_, file, _, ok := runtime.Caller(0)
		if !ok || !filepath.IsAbs(file) {
			return ""
		}
		return filepath.Join(filepath.Dir(file), "..", "..", "..", "build", "cpu")
	default:
		return sourceShimDir
	}
}

func statReason(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "not found"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// openError is a failed dlopen: reason is dlerror's message.
type openError struct {
	path, reason string
}

func (e *openError) Error() string { return "cannot load " + e.path + ": " + e.reason }

// open loads one candidate and binds the trampolines to it, returning the
// loaded file's path.
func open(path string) (string, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var abi C.int32_t
	var msg, file [4096]C.char
	switch C.hlcapi_load(cpath, &abi, &msg[0], C.size_t(len(msg)), &file[0], C.size_t(len(file))) {
	case C.HLCAPI_OK:
		return C.GoString(&file[0]), nil
	case C.HLCAPI_ERR_OPEN:
		return "", &openError{path: path, reason: strings.TrimPrefix(C.GoString(&msg[0]), path+": ")}
	case C.HLCAPI_ERR_SYMBOL:
		return "", fmt.Errorf("%s lacks the entry point %s: it is older than this binary's header; rebuild it (make shim)",
			C.GoString(&file[0]), C.GoString(&msg[0]))
	case C.HLCAPI_ERR_ABI:
		return "", fmt.Errorf("%s has ABI version %d, this binary was built for %d: rebuild the shim (make shim) or point %s at a matching build",
			C.GoString(&file[0]), int(abi), HeaderABIVersion, ShimDirEnv)
	default:
		return "", fmt.Errorf("cannot load %s", path)
	}
}
