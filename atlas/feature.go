// Package atlas writes a feature atlas: a static HTML site, browsable
// offline, with one page per hidden feature of a model (a codebook code, an
// MLP neuron, a sparse-autoencoder latent) and an index to search and
// sort them, in the spirit of Neuronpedia and SAE-Vis.
//
// The generator (Write) is plain Go over Features and knows nothing of
// models: whatever produces Features — LoadCodebook for a codebook run
// directory, LoadSAE for an SAE run directory — gets the same site. A
// Feature carries everything its page shows: how often it fires, its top-activating
// contexts with a per-token activation, a histogram of its activations, the
// tokens it promotes and suppresses through the unembedding, its precision
// for regexes and, for codes, the steering experiment's results.
//
// Corpus.Fill turns a feature's activations over a corpus of token
// sequences into those fields, so a loader only has to produce activations.
// LoadSAE does so for an SAE run's latents: Feature{Kind: KindSAE, Book:
// <the SAE's site>, ID: <latent>}, Corpus.Fill with the positions where the
// latent is above 0, TopLogits of W_U times its decoder column (mapped into
// the residual stream and through the final norm as LoadCodebook does).
package atlas

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a feature.
type Kind string

// Kinds of features.
const (
	KindCode   Kind = "code"   // a codebook code (package models/codebook)
	KindNeuron Kind = "neuron" // an MLP hidden unit, after the nonlinearity
	KindSAE    Kind = "sae"    // a sparse-autoencoder latent
)

// Token is one token of a context and the feature's activation on it (0
// where the feature is inactive).
type Token struct {
	Text string
	Act  float32
}

// Context is a window of tokens around a position where the feature is
// active: Tokens[Center] is the token at position Pos of sequence Seq.
type Context struct {
	Seq, Pos int
	Center   int
	Act      float32 // the activation at the centre (the ranking key)
	Tokens   []Token
}

// Histogram counts a feature's activations in equal-width bins over
// [Lo, Hi].
type Histogram struct {
	Lo, Hi float64
	Counts []int
}

// Logit is a token and the logit a feature's direction adds to it.
type Logit struct {
	Text  string
	Value float32
}

// TokenCount is how often a feature is active on a token.
type TokenCount struct {
	Text  string
	Count int
}

// RegexStat is a feature's precision and recall for a regex feature over
// the corpus: precision is the share of the positions where it is active
// that the regex marks (interp.MatchPositions), recall the share of marked
// positions where it is active.
type RegexStat struct {
	Pattern           string
	Precision, Recall float64
}

// Steering is one topic of a codebook run's steering experiment in which
// the code was among the patched codes: the share of samples mentioning the
// topic without steering and when the topic's codes (all of them, not this
// code alone) are forced.
type Steering struct {
	Topic, Regex string
	Precision    float64 // the code's precision for the topic's context
	Baseline     float64
	OneCode      float64 // the "one code" mode, OneCodeN codes patched
	OneCodeN     int
	AllCodes     float64 // the "all codes" mode, AllCodesN codes patched
	AllCodesN    int
}

// Feature is everything the atlas shows of one feature. Kind, Book and ID
// identify it: Book is the codebook of a code ("blocks.0.attn_preproj[3]"),
// the site of a neuron ("blocks.0.mlp_mid") or the SAE of a latent.
type Feature struct {
	Kind Kind
	Book string
	ID   int
	// Fires counts the positions where the feature is active (a code is
	// selected; a neuron or latent is above 0) among Positions.
	Fires, Positions int
	MaxAct           float32
	// ActLabel says what the activation is ("cosine score", "activation").
	ActLabel string
	Contexts []Context // top-activating first
	// Histogram of the activation where the feature is active.
	Histogram Histogram
	// TopTokens are the tokens it is most often active on; OtherTokens
	// counts its other active positions.
	TopTokens   []TokenCount
	OtherTokens int
	// Promotes and Suppresses are the tokens with the largest and the
	// smallest logits along the feature's output direction.
	Promotes, Suppresses []Logit
	Regex                []RegexStat // in the site's Regexes order
	Steering             []Steering
}

// Frequency is the share of positions where the feature is active.
func (f *Feature) Frequency() float64 {
	if f.Positions == 0 {
		return 0
	}
	return float64(f.Fires) / float64(f.Positions)
}

// Name is the feature's display name: "blocks.0.mlp code 12".
func (f *Feature) Name() string { return fmt.Sprintf("%s %s %d", f.Book, f.Kind, f.ID) }

// Slug is the feature's file name stem, unique in a site: kind, book and
// id with every character other than letters, digits, '.' and '-' as '_'.
func (f *Feature) Slug() string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
				return r
			}
			return '_'
		}, s)
	}
	return clean(string(f.Kind)) + "-" + clean(strings.TrimSuffix(strings.ReplaceAll(f.Book, "[", "."), "]")) + "-" + strconv.Itoa(f.ID)
}

// Corpus is the token sequences features are measured on: Seqs sequences of
// Context tokens, Tokens[s*Context+p] the id at position p of sequence s and
// Texts[id] its decoded text.
type Corpus struct {
	Seqs, Context int
	Tokens        []int32
	Texts         [][]byte
}

// Positions is the number of token positions.
func (c *Corpus) Positions() int { return c.Seqs * c.Context }

// Text returns the display text of the token at flat position i: invalid
// UTF-8 (a byte-level token cut out of a character) shows as U+FFFD.
func (c *Corpus) Text(i int) string { return DisplayText(c.Texts[c.Tokens[i]]) }

// SeqTexts returns the token texts of sequence s (for
// interp.MatchPositions).
func (c *Corpus) SeqTexts(s int) [][]byte {
	out := make([][]byte, c.Context)
	for p := range out {
		out[p] = c.Texts[c.Tokens[s*c.Context+p]]
	}
	return out
}

// DisplayText makes a token's bytes displayable: valid UTF-8, with invalid
// bytes as U+FFFD.
func DisplayText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// Activation is a feature's activation at flat position Pos
// (seq*Context+position) of a corpus.
type Activation struct {
	Pos int
	Act float32
}

// FillOptions say how much of a feature Corpus.Fill keeps; zero values take
// the defaults.
type FillOptions struct {
	Contexts      int // top contexts kept (40)
	Before, After int // tokens of context around the centre (10, 4)
	Bins          int // histogram bins (24)
	TopTokens     int // tokens listed (12)
	// Regexes are regex features as position masks over the corpus
	// (interp.MatchPositions per sequence), with their patterns.
	Regexes  []string
	Matched  [][]bool
	matchedN []int
}

func (o *FillOptions) defaults() {
	if o.Contexts <= 0 {
		o.Contexts = 40
	}
	if o.Before <= 0 && o.After <= 0 {
		o.Before, o.After = 10, 4
	}
	if o.Bins <= 0 {
		o.Bins = 24
	}
	if o.TopTokens <= 0 {
		o.TopTokens = 12
	}
	if o.matchedN == nil {
		o.matchedN = make([]int, len(o.Matched))
		for i, m := range o.Matched {
			for _, v := range m {
				if v {
					o.matchedN[i]++
				}
			}
		}
	}
}

// Fill sets f's Fires, Positions, MaxAct, Contexts, Histogram, TopTokens
// and Regex from acts, the positions where the feature is active (each at
// most once, in any order; acts is sorted by position in place). Contexts
// are the positions of highest activation (earliest first on ties), each
// with the feature's activation on every token of its window.
func (c *Corpus) Fill(f *Feature, acts []Activation, o FillOptions) {
	o.defaults()
	slices.SortFunc(acts, func(a, b Activation) int { return cmp.Compare(a.Pos, b.Pos) })
	f.Positions = c.Positions()
	f.Fires = len(acts)
	f.Contexts, f.TopTokens, f.OtherTokens, f.MaxAct = nil, nil, 0, 0
	f.Histogram = NewHistogram(acts, o.Bins)
	if len(acts) == 0 {
		f.Regex = c.regexStats(acts, o)
		return
	}
	f.MaxAct = acts[0].Act
	for _, a := range acts {
		f.MaxAct = max(f.MaxAct, a.Act)
	}
	// Top contexts.
	order := make([]int, len(acts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(acts[j].Act, acts[i].Act) })
	at := func(pos int) float32 {
		if i, ok := slices.BinarySearchFunc(acts, pos, func(a Activation, p int) int { return cmp.Compare(a.Pos, p) }); ok {
			return acts[i].Act
		}
		return 0
	}
	for _, i := range order[:min(o.Contexts, len(order))] {
		a := acts[i]
		s, p := a.Pos/c.Context, a.Pos%c.Context
		from, to := max(p-o.Before, 0), min(p+o.After+1, c.Context)
		x := Context{Seq: s, Pos: p, Center: p - from, Act: a.Act}
		for q := from; q < to; q++ {
			fp := s*c.Context + q
			x.Tokens = append(x.Tokens, Token{Text: c.Text(fp), Act: at(fp)})
		}
		f.Contexts = append(f.Contexts, x)
	}
	// Tokens it is active on.
	counts := map[int32]int{}
	for _, a := range acts {
		counts[c.Tokens[a.Pos]]++
	}
	ids := make([]int32, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int32) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	for _, id := range ids[:min(o.TopTokens, len(ids))] {
		f.TopTokens = append(f.TopTokens, TokenCount{Text: DisplayText(c.Texts[id]), Count: counts[id]})
	}
	for _, id := range ids[min(o.TopTokens, len(ids)):] {
		f.OtherTokens += counts[id]
	}
	f.Regex = c.regexStats(acts, o)
}

// regexStats scores acts against the regex masks of o.
func (c *Corpus) regexStats(acts []Activation, o FillOptions) []RegexStat {
	var out []RegexStat
	for i, m := range o.Matched {
		hits := 0
		for _, a := range acts {
			if a.Pos < len(m) && m[a.Pos] {
				hits++
			}
		}
		s := RegexStat{Pattern: o.Regexes[i]}
		if len(acts) > 0 {
			s.Precision = float64(hits) / float64(len(acts))
		}
		if o.matchedN[i] > 0 {
			s.Recall = float64(hits) / float64(o.matchedN[i])
		}
		out = append(out, s)
	}
	return out
}

// NewHistogram counts the activations in bins equal-width bins from the
// smallest to the largest (one bin of width 1 when they are all equal).
func NewHistogram(acts []Activation, bins int) Histogram {
	if len(acts) == 0 || bins <= 0 {
		return Histogram{}
	}
	lo, hi := float64(acts[0].Act), float64(acts[0].Act)
	for _, a := range acts {
		lo, hi = min(lo, float64(a.Act)), max(hi, float64(a.Act))
	}
	if hi == lo {
		lo, hi, bins = lo-0.5, hi+0.5, 1
	}
	h := Histogram{Lo: lo, Hi: hi, Counts: make([]int, bins)}
	for _, a := range acts {
		b := int(float64(bins) * (float64(a.Act) - lo) / (hi - lo))
		h.Counts[min(max(b, 0), bins-1)]++
	}
	return h
}

// TopLogits returns the n tokens with the largest logits (largest first)
// and the n with the smallest (smallest first); texts[i] is token i's text.
func TopLogits(logits []float32, texts [][]byte, n int) (promotes, suppresses []Logit) {
	idx := make([]int, 0, len(logits))
	for i, v := range logits {
		if !math.IsNaN(float64(v)) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	n = min(n, len(idx))
	text := func(i int) string {
		if i < len(texts) {
			return DisplayText(texts[i])
		}
		return "#" + strconv.Itoa(i)
	}
	for _, i := range idx[:n] {
		promotes = append(promotes, Logit{Text: text(i), Value: logits[i]})
	}
	for k := len(idx) - 1; k >= len(idx)-n; k-- {
		suppresses = append(suppresses, Logit{Text: text(idx[k]), Value: logits[idx[k]]})
	}
	return promotes, suppresses
}
