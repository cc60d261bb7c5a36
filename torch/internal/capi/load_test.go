package capi

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoadedFromSourceTree: without HIDDENLAB_SHIM_DIR a test binary (which
// lives in a temporary directory) finds the shim in the source tree's build/cpu.
func TestLoadedFromSourceTree(t *testing.T) {
	if os.Getenv(ShimDirEnv) != "" {
		require.Equal(t, filepath.Join(absPath(t, os.Getenv(ShimDirEnv)), ShimName), Path())
		return
	}
	want := filepath.Join(absPath(t, filepath.Join(root, "build", "cpu")), ShimName)
	require.Equal(t, want, Path())
	require.NoError(t, Load(), "Load is idempotent")
}

func absPath(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

// goTool finds the go command of the toolchain running the test.
func goTool(t *testing.T) string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the probe binary")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func copyFile(t *testing.T, src, dst string) {
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// env is the test's environment without the variables that steer the
// search, plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, ShimDirEnv+"=") || strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, environ []string, exe string, args ...string) result {
	cmd := exec.Command(exe, args...)
	cmd.Env = environ
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("%s %v: exit %d\nstdout: %s\nstderr: %s", exe, args, r.code, r.stdout, r.stderr)
	return r
}

// TestRelocatedBinary builds a program on the torch package (testdata/hlprobe,
// which starts as the CLI does) without the source-tree fallback, checks that
// libhlshim is not among its DT_NEEDED libraries, and runs it from
// temporary layouts: installed by make install, next to the shim, through a
// symlink, with HIDDENLAB_SHIM_DIR right and wrong, and with no shim at all.
func TestRelocatedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	gocmd := goTool(t)
	shim, err := filepath.EvalSymlinks(Path())
	require.NoError(t, err)
	tmp := t.TempDir()

	probe := filepath.Join(tmp, "build", "hlprobe")
	build := exec.Command(gocmd, "build", "-o", probe,
		"-ldflags", "-X github.com/hiddenlab/hiddenlab/torch/internal/capi.sourceShimDir=none", "./testdata/hlprobe")
	build.Env = env()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	// Not linked: libhlshim is not in DT_NEEDED.
	if readelf, err := exec.LookPath("readelf"); err == nil {
		out, err := exec.Command(readelf, "-d", probe).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "(NEEDED)")
		require.NotContains(t, string(out), "libhlshim", "the binary must load the shim at run time, not link it")
	} else {
		t.Log("no readelf: DT_NEEDED not checked")
	}

	// make install's layout: <prefix>/bin/hiddenlab, <prefix>/lib/hiddenlab/libhlshim.so.1.
	prefix := filepath.Join(tmp, "prefix")
	installed := filepath.Join(prefix, "bin", "hiddenlab")
	installedShim := filepath.Join(prefix, "lib", "hiddenlab", ShimName)
	if mk, err := exec.LookPath("make"); err == nil {
		// -o bin: install this probe as it is instead of building bin/hiddenlab.
		cmd := exec.Command(mk, "-s", "install", "-o", "bin", "PREFIX="+prefix, "BIN="+probe, "BUILD="+filepath.Dir(Path()))
		cmd.Dir = root
		cmd.Env = env()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "make install: %s", out)
		target, err := os.Readlink(filepath.Join(prefix, "lib", "hiddenlab", "libhlshim.so"))
		require.NoError(t, err)
		require.Equal(t, ShimName, target)
	} else {
		t.Log("no make: make install not run, its layout copied")
		copyFile(t, probe, installed)
		copyFile(t, shim, installedShim)
	}
	r := run(t, env(), installed)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "shim: "+installedShim+"\n")
	require.Contains(t, r.stdout, "sum: 6\n")

	// Next to the binary.
	flat := filepath.Join(tmp, "flat")
	copyFile(t, probe, filepath.Join(flat, "hlprobe"))
	copyFile(t, shim, filepath.Join(flat, ShimName))
	r = run(t, env(), filepath.Join(flat, "hlprobe"))
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "shim: "+filepath.Join(flat, ShimName)+"\n")

	// Through a symlink: the search starts from the executable's real place.
	link := filepath.Join(tmp, "links", "hiddenlab")
	require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o755))
	require.NoError(t, os.Symlink(installed, link))
	r = run(t, env(), link)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "shim: "+installedShim+"\n")

	// HIDDENLAB_SHIM_DIR wins over the binary's own shim.
	r = run(t, env(ShimDirEnv+"="+flat), installed)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "shim: "+filepath.Join(flat, ShimName)+"\n")

	// A wrong HIDDENLAB_SHIM_DIR is an error naming it, not a fallback to the
	// binary's own shim.
	nowhere := filepath.Join(tmp, "nowhere")
	r = run(t, env(ShimDirEnv+"="+nowhere), installed)
	require.Equal(t, 1, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "hlprobe: "+ShimDirEnv+"="+nowhere+": no shim at "+filepath.Join(nowhere, ShimName))
	require.NotContains(t, r.stderr, "goroutine")

	// A HIDDENLAB_SIMD the shim does not know keeps it from loading.
	r = run(t, env(SIMDEnv+"=avx3"), installed)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "hlprobe: environment: "+SIMDEnv+`="avx3": want avx512, avx512f, avx2 or generic`)
	require.NotContains(t, r.stderr, "goroutine")
	r = run(t, env(SIMDEnv+"=generic"), installed)
	require.Equal(t, 0, r.code, "%s", r.stderr)
	require.Contains(t, r.stdout, "sum: 6\n")

	// A file there that is not a shim.
	broken := filepath.Join(tmp, "broken")
	require.NoError(t, os.MkdirAll(broken, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(broken, ShimName), []byte("not an ELF file"), 0o644))
	r = run(t, env(ShimDirEnv+"="+broken), installed)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, ShimDirEnv+"="+broken+": cannot load "+filepath.Join(broken, ShimName)+": ")

	// Shims of another ABI version, or lacking entry points, are errors.
	if cc, err := exec.LookPath("cc"); err == nil {
		for _, c := range []struct{ name, src, want string }{
			{"abi", "int hl_abi_version(void) { return 999; }\n",
				"has ABI version 999, this binary was built for " + strconv.Itoa(HeaderABIVersion)},
			{"old", "int hl_abi_version(void) { return " + strconv.Itoa(HeaderABIVersion) + "; }\n",
				"lacks the entry point hl_status_kind"},
		} {
			dir := filepath.Join(tmp, c.name)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "fake.c"), []byte(c.src), 0o644))
			out, err := exec.Command(cc, "-shared", "-fPIC", "-o", filepath.Join(dir, ShimName), filepath.Join(dir, "fake.c")).CombinedOutput()
			require.NoError(t, err, "%s", out)
			r = run(t, env(ShimDirEnv+"="+dir), installed)
			require.Equal(t, 1, r.code)
			require.Contains(t, r.stderr, ShimDirEnv+"="+dir+": "+filepath.Join(dir, ShimName)+" "+c.want)
		}
	} else {
		t.Log("no C compiler: ABI mismatch not checked")
	}

	// No shim anywhere: the error lists the places searched.
	bare := filepath.Join(tmp, "bare", "bin", "hlprobe")
	copyFile(t, probe, bare)
	r = run(t, env(), bare)
	require.Equal(t, 1, r.code)
	for _, want := range []string{
		"cannot find the shim " + ShimName,
		filepath.Join(tmp, "bare", "bin", ShimName) + " (not found)",
		filepath.Join(tmp, "bare", "lib", "hiddenlab", ShimName) + " (not found)",
		ShimName + " on the dynamic linker's path",
		ShimDirEnv,
	} {
		require.Contains(t, r.stderr, want)
	}

	// Tensor work without the shim exits with the same message, not a crash.
	r = run(t, env(), bare, "-nocheck")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "called, but the shim is not loaded: cannot find the shim "+ShimName)
	require.NotContains(t, r.stderr, "SIGSEGV")
}
