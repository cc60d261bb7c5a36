package atlas

import (
	"bytes"
	"context"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ScreenshotsEnv names a directory the browser tests copy their screenshots
// into (they always save them into the test's temporary directory).
const ScreenshotsEnv = "HIDDENLAB_ATLAS_SCREENSHOTS"

// chromium returns the path of Debian's chromium. Without it the browser
// tests skip, except under CI=true, where they must run: then a missing
// chromium fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium is not on PATH but CI=true, where the atlas browser test must run: install it with `make setup` (apt-get install -y chromium): %v", err)
	}
	t.Skipf("chromium is not on PATH (install it with `make setup` or apt-get install -y chromium; with CI=true this test fails instead): %v", err)
	return ""
}

// browser runs headless chromium on a page and returns what it prints.
type browser struct {
	t   *testing.T
	bin string
	dir string // the profile directory
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, bin: chromium(t), dir: t.TempDir()}
}

func (b *browser) run(args ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--user-data-dir=" + b.dir}, args...)
	cmd := exec.CommandContext(ctx, b.bin, all...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	require.NoError(b.t, err, "chromium %s: %s", strings.Join(all, " "), tail(errOut.String(), 2000))
	return out.String()
}

// dom loads the page at path (with the hash, if any) and returns its DOM
// after the page's scripts ran.
func (b *browser) dom(path, hash string) string {
	b.t.Helper()
	u := fileURL(path)
	if hash != "" {
		u += "#" + hash
	}
	return b.run("--dump-dom", u)
}

// screenshot saves a PNG of the page, width×height, into the test's
// temporary directory as name (and into $HIDDENLAB_ATLAS_SCREENSHOTS when
// set) and returns its path.
func (b *browser) screenshot(path, hash, name string, width, height int) string {
	b.t.Helper()
	u := fileURL(path)
	if hash != "" {
		u += "#" + hash
	}
	out := filepath.Join(b.t.TempDir(), name)
	b.run("--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "--screenshot="+out, u)
	f, err := os.Open(out)
	require.NoError(b.t, err, "chromium wrote no screenshot")
	cfg, err := png.DecodeConfig(f)
	f.Close()
	require.NoError(b.t, err)
	require.Equal(b.t, width, cfg.Width)
	if dir := os.Getenv(ScreenshotsEnv); dir != "" {
		data, err := os.ReadFile(out)
		require.NoError(b.t, err)
		require.NoError(b.t, os.MkdirAll(dir, 0o755))
		require.NoError(b.t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
		b.t.Logf("screenshot %s", filepath.Join(dir, name))
	}
	return out
}

func fileURL(path string) string {
	abs, _ := filepath.Abs(path)
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

var rowRE = regexp.MustCompile(`<tr class="feature" data-kind="([^"]*)" data-name="([^"]*)">`)

// rows lists the feature rows of an index DOM, in order, as their names.
func rows(dom string) []string {
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		out = append(out, strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	return out
}

// TestBrowser loads the synthetic atlas in headless chromium: the index
// lists every feature, a query in the URL hash filters them, a regex sorts
// them by precision, and a feature page shows its contexts highlighted.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir()
	_, err := Write(dir, testSite(t), Options{PerPage: 10})
	require.NoError(t, err)
	index := filepath.Join(dir, "index.html")
	all := []string{"blocks.0.attn_preproj[1] code 7", "blocks.0.mlp code 3", "blocks.0.mlp_mid neuron 11", "sae.blocks.0.mlp sae 2", "blocks.0.mlp code 4"}
	for _, tc := range []struct {
		hash  string
		want  []string // the rows, in order (nil: any order of all)
		count string
	}{
		{"", nil, "5 of 5 features"},
		{"q=dog", []string{"blocks.0.mlp code 3"}, "1 of 5 features"},
		{"q=mlp_mid", []string{"blocks.0.mlp_mid neuron 11"}, "1 of 5 features"},
		{"q=" + url.QueryEscape("mlp code"), []string{"blocks.0.mlp code 3", "blocks.0.mlp code 4"}, "2 of 5 features"},
		{"kind=sae", []string{"sae.blocks.0.mlp sae 2"}, "1 of 5 features"},
		{"q=nothing-like-this", []string{}, "0 of 5 features"},
		{"re=" + url.QueryEscape("^ cat$"), []string{"blocks.0.attn_preproj[1] code 7", "blocks.0.mlp code 3"}, "5 of 5 features"},
		{"sort=freq-asc", []string{"blocks.0.mlp code 4"}, "5 of 5 features"},
	} {
		t.Run("index#"+tc.hash, func(t *testing.T) {
			dom := b.dom(index, tc.hash)
			got := rows(dom)
			require.Contains(t, dom, `<span id="count">`+tc.count+`</span>`)
			switch {
			case tc.want == nil:
				require.ElementsMatch(t, all, got)
			case len(tc.want) == 0:
				require.Empty(t, got)
			case strings.HasPrefix(tc.hash, "re=") || strings.HasPrefix(tc.hash, "sort="):
				require.GreaterOrEqual(t, len(got), len(tc.want))
				require.Equal(t, tc.want, got[:len(tc.want)], "sorted first")
			default:
				require.Equal(t, tc.want, got)
			}
			if strings.HasPrefix(tc.hash, "re=") {
				require.Contains(t, dom, `<td class="num rp">1.000</td>`, "the cat code's precision for ^ cat$")
			}
		})
	}
	page := filepath.Join(dir, "f", "code-blocks.0.mlp-3.html")
	dom := b.dom(page, "")
	require.Equal(t, 10, strings.Count(dom, `<li class="ctx"`), "10 contexts per page")
	require.Regexp(t, `<span class="h9 c" title="5.00"> dog</span>`, dom, "the top context's centre is highlighted")
	require.Regexp(t, `<svg class="hist"`, dom)
	require.Contains(t, dom, `<a href="code-blocks.0.mlp-3.2.html">2</a>`, "the contexts are paged")
	dom2 := b.dom(filepath.Join(dir, "f", "code-blocks.0.mlp-3.2.html"), "")
	require.Equal(t, 8, strings.Count(dom2, `<li class="ctx"`))

	shots := []string{b.screenshot(index, "re="+url.QueryEscape("^ cat$"), "synthetic-index.png", 1280, 720),
		b.screenshot(page, "", "synthetic-feature.png", 1280, 1000)}
	t.Logf("screenshots: %s", strings.Join(shots, ", "))
}
