package atlas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed assets templates
var files embed.FS

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"pct":   func(x float64) string { return formatPct(x) },
	"num":   func(x float32) string { return formatNum(float64(x)) },
	"f64":   func(x float64) string { return formatNum(x) },
	"show":  showText,
	"chip":  chipText,
	"scale": func(c, m int) int { return 120 * c / max(m, 1) },
}).ParseFS(files, "templates/*.html"))

// Site is what Write turns into an atlas.
type Site struct {
	Title  string
	Source string // where the features come from (the run directory)
	// Notes are lines shown on the index: how the activations and the
	// promoted tokens were computed.
	Notes []string
	// Regexes are the patterns of every feature's Regex stats, in order.
	Regexes  []string
	Features []Feature
}

// Options configure Write; zero values take the defaults.
type Options struct {
	PerPage int // contexts per feature page (20)
	// ShardBytes bounds each index data file (150 000 bytes).
	ShardBytes int
}

// Stats describe a written site.
type Stats struct {
	Features, Files int
	Bytes           int64  // all files together
	Largest         int64  // the largest file's size
	LargestFile     string // relative to the site
}

// Marker is the file that marks a directory as an atlas: Write replaces
// the pages of a directory holding one and refuses a non-empty directory
// without.
const Marker = "atlas.json"

// Write writes the site into dir: index.html (search and sort run in the
// browser over data/index-N.js), one page per feature and per PerPage of
// its contexts under f/, and the embedded assets. Every page works from
// file:// without a server or network.
func Write(dir string, s *Site, o Options) (*Stats, error) {
	if o.PerPage <= 0 {
		o.PerPage = 20
	}
	if o.ShardBytes <= 0 {
		o.ShardBytes = 150_000
	}
	if err := prepare(dir); err != nil {
		return nil, err
	}
	w := &writer{dir: dir, st: &Stats{Features: len(s.Features)}}
	// Assets.
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return w.file(p, b)
	})
	if err != nil {
		return nil, err
	}
	// Index data, sharded.
	books, bookIdx := []string{}, map[string]int{}
	var shards []string
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		name := fmt.Sprintf("data/index-%d.js", len(shards))
		shards = append(shards, name)
		b := append([]byte("ATLAS.add(["), bytes.TrimSuffix(buf.Bytes(), []byte(","))...)
		b = append(b, "]);\n"...)
		buf.Reset()
		return w.file(name, b)
	}
	for i := range s.Features {
		f := &s.Features[i]
		bi, ok := bookIdx[f.Book]
		if !ok {
			bi = len(books)
			bookIdx[f.Book] = bi
			books = append(books, f.Book)
		}
		b, err := json.Marshal(indexRow(f, bi))
		if err != nil {
			return nil, err
		}
		if buf.Len() > 0 && buf.Len()+len(b) > o.ShardBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		buf.Write(b)
		buf.WriteByte(',')
	}
	if err := flush(); err != nil {
		return nil, err
	}
	kinds := map[Kind]int{}
	for _, f := range s.Features {
		kinds[f.Kind]++
	}
	meta, err := json.Marshal(map[string]any{"books": books, "regexes": s.Regexes})
	if err != nil {
		return nil, err
	}
	if err := w.page("index.html", "index.html", map[string]any{
		"Site": s, "Shards": shards, "Meta": template.JS(meta), "Kinds": kindCounts(kinds),
	}); err != nil {
		return nil, err
	}
	// Feature pages.
	for i := range s.Features {
		if err := w.featurePages(s, i, o.PerPage); err != nil {
			return nil, err
		}
	}
	mark, _ := json.MarshalIndent(map[string]any{"title": s.Title, "source": s.Source, "features": len(s.Features),
		"created": time.Now().UTC().Format(time.RFC3339)}, "", "  ")
	if err := w.file(Marker, append(mark, '\n')); err != nil {
		return nil, err
	}
	return w.st, nil
}

// prepare makes dir ready: created, or emptied of a previous atlas's pages.
func prepare(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(ents) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, Marker)); err != nil {
		return fmt.Errorf("atlas: %s is not empty and holds no %s: not overwriting it", dir, Marker)
	}
	for _, sub := range []string{"f", "data", "assets"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	return nil
}

// writer writes the files of a site and counts them.
type writer struct {
	dir string
	st  *Stats
}

func (w *writer) file(rel string, b []byte) error {
	p := filepath.Join(w.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	w.st.Files++
	w.st.Bytes += int64(len(b))
	if int64(len(b)) > w.st.Largest {
		w.st.Largest, w.st.LargestFile = int64(len(b)), rel
	}
	return nil
}

func (w *writer) page(rel, name string, data any) error {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("atlas: %s: %w", rel, err)
	}
	return w.file(rel, b.Bytes())
}

// indexRow is a feature's entry in the index data: short keys keep the
// shards small.
type row struct {
	K Kind      `json:"k"`
	B int       `json:"b"` // index into the books table
	I int       `json:"i"`
	N int       `json:"n"`           // fires
	F float64   `json:"f"`           // frequency
	M float64   `json:"m"`           // max activation
	U string    `json:"u"`           // page
	T [][2]any  `json:"t"`           // top tokens: text, count
	O int       `json:"o"`           // other active positions
	P []float64 `json:"p,omitempty"` // precision per site regex
}

func indexRow(f *Feature, book int) row {
	r := row{K: f.Kind, B: book, I: f.ID, N: f.Fires, F: round(f.Frequency(), 6), M: round(float64(f.MaxAct), 4),
		U: "f/" + f.Slug() + ".html", O: f.OtherTokens, T: [][2]any{}}
	for _, t := range f.TopTokens {
		r.T = append(r.T, [2]any{t.Text, t.Count})
	}
	for _, s := range f.Regex {
		r.P = append(r.P, round(s.Precision, 4))
	}
	return r
}

// round rounds x to digits significant digits (0 stays 0; NaN and ±Inf
// become 0, which JSON can hold).
func round(x float64, digits int) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', digits, 64), 64)
	return v
}

type kindCount struct {
	Kind  Kind
	Count int
}

func kindCounts(m map[Kind]int) []kindCount {
	var out []kindCount
	for _, k := range []Kind{KindCode, KindNeuron, KindSAE} {
		if m[k] > 0 {
			out = append(out, kindCount{k, m[k]})
		}
	}
	for k, n := range m {
		if k != KindCode && k != KindNeuron && k != KindSAE {
			out = append(out, kindCount{k, n})
		}
	}
	return out
}

// pageToken is a token of a context as its page shows it.
type pageToken struct {
	Text   string
	Level  int // highlight 0 … 9
	Act    string
	Center bool
}

type pageContext struct {
	Seq, Pos int
	Act      string
	Tokens   []pageToken
}

type pageLink struct {
	N       int
	URL     string
	Current bool
}

type bar struct {
	X, Y, W, H float64
	Title      string
}

// featurePages writes the pages of feature i: f/<slug>.html with its first
// perPage contexts, then f/<slug>.<n>.html for the next ones.
func (w *writer) featurePages(s *Site, i, perPage int) error {
	f := &s.Features[i]
	pages := max(1, (len(f.Contexts)+perPage-1)/perPage)
	url := func(n int) string { return pageURL(f, n) }
	var links []pageLink
	for n := 1; n <= pages; n++ {
		links = append(links, pageLink{N: n, URL: url(n)})
	}
	var prev, next string
	if i > 0 {
		prev = path.Base(pageURL(&s.Features[i-1], 1))
	}
	if i+1 < len(s.Features) {
		next = path.Base(pageURL(&s.Features[i+1], 1))
	}
	hist := histogramBars(f.Histogram)
	total := 0
	for _, t := range f.TopTokens {
		total = max(total, t.Count)
	}
	for n := 1; n <= pages; n++ {
		lo, hi := (n-1)*perPage, min(n*perPage, len(f.Contexts))
		var ctxs []pageContext
		for _, c := range f.Contexts[lo:hi] {
			ctxs = append(ctxs, contextOf(c, f.MaxAct))
		}
		ls := make([]pageLink, len(links))
		copy(ls, links)
		for k := range ls {
			ls[k].URL = path.Base(ls[k].URL)
			ls[k].Current = k == n-1
		}
		data := map[string]any{
			"Site": s, "F": f, "Freq": f.Frequency(), "Contexts": ctxs, "First": lo + 1, "Pages": ls, "Page": n,
			"Hist": hist, "HistMax": maxCount(f.Histogram), "MaxTokenCount": total, "Prev": prev, "Next": next,
		}
		if err := w.page(url(n), "feature.html", data); err != nil {
			return err
		}
	}
	return nil
}

// pageURL is page n (from 1) of f's pages, relative to the site.
func pageURL(f *Feature, n int) string {
	if n <= 1 {
		return "f/" + f.Slug() + ".html"
	}
	return "f/" + f.Slug() + "." + strconv.Itoa(n) + ".html"
}

func contextOf(c Context, maxAct float32) pageContext {
	pc := pageContext{Seq: c.Seq, Pos: c.Pos, Act: formatNum(float64(c.Act))}
	for j, t := range c.Tokens {
		pc.Tokens = append(pc.Tokens, pageToken{Text: t.Text, Level: level(t.Act, maxAct), Act: formatNum(float64(t.Act)), Center: j == c.Center})
	}
	return pc
}

// level maps an activation to a highlight level: 0 for none (≤ 0), else
// 1 … 9 in proportion to the feature's largest activation.
func level(act, maxAct float32) int {
	if act <= 0 || maxAct <= 0 || math.IsNaN(float64(act)) {
		return 0
	}
	return min(max(int(math.Ceil(float64(9*act/maxAct))), 1), 9)
}

func maxCount(h Histogram) int {
	m := 0
	for _, c := range h.Counts {
		m = max(m, c)
	}
	return m
}

// histogramBars lays out the histogram's bars in a 400×100 box.
func histogramBars(h Histogram) []bar {
	m := maxCount(h)
	if m == 0 {
		return nil
	}
	var out []bar
	w := 400 / float64(len(h.Counts))
	step := (h.Hi - h.Lo) / float64(len(h.Counts))
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		ht := max(100*float64(c)/float64(m), 1)
		out = append(out, bar{X: round(float64(i)*w, 5), Y: round(100-ht, 5), W: round(max(w-1, 0.5), 5), H: round(ht, 5),
			Title: fmt.Sprintf("%s … %s: %d", formatNum(h.Lo+float64(i)*step), formatNum(h.Lo+float64(i+1)*step), c)})
	}
	return out
}

// showText makes whitespace in a token visible: newlines as ↵, tabs as ⇥.
func showText(s string) string {
	return strings.NewReplacer("\r\n", "↵", "\n", "↵", "\r", "↵", "\t", "⇥").Replace(s)
}

// chipText is showText for a token shown alone: a token of spaces shows
// them as ␣.
func chipText(s string) string {
	if strings.TrimSpace(s) == "" {
		s = strings.ReplaceAll(s, " ", "␣")
	}
	return showText(s)
}

func formatNum(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case x == 0:
		return "0"
	case math.Abs(x) >= 1000 || math.Abs(x) < 0.001:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	return strconv.FormatFloat(x, 'f', max(0, 2-int(math.Floor(math.Log10(math.Abs(x))))), 64)
}

func formatPct(x float64) string {
	if x == 0 {
		return "0%"
	}
	if x < 0.0001 {
		return strconv.FormatFloat(100*x, 'g', 2, 64) + "%"
	}
	return strconv.FormatFloat(100*x, 'f', 2, 64) + "%"
}
