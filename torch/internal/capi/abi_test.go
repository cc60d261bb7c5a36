package capi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const root = "../../.."

func TestMain(m *testing.M) {
	if err := Load(); err != nil {
		fmt.Fprintln(os.Stderr, "capi:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// shimPath is the library the tests run with (build/cpu unless HIDDENLAB_SHIM_DIR says otherwise).
func shimPath() string { return Path() }

// headerFunctions lists the functions cc/include/hlshim.h declares with HL_API.
func headerFunctions(t *testing.T) []string {
	src, err := os.ReadFile(filepath.Join(root, "cc", "include", "hlshim.h"))
	require.NoError(t, err)
	re := regexp.MustCompile(`(?m)^HL_API\s+[^;(]*?\b(hl_\w+)\s*\(`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return names
}

// TestABIMatchesHeader: every symbol the shim exports is declared in the
// header, and every declared function is exported.
func TestABIMatchesHeader(t *testing.T) {
	out, err := exec.Command("nm", "-D", "--defined-only", shimPath()).Output()
	require.NoError(t, err, "nm on %s", shimPath())
	var exported []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			exported = append(exported, f[2])
		}
	}
	sort.Strings(exported)
	declared := headerFunctions(t)
	require.Greater(t, len(declared), 90)
	require.Equal(t, declared, exported, "exported symbols (right) must equal header declarations (left)")
}

// TestEveryEntryPointIsGuarded: every shim function returning hl_status
// wraps its body in HL_TRY, so no C++ exception can cross the C ABI.
func TestEveryEntryPointIsGuarded(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "cc", "*.cc"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	def := regexp.MustCompile(`(?m)^hl_status (hl_\w+)\([^)]*\)\s*\{`)
	seen := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		s := string(src)
		for _, loc := range def.FindAllStringSubmatchIndex(s, -1) {
			name := s[loc[2]:loc[3]]
			body := strings.TrimSpace(s[loc[1]:])
			require.True(t, strings.HasPrefix(body, "HL_TRY("), "%s in %s does not start with HL_TRY", name, filepath.Base(f))
			seen++
		}
	}
	fallible := 0
	src, _ := os.ReadFile(filepath.Join(root, "cc", "include", "hlshim.h"))
	fallible = len(regexp.MustCompile(`(?m)^HL_API hl_status hl_\w+\(`).FindAllString(string(src), -1))
	require.Equal(t, fallible, seen, "every fallible header function has a guarded definition")
}

// TestGoWrapsEveryFunction: capi calls every function of the header, so the
// Go API reaches the whole ABI.
func TestGoWrapsEveryFunction(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		src.Write(b)
	}
	tramp, err := os.ReadFile("trampolines.c")
	require.NoError(t, err)
	for _, name := range headerFunctions(t) {
		require.True(t, strings.Contains(src.String(), "C."+name+"("), "capi does not wrap %s", name)
		require.True(t, strings.Contains(src.String(), "#cgo noescape "+name+"\n#cgo nocallback "+name+"\n"),
			"noescape.go does not mark %s (regenerate it: make capi-gen)", name)
		require.True(t, strings.Contains(string(tramp), fmt.Sprintf("{%q, (void **)&hlp_%s}", name, strings.TrimPrefix(name, "hl_"))),
			"trampolines.c does not bind %s (regenerate it: make capi-gen)", name)
	}
}

func TestABIVersion(t *testing.T) {
	require.Equal(t, HeaderABIVersion, ABIVersion())
	require.Contains(t, BuildInfo(), "libtorch ")
}
