package codesearch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
)

// Files of a code cache, inside the run (stage) directory.
const (
	CacheDir     = "codecache"         // the cache's directory in the run directory
	IndexFile    = "index.json"        // what the cache holds (Index)
	CodesFile    = "codes.safetensors" // tokens, code ids and token texts
	cacheVersion = 1
)

// Sources a cache can be built from.
const (
	SourceValid = "valid" // the recipe's held-out split, in order
	SourceTrain = "train" // random training windows
)

// BookInfo describes one codebook site: G codebooks of C codes, K active.
type BookInfo struct {
	Site   string `json:"site"`
	Groups int    `json:"groups"`
	Codes  int    `json:"codes"`
	K      int    `json:"k"`
}

// Index is a cache's index.json.
type Index struct {
	Version int        `json:"version"`
	Run     string     `json:"run"`    // the run (stage) directory
	Step    int        `json:"step"`   // the checkpoint's step
	Source  string     `json:"source"` // SourceValid or SourceTrain
	Seqs    int        `json:"seqs"`
	Context int        `json:"context"` // tokens per sequence
	Vocab   int        `json:"vocab"`
	Books   []BookInfo `json:"codebooks"`
	File    string     `json:"file"`
	Created string     `json:"created"`
}

// Cache holds every codebook's active codes at every position of a set of
// token sequences, with the tokens and their texts.
type Cache struct {
	Index
	Tokens []int32            // [Seqs, Context] row-major
	IDs    map[string][]int32 // site → ids [Seqs, Context, G, K] row-major
	Texts  [][]byte           // decoded text of each token id
}

// CacheOptions say what to cache.
type CacheOptions struct {
	Source string // SourceValid (default) or SourceTrain
	Seqs   int    // sequences (default 256; fewer if the held-out split is shorter)
	Batch  int    // sequences per forward pass (default 16)
	Seed   uint64 // picks the training windows
}

// BuildCache runs the model over the chosen sequences and records every
// codebook's ids.
func (r *Run) BuildCache(o CacheOptions) (*Cache, error) {
	if o.Source == "" {
		o.Source = SourceValid
	}
	if o.Seqs <= 0 {
		o.Seqs = 256
	}
	if o.Batch <= 0 {
		o.Batch = 16
	}
	T := r.Data.Context()
	var x []int64
	switch o.Source {
	case SourceValid:
		for b := range r.Data.Eval(o.Batch) {
			x = append(x, b.X...)
			if len(x) >= o.Seqs*T {
				break
			}
		}
	case SourceTrain:
		for step := 0; len(x) < o.Seqs*T; step++ {
			b, _ := r.Data.Batch(1<<29+int(o.Seed%(1<<20))*1024+step, o.Batch)
			x = append(x, b...)
		}
	default:
		return nil, fmt.Errorf("cache source %q: want %s or %s", o.Source, SourceValid, SourceTrain)
	}
	rows := min(o.Seqs, len(x)/T)
	if rows == 0 {
		return nil, fmt.Errorf("cache: the %s split has no sequence of %d tokens", o.Source, T)
	}
	x = x[:rows*T]
	c := &Cache{
		Index: Index{Version: cacheVersion, Run: r.Dir, Step: r.Step, Source: o.Source, Seqs: rows, Context: T,
			Vocab: r.Data.Vocab(), Books: r.Books(), File: CodesFile, Created: time.Now().UTC().Format(time.RFC3339)},
		Tokens: make([]int32, len(x)),
		IDs:    map[string][]int32{},
	}
	for i, v := range x {
		c.Tokens[i] = int32(v)
	}
	err := torch.Try(func() {
		for site, ids := range codebook.RecordCodes(r.Model, x, rows, T, o.Batch) {
			c.IDs[site.String()] = ids
		}
	})
	if err != nil {
		return nil, err
	}
	c.Texts = make([][]byte, c.Vocab)
	for id := range c.Texts {
		c.Texts[id] = []byte(r.Data.Decode([]int64{int64(id)}))
	}
	return c, nil
}

// Save writes the cache into dir/codecache: the ids, tokens and token texts
// as safetensors, then index.json, each atomically.
func (c *Cache) Save(dir string) error {
	root := filepath.Join(dir, CacheDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	var err, werr error
	torch.WithScope(func() {
		err = torch.Try(func() {
			ts := map[string]*torch.Tensor{"tokens": torch.FromSlice(c.Tokens, []int{c.Seqs, c.Context})}
			for _, b := range c.Books {
				shape := []int{c.Seqs, c.Context, b.Groups, b.K}
				ids := c.IDs[b.Site]
				if b.Codes <= 1<<15-1 { // compact: int16 ids
					small := make([]int16, len(ids))
					for i, v := range ids {
						small[i] = int16(v)
					}
					ts["codes."+b.Site] = torch.FromSlice(small, shape)
				} else {
					ts["codes."+b.Site] = torch.FromSlice(ids, shape)
				}
			}
			var text []uint8
			offsets := make([]int64, 0, len(c.Texts)+1)
			offsets = append(offsets, 0)
			for _, t := range c.Texts {
				text = append(text, t...)
				offsets = append(offsets, int64(len(text)))
			}
			ts["texts.bytes"] = torch.FromSlice(text, []int{len(text)})
			ts["texts.offsets"] = torch.FromSlice(offsets, nil)
			werr = checkpoint.WriteSafetensors(filepath.Join(root, CodesFile), ts, map[string]string{"format": "hiddenlab codecache " + strconv.Itoa(cacheVersion)})
		})
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("code cache %s: %w", root, err)
	}
	b, err := json.MarshalIndent(c.Index, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(filepath.Join(root, IndexFile), append(b, '\n'), 0o644)
}

// ErrNoCache reports a run directory without a code cache.
var ErrNoCache = errors.New("no code cache (run: hiddenlab codebook cache <run dir>)")

// LoadCache reads the cache of dir (a run, stage or staged run directory),
// checking the file against the index.
func LoadCache(dir string) (*Cache, error) {
	sdir, err := ResolveDir(dir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(sdir, CacheDir)
	ipath := filepath.Join(root, IndexFile)
	b, err := os.ReadFile(ipath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", sdir, ErrNoCache)
	}
	if err != nil {
		return nil, err
	}
	c := &Cache{IDs: map[string][]int32{}}
	if err := json.Unmarshal(b, &c.Index); err != nil {
		return nil, fmt.Errorf("%s: %w", ipath, err)
	}
	if c.Version != cacheVersion {
		return nil, fmt.Errorf("%s: cache version %d, this build reads %d (rebuild the cache)", ipath, c.Version, cacheVersion)
	}
	fpath := filepath.Join(root, c.File)
	f, err := checkpoint.ReadSafetensors(fpath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s (does not match %s; rebuild the cache)", fpath, fmt.Sprintf(format, args...), IndexFile)
	}
	get := func(name string, shape ...int) (*torch.Tensor, error) {
		t, ok := f.Tensors[name]
		if !ok {
			return nil, bad("no tensor %s", name)
		}
		if shape != nil && !slices.Equal(t.Shape(), shape) {
			return nil, bad("tensor %s has shape %v, want %v", name, t.Shape(), shape)
		}
		return t, nil
	}
	var lerr error // a mismatch found while reading
	err = torch.Try(func() { lerr = c.read(get, bad) })
	if err == nil {
		err = lerr
	}
	if err != nil {
		return nil, err
	}
	for i, v := range c.Tokens {
		if v < 0 || int(v) >= c.Vocab {
			return nil, bad("token %d at position %d is outside the vocabulary of %d", v, i, c.Vocab)
		}
	}
	return c, nil
}

// read copies the tensors get finds into c.
func (c *Cache) read(get func(name string, shape ...int) (*torch.Tensor, error), bad func(format string, args ...any) error) error {
	t, err := get("tokens", c.Seqs, c.Context)
	if err != nil {
		return err
	}
	c.Tokens = torch.Values[int32](t)
	for _, bk := range c.Books {
		t, err := get("codes."+bk.Site, c.Seqs, c.Context, bk.Groups, bk.K)
		if err != nil {
			return err
		}
		c.IDs[bk.Site] = torch.Values[int32](t)
	}
	tb, err := get("texts.bytes")
	if err != nil {
		return err
	}
	to, err := get("texts.offsets", c.Vocab+1)
	if err != nil {
		return err
	}
	text, offs := torch.Values[uint8](tb), to.Int64s()
	c.Texts = make([][]byte, c.Vocab)
	for i := range c.Texts {
		if offs[i] < 0 || offs[i] > offs[i+1] || offs[i+1] > int64(len(text)) {
			return bad("token text offsets out of range at id %d", i)
		}
		c.Texts[i] = text[offs[i]:offs[i+1]]
	}
	return nil
}

// Book is one codebook of a cache: group Group of the site (−1 for a
// vanilla codebook, G = 1).
type Book struct {
	Site  string
	Group int
	Info  BookInfo
}

// Name is the codebook's name, "blocks.0.attn_preproj[3]" or "blocks.0.mlp".
func (b Book) Name() string {
	if b.Group < 0 {
		return b.Site
	}
	return fmt.Sprintf("%s[%d]", b.Site, b.Group)
}

// AllBooks lists every codebook of the cache (each group of each site), in
// forward order.
func (c *Cache) AllBooks() []Book {
	var out []Book
	for _, bi := range c.Books {
		if bi.Groups == 1 {
			out = append(out, Book{Site: bi.Site, Group: -1, Info: bi})
			continue
		}
		for g := 0; g < bi.Groups; g++ {
			out = append(out, Book{Site: bi.Site, Group: g, Info: bi})
		}
	}
	return out
}

// Book finds a codebook by name: "<site>[<group>]", or "<site>" for a
// vanilla codebook (e.g. blocks.0.attn_preproj[3], blocks.1.mlp).
func (c *Cache) Book(name string) (Book, error) {
	site, group := name, -1
	if i := strings.IndexByte(name, '['); i >= 0 && strings.HasSuffix(name, "]") {
		g, err := strconv.Atoi(name[i+1 : len(name)-1])
		if err != nil || g < 0 {
			return Book{}, fmt.Errorf("codebook %q: bad group (want <site>[<group>])", name)
		}
		site, group = name[:i], g
	}
	var sites []string
	for _, bi := range c.Books {
		sites = append(sites, bi.Site)
		if bi.Site != site {
			continue
		}
		switch {
		case bi.Groups == 1 && group <= 0:
			return Book{Site: site, Group: -1, Info: bi}, nil
		case group < 0:
			return Book{}, fmt.Errorf("codebook %q: the site has %d groups; name one as %s[0] … %s[%d]", name, bi.Groups, site, site, bi.Groups-1)
		case group >= bi.Groups:
			return Book{}, fmt.Errorf("codebook %q: group %d out of range (the site has %d)", name, group, bi.Groups)
		}
		return Book{Site: site, Group: group, Info: bi}, nil
	}
	return Book{}, fmt.Errorf("codebook %q: no such site in the cache (have %s)", name, strings.Join(sites, ", "))
}

// Codes returns the codes of b at every cached position, [positions][K]
// (slices into the cache).
func (c *Cache) Codes(b Book) [][]int32 {
	ids := c.IDs[b.Site]
	G, K := b.Info.Groups, b.Info.K
	g := max(b.Group, 0)
	out := make([][]int32, c.Seqs*c.Context)
	for i := range out {
		at := (i*G + g) * K
		out[i] = ids[at : at+K : at+K]
	}
	return out
}

// SeqCodes returns the codes of b per sequence, [seq][position][K].
func (c *Cache) SeqCodes(b Book) [][][]int32 {
	flat := c.Codes(b)
	out := make([][][]int32, c.Seqs)
	for s := range out {
		out[s] = flat[s*c.Context : (s+1)*c.Context]
	}
	return out
}

// TokenTexts returns the text of the token at every cached position.
func (c *Cache) TokenTexts() [][]byte {
	out := make([][]byte, len(c.Tokens))
	for i, t := range c.Tokens {
		out[i] = c.Texts[t]
	}
	return out
}

// Text returns the text of positions [from, to) of sequence seq.
func (c *Cache) Text(seq, from, to int) string {
	var b strings.Builder
	for p := max(from, 0); p < min(to, c.Context); p++ {
		b.Write(c.Texts[c.Tokens[seq*c.Context+p]])
	}
	return b.String()
}
