package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedFilesInSync regenerates the files from the header in memory
// and compares them with the checked-in ones.
func TestGeneratedFilesInSync(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..")
	files, err := generateFromRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		path := filepath.Join(root, capiDir, f.name)
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(old) != string(f.data) {
			t.Errorf("%s is out of date with %s: run make capi-gen", path, headerPath)
		}
	}
}

func TestParseHeader(t *testing.T) {
	fns, err := parseHeader(`
HL_API int32_t hl_a(void); /* trailing (comment) */
HL_API const char *hl_b(hl_status s);
HL_API void hl_c(const hl_tensor *ts,
                 int64_t n, hl_options o);
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 3 {
		t.Fatalf("parsed %d functions, want 3", len(fns))
	}
	if got := fns[1].signature("hl_b"); got != "const char *hl_b(hl_status s)" {
		t.Errorf("signature %q", got)
	}
	if got := strings.Join(fns[2].args, ","); got != "ts,n,o" {
		t.Errorf("args %q", got)
	}
	if got := fns[0].signature("x"); got != "int32_t x(void)" {
		t.Errorf("signature %q", got)
	}
	for _, bad := range []string{
		"HL_API void hl_d(int32_t);\n",
		"HL_API void hl_e(int32_t a[4]);\n",
		"HL_API void hl_f(const char *fmt, ...);\n",
	} {
		if _, err := parseHeader(bad); err == nil {
			t.Errorf("%q parsed without an error", bad)
		}
	}
}
