package codesearch

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"

	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/codebook"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Context is one place where a code fires: the text around the token of
// sequence Seq at position Pos.
type Context struct {
	Seq, Pos             int
	Before, Token, After string
}

// TokenCount is how often a token is where a code fires.
type TokenCount struct {
	Text  string
	Count int
}

// CodeReport is where a code fires in the cache (paper §4 step 2).
type CodeReport struct {
	Book      string
	Code      int
	Fires     int // positions where the code is active
	Positions int // cached positions
	Tokens    []TokenCount
	Contexts  []Context
}

// Code lists the contexts where code of b fires: the first limit of them in
// cache order, with before and after tokens of context, and the tokens it
// fires on most often.
func (c *Cache) Code(b Book, code, limit, before, after int) (*CodeReport, error) {
	if code < 0 || code >= b.Info.Codes {
		return nil, fmt.Errorf("code %d out of range: %s has codes 0 … %d", code, b.Name(), b.Info.Codes-1)
	}
	r := &CodeReport{Book: b.Name(), Code: code, Positions: c.Seqs * c.Context}
	counts := map[int32]int{}
	for i, row := range c.Codes(b) {
		if !slices.Contains(row, int32(code)) {
			continue
		}
		r.Fires++
		counts[c.Tokens[i]]++
		if len(r.Contexts) < limit {
			s, p := i/c.Context, i%c.Context
			r.Contexts = append(r.Contexts, Context{Seq: s, Pos: p, Before: c.Text(s, p-before, p),
				Token: c.Text(s, p, p+1), After: c.Text(s, p+1, p+1+after)})
		}
	}
	for t, n := range counts {
		r.Tokens = append(r.Tokens, TokenCount{Text: string(c.Texts[t]), Count: n})
	}
	slices.SortFunc(r.Tokens, func(a, b TokenCount) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Text, b.Text)) })
	return r, nil
}

// SearchOptions configure a regex code search; zero values take the
// paper's defaults (interp.RegexMinRecall, RegexMinPrecision, RegexTopCodes).
type SearchOptions struct {
	MinRecall, MinPrecision float64
	Top                     int
	// Starts marks only the token holding the first byte of each match
	// (the reference's rule) instead of every token a match covers.
	Starts bool
}

func (o *SearchOptions) fill() {
	if o.MinRecall == 0 {
		o.MinRecall = interp.RegexMinRecall
	}
	if o.MinPrecision == 0 {
		o.MinPrecision = interp.RegexMinPrecision
	}
	if o.Top == 0 {
		o.Top = interp.RegexTopCodes
	}
}

// Hit is a code found for a feature and the best neuron at its recall.
type Hit struct {
	Book string
	interp.CodeStat
	Neuron          string  // empty without a neuron baseline
	NeuronPrecision float64 // of the best neuron thresholded to the code's recall
}

// SearchResult is a regex search over the cache (paper §4 step 3).
type SearchResult struct {
	Pattern   string
	Matched   int   // positions the regex marks
	Positions int   // cached positions
	Hits      []Hit // per codebook its top codes, codebooks in forward order
}

// Best returns the most precise hit (the highest recall on ties), or false.
func (r *SearchResult) Best() (Hit, bool) {
	if len(r.Hits) == 0 {
		return Hit{}, false
	}
	best := r.Hits[0]
	for _, h := range r.Hits[1:] {
		if h.Precision > best.Precision || (h.Precision == best.Precision && h.Recall > best.Recall) {
			best = h
		}
	}
	return best, true
}

// Matches marks the cached positions re covers (interp.MatchPositions, or
// MatchStarts), each sequence searched on its own.
func (c *Cache) Matches(re *regexp.Regexp, starts bool) []bool {
	texts := c.TokenTexts()
	out := make([]bool, 0, len(texts))
	for s := 0; s < c.Seqs; s++ {
		seq := texts[s*c.Context : (s+1)*c.Context]
		if starts {
			out = append(out, interp.MatchStarts(seq, re)...)
		} else {
			out = append(out, interp.MatchPositions(seq, re)...)
		}
	}
	return out
}

// Search scores every codebook's codes against the positions re marks:
// per codebook, the Top most precise codes with recall > MinRecall and
// precision > MinPrecision; with a neuron baseline (may be nil), each code's
// best neuron at the same recall.
func (c *Cache) Search(re *regexp.Regexp, o SearchOptions, nb *Neurons) (*SearchResult, error) {
	o.fill()
	matched := c.Matches(re, o.Starts)
	r := &SearchResult{Pattern: re.String(), Positions: len(matched)}
	for _, m := range matched {
		if m {
			r.Matched++
		}
	}
	if r.Matched == 0 {
		return r, nil
	}
	for _, b := range c.AllBooks() {
		stats, err := interp.CodePrecisionRecall(c.Codes(b), matched, b.Info.Codes)
		if err != nil {
			return nil, fmt.Errorf("codebook %s: %w", b.Name(), err)
		}
		for _, s := range interp.TopCodes(stats, o.MinRecall, o.MinPrecision, o.Top) {
			h := Hit{Book: b.Name(), CodeStat: s}
			if nb != nil {
				ns, err := nb.Index.Best(matched, s.Recall)
				if err != nil {
					return nil, err
				}
				h.Neuron, h.NeuronPrecision = nb.Names[ns.Neuron], ns.Precision
			}
			r.Hits = append(r.Hits, h)
		}
	}
	return r, nil
}

// Neurons is the paper's neuron baseline over a cache: every attention- and
// MLP-output dimension of every layer at every cached position.
type Neurons struct {
	Index *interp.NeuronIndex
	Names []string // "blocks.L.attn:j", "blocks.L.mlp:j"
}

// Neurons runs the model over the cache's sequences and indexes the
// attention outputs (after the output projection) and MLP outputs of every
// layer; where a codebook sits at one of these points its input is taken,
// as in the TokFSM study. The cache must come from this run.
func (r *Run) Neurons(c *Cache, batch int) (*Neurons, error) {
	m := r.Model
	if c.Context != r.Data.Context() || c.Vocab != r.Data.Vocab() {
		return nil, fmt.Errorf("cache of %s (context %d, vocab %d) does not fit the run (context %d, vocab %d)",
			c.Run, c.Context, c.Vocab, r.Data.Context(), r.Data.Vocab())
	}
	batch = max(batch, 1)
	var points []nn.Site
	for li := range m.Blocks {
		points = append(points, nn.Site{Layer: li, Point: nn.AttnOut}, nn.Site{Layer: li, Point: nn.MLPOut})
	}
	W := m.Config.Width
	names := make([]string, 0, len(points)*W)
	for _, s := range points {
		for j := 0; j < W; j++ {
			names = append(names, fmt.Sprintf("%s:%d", s, j))
		}
	}
	acts := make([][]float32, 0, c.Seqs*c.Context)
	captured := map[nn.Site]*torch.Tensor{}
	var removes []func()
	for _, s := range points {
		if _, has := m.Layers[s]; has {
			continue
		}
		site := s
		removes = append(removes, m.Hooks.Add(site, func(t *torch.Tensor) *torch.Tensor {
			captured[site] = t.Detach().Retain()
			return t
		}))
	}
	defer func() {
		for _, rm := range removes {
			rm()
		}
		for _, t := range captured {
			t.Free()
		}
	}()
	m.SetRecord(true)
	defer m.SetRecord(false)
	err := torch.Try(func() {
		torch.NoGrad(func() {
			for start := 0; start < c.Seqs; start += batch {
				n := min(batch, c.Seqs-start)
				torch.WithScope(func() {
					x := make([]int64, n*c.Context)
					for i := range x {
						x[i] = int64(c.Tokens[start*c.Context+i])
					}
					m.Forward(torch.FromSlice(x, []int{n, c.Context}, m.WTE.Weight.Device()))
					parts := make([][]float32, len(points))
					for i, s := range points {
						t := captured[s]
						if l, ok := m.Layers[s]; ok {
							t = l.Input()
						}
						parts[i] = t.Float32s()
					}
					for _, t := range captured {
						t.Free()
					}
					clear(captured)
					for p := 0; p < n*c.Context; p++ {
						row := make([]float32, 0, len(names))
						for _, part := range parts {
							row = append(row, part[p*W:(p+1)*W]...)
						}
						acts = append(acts, row)
					}
				})
			}
		})
	})
	if err != nil {
		return nil, err
	}
	index, err := interp.NewNeuronIndex(acts)
	if err != nil {
		return nil, err
	}
	return &Neurons{Index: index, Names: names}, nil
}

// TopicStat is a topic code: a code active on more than a fraction of the
// tokens of Seqs cached sequences (paper §4 step 5).
type TopicStat struct {
	Book     string
	Code     int
	Seqs     int     // sequences it is a topic code of
	Share    float64 // Seqs / cached sequences
	Examples []int   // the first such sequences
}

// Topics finds the topic codes of every codebook: codes active on more
// than fraction of a sequence's tokens (interp.TopicCodes), counted over
// the cached sequences; those of at least minSeqs sequences, most frequent
// first, with up to examples example sequences each.
func (c *Cache) Topics(fraction float64, minSeqs, examples int) []TopicStat {
	var out []TopicStat
	for _, b := range c.AllBooks() {
		idx := map[int32]int{}
		var stats []TopicStat
		for s, codes := range interp.TopicCodes(c.SeqCodes(b), fraction) {
			for _, code := range codes {
				i, ok := idx[code]
				if !ok {
					i = len(stats)
					idx[code] = i
					stats = append(stats, TopicStat{Book: b.Name(), Code: int(code)})
				}
				stats[i].Seqs++
				if len(stats[i].Examples) < examples {
					stats[i].Examples = append(stats[i].Examples, s)
				}
			}
		}
		for _, st := range stats {
			if st.Seqs >= max(minSeqs, 1) {
				st.Share = float64(st.Seqs) / float64(c.Seqs)
				out = append(out, st)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b TopicStat) int { return cmp.Compare(b.Seqs, a.Seqs) })
	return out
}

// TopicMatch ranks the topic codes of every codebook for the sequences re
// matches, as the steering experiment chooses its codes
// (codebook.RankTopicCodes); it returns the codes and the number of matched
// sequences.
func (c *Cache) TopicMatch(re *regexp.Regexp, fraction float64, minSeqs int, minPrecision float64, limit int) ([]codebook.TopicCode, int, error) {
	matched := make([]bool, c.Seqs)
	on := 0
	for s := range matched {
		matched[s] = re.MatchString(c.Text(s, 0, c.Context))
		if matched[s] {
			on++
		}
	}
	var books []codebook.BookTopics
	for _, b := range c.AllBooks() {
		site, err := nn.ParseSite(b.Site)
		if err != nil {
			return nil, 0, err
		}
		books = append(books, codebook.BookTopics{Site: site, Group: b.Group, PerSeq: interp.TopicCodes(c.SeqCodes(b), fraction)})
	}
	return codebook.RankTopicCodes(books, matched, minSeqs, minPrecision, limit), on, nil
}

// ContextCodes ranks the codes of every codebook for the context of the
// topic re matches, as the steering experiment's context method does: a
// position is in the topic's context from the first match in its sequence
// on, and codes are scored against those positions
// (codebook.RankPositionCodes, recall above interp.RegexMinRecall). It
// returns the codes and the number of in-context positions.
func (c *Cache) ContextCodes(re *regexp.Regexp, minHits int, minPrecision float64, limit int) ([]codebook.TopicCode, int, error) {
	texts := c.TokenTexts()
	pos := make([]bool, 0, len(texts))
	n := 0
	for s := 0; s < c.Seqs; s++ {
		marks := interp.MatchStarts(texts[s*c.Context:(s+1)*c.Context], re)
		first := slices.Index(marks, true)
		for t := range marks {
			in := first >= 0 && t >= first
			pos = append(pos, in)
			if in {
				n++
			}
		}
	}
	var books []codebook.BookPositions
	for _, b := range c.AllBooks() {
		site, err := nn.ParseSite(b.Site)
		if err != nil {
			return nil, 0, err
		}
		books = append(books, codebook.BookPositions{Site: site, Group: b.Group, NumCodes: b.Info.Codes, Codes: c.Codes(b)})
	}
	codes, err := codebook.RankPositionCodes(books, pos, minHits, interp.RegexMinRecall, minPrecision, limit)
	return codes, n, err
}

// Usage counts how often every code of b is active over the cache (each of
// the K slots counts).
func (c *Cache) Usage(b Book) []int {
	counts := make([]int, b.Info.Codes)
	for _, row := range c.Codes(b) {
		for _, id := range row {
			if id >= 0 && int(id) < len(counts) {
				counts[id]++
			}
		}
	}
	return counts
}
