package torch_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// readmeMarker precedes, in README.md, the Go block that must equal the body
// of Example in example_test.go.
const readmeMarker = "<!-- example: torch.Example -->"

// TestREADMEExample keeps README.md's Go snippet compiled and tested: the
// first ```go block after readmeMarker must be the body of Example (whose
// // Output: the example test checks), with one level of indentation removed.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readmeBlock(string(readme), readmeMarker)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	want := exampleBody(t, "example_test.go", "Example")
	if got != want {
		t.Errorf("README.md's Go block after %s differs from the body of Example in torch/example_test.go.\n"+
			"README.md has:\n%s\n\nexample_test.go has (copy this into README.md):\n%s", readmeMarker, got, want)
	}
}

// readmeBlock returns the contents of the first ```go block after marker,
// without trailing spaces on its lines.
func readmeBlock(doc, marker string) (string, error) {
	i := strings.Index(doc, marker)
	if i < 0 {
		return "", fmt.Errorf("no %s marker", marker)
	}
	rest := doc[i+len(marker):]
	j := strings.Index(rest, "```go\n")
	if j < 0 {
		return "", fmt.Errorf("no ```go block after %s", marker)
	}
	rest = rest[j+len("```go\n"):]
	k := strings.Index(rest, "```")
	if k < 0 {
		return "", fmt.Errorf("the ```go block after %s is not closed", marker)
	}
	return normalise(strings.Split(rest[:k], "\n"), ""), nil
}

// exampleBody returns the source text of function name's body in file,
// comments included, with its first level of indentation removed.
func exampleBody(t *testing.T, file, name string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv != nil || fd.Name.Name != name || fd.Body == nil {
			continue
		}
		from := fset.Position(fd.Body.Lbrace).Offset + 1
		to := fset.Position(fd.Body.Rbrace).Offset
		return normalise(strings.Split(string(src[from:to]), "\n"), "\t")
	}
	t.Fatalf("%s: no function %s", file, name)
	return ""
}

// normalise drops leading and trailing blank lines, removes indent from the
// start of each line and trailing white space from its end.
func normalise(lines []string, indent string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(strings.TrimPrefix(l, indent), " \t")
	}
	return strings.Join(out, "\n")
}
