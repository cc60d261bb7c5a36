package codebook

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/interp"
	"github.com/hiddenlab/hiddenlab/models/lm"
	"github.com/hiddenlab/hiddenlab/plot"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// Steering is a codebook recipe's eval.steering section: the paper's
// topic-steering experiment (§4.1, Table 3). For each topic, the procedure
// finds topic codes automatically in the attention codebooks, then samples
// continuations of the prompts with those codes forced at every position of
// the prompt and of every generated token, and reports the share of samples
// whose text matches the topic's regex (case-insensitive) against the same
// sampling without intervention.
//
// Finding a topic's codes (documented in the report): the model runs over
// SearchSeqs training windows and every attention (attn_preproj) codebook's
// codes are recorded; then, by Method:
//
//   - "topic", the paper's topic codes (§4 step 5): a code is a topic code of
//     a window if it is active on more than Fraction of the window's tokens;
//     a window is on topic if the regex matches its text; a code's precision
//     is the share of the windows it is a topic code of that are on topic,
//     its hits the on-topic windows it is a topic code of;
//   - "context": a position is in the topic's context from the first match
//     of the regex in its window on (a causal model can know the topic only
//     from there); a code's precision is the share of its activations that
//     are in topic context, its hits those activations, its recall their
//     share of the in-context positions;
//   - "token": the regex code search of §4 step 3: the positions of the
//     tokens the regex covers (interp.MatchPositions), scored the same way.
//
// Codes with at least MinHits hits (and, by position, recall above
// interp.RegexMinRecall) and precision ≥ MinPrecision are ranked by
// precision, then hits, and at most MaxCodes are patched (the paper
// filtered its candidates by hand).
//
// Modes: "one code" writes a codebook's topic codes into its least similar
// slots (the best code into slot k−1, the next into k−2, …; at most k per
// codebook), keeping the other selected codes; "all codes" writes each
// codebook's best topic code into all k slots.
type Steering struct {
	Topics  []SteerTopic `key:"topics"`
	Prompts []string     `key:"prompts"` // "" is the start token alone
	Samples int          `key:"samples"` // per prompt
	// Tokens is the number of new tokens per sample (capped by the context).
	Tokens      int     `key:"tokens"`
	Temperature float64 `key:"temperature"` // sampling temperature; no top-k
	SearchSeqs  int     `key:"search_seqs"` // training windows searched for topic codes
	// Method finds the codes: topic (default), context or token.
	Method string `key:"method"`
	// Fraction is the share of a window's tokens a code must be active on to
	// be a topic code of it (method topic).
	Fraction     float64 `key:"fraction"`
	MinPrecision float64 `key:"min_precision"`
	MinHits      int     `key:"min_hits"`
	MaxCodes     int     `key:"max_codes"`
	// Layers restricts the search to these layers' attention codebooks
	// (empty: every layer).
	Layers []int  `key:"layers"`
	Seed   uint64 `key:"seed"` // sampling seed, the same for every condition
}

// Methods of finding a topic's codes (Steering.Method).
const (
	MethodTopic   = "topic"   // codes active on most tokens of on-topic windows
	MethodContext = "context" // codes active where the topic has been mentioned
	MethodToken   = "token"   // codes active on the topic's own tokens
)

// SteerTopic is a topic to steer towards: a name and a regex matched
// case-insensitively against sampled text.
type SteerTopic struct {
	Name  string `key:"name"`
	Regex string `key:"regex"`
}

// DefaultSteering holds the paper's protocol (4 prompts × 10 samples,
// temperature 1) and this package's search defaults.
func DefaultSteering() Steering {
	return Steering{
		Prompts: []string{"", "Once upon a time,", "Once there was a", "A long time ago,"},
		Samples: 10, Tokens: 200, Temperature: 1, SearchSeqs: 1024, Method: MethodTopic,
		Fraction: interp.DefaultTopicFraction, MinPrecision: 0.5, MinHits: 3, MaxCodes: 16, Seed: 1,
	}
}

// fill sets the zero fields of s to the defaults.
func (s *Steering) fill() {
	d := DefaultSteering()
	if s.Prompts == nil {
		s.Prompts = d.Prompts
	}
	for _, f := range []struct{ p, d *int }{{&s.Samples, &d.Samples}, {&s.Tokens, &d.Tokens},
		{&s.SearchSeqs, &d.SearchSeqs}, {&s.MinHits, &d.MinHits}, {&s.MaxCodes, &d.MaxCodes}} {
		if *f.p == 0 {
			*f.p = *f.d
		}
	}
	for _, f := range []struct{ p, d *float64 }{{&s.Temperature, &d.Temperature}, {&s.Fraction, &d.Fraction},
		{&s.MinPrecision, &d.MinPrecision}} {
		if *f.p == 0 {
			*f.p = *f.d
		}
	}
	if s.Seed == 0 {
		s.Seed = d.Seed
	}
	if s.Method == "" {
		s.Method = d.Method
	}
}

// check validates s, naming the recipe key of a bad value.
func (s *Steering) check() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("eval.steering.%s: %s", key, fmt.Sprintf(format, args...))
	}
	if len(s.Topics) == 0 {
		return bad("topics", "needs at least one topic ({name, regex})")
	}
	for i, t := range s.Topics {
		if t.Name == "" || t.Regex == "" {
			return bad(fmt.Sprintf("topics[%d]", i), "needs a name and a regex")
		}
		if _, err := regexp.Compile("(?i)" + t.Regex); err != nil {
			return bad(fmt.Sprintf("topics[%d].regex", i), "%v", err)
		}
	}
	switch {
	case len(s.Prompts) == 0:
		return bad("prompts", "needs at least one prompt")
	case s.Method != MethodTopic && s.Method != MethodContext && s.Method != MethodToken:
		return bad("method", "want %s, %s or %s, got %q", MethodTopic, MethodContext, MethodToken, s.Method)
	case s.Samples < 0 || s.Tokens < 0 || s.SearchSeqs < 0 || s.MinHits < 0 || s.MaxCodes < 0:
		return bad("samples", "counts must not be negative")
	case s.Temperature < 0:
		return bad("temperature", "must not be negative, got %v", s.Temperature)
	case s.Fraction <= 0 || s.Fraction >= 1:
		return bad("fraction", "must be in (0, 1), got %v", s.Fraction)
	}
	return nil
}

// TopicCode is a code found for a topic (see Steering.Method): it fires in
// Fires windows (method topic: it is a topic code of them) or at Fires
// positions (context, token), Hits of them on topic.
type TopicCode struct {
	Site      nn.Site
	Group     int
	Code      int
	Fires     int
	Hits      int
	Precision float64 // Hits / Fires
	Recall    float64 // Hits / on-topic windows or positions
}

// Book names the code's codebook as the reports and the CLI do:
// "blocks.0.attn_preproj[3]", or the site alone for a vanilla codebook
// (Group −1).
func (c TopicCode) Book() string { return BookName(c.Site, c.Group) }

// BookName names group g of the codebook at site ("blocks.L.point[g]"), or
// the site alone when g < 0 (a vanilla codebook).
func BookName(site nn.Site, g int) string {
	if g < 0 {
		return site.String()
	}
	return fmt.Sprintf("%s[%d]", site, g)
}

// BookTopics is one codebook's topic codes per sequence (as
// interp.TopicCodes returns them).
type BookTopics struct {
	Site   nn.Site
	Group  int // −1 for a vanilla codebook
	PerSeq [][]int32
}

// RankTopicCodes ranks the books' topic codes against the sequences
// matched (interp.RankSequenceCodes) and names their codebooks.
func RankTopicCodes(books []BookTopics, matched []bool, minHits int, minPrecision float64, limit int) []TopicCode {
	perSeq := make([][][]int32, len(books))
	for i, b := range books {
		perSeq[i] = b.PerSeq
	}
	return topicCodes(interp.RankSequenceCodes(perSeq, matched, minHits, minPrecision, limit), func(i int) (nn.Site, int) {
		return books[i].Site, books[i].Group
	})
}

// topicCodes names the codebook of each ranked code.
func topicCodes(rs []interp.Ranked, book func(i int) (nn.Site, int)) []TopicCode {
	out := make([]TopicCode, len(rs))
	for i, r := range rs {
		site, g := book(r.Book)
		out[i] = TopicCode{Site: site, Group: g, Code: r.Code, Fires: r.Fires, Hits: r.Hits, Precision: r.Precision, Recall: r.Recall}
	}
	return out
}

// BookPositions is one codebook's codes at every position, [positions][K].
type BookPositions struct {
	Site     nn.Site
	Group    int // −1 for a vanilla codebook
	NumCodes int
	Codes    [][]int32
}

// RankPositionCodes ranks the books' codes against the positions matched
// (interp.RankPositionCodes) and names their codebooks.
func RankPositionCodes(books []BookPositions, matched []bool, minHits int, minRecall, minPrecision float64, limit int) ([]TopicCode, error) {
	pcs := make([]interp.PositionCodes, len(books))
	for i, b := range books {
		pcs[i] = interp.PositionCodes{Codes: b.Codes, NumCodes: b.NumCodes}
	}
	rs, err := interp.RankPositionCodes(pcs, matched, minHits, minRecall, minPrecision, limit)
	if err != nil {
		var be *interp.BookError
		if errors.As(err, &be) {
			return nil, fmt.Errorf("codebook %s: %w", BookName(books[be.Book].Site, books[be.Book].Group), be.Err)
		}
		return nil, err
	}
	return topicCodes(rs, func(i int) (nn.Site, int) { return books[i].Site, books[i].Group }), nil
}

// OneCodePatches is the "one code" mode: in each codebook, the topic codes
// (best first) overwrite the least similar slots, K−1, K−2, …, at every
// position; codes beyond K in one codebook are dropped. It returns the
// interventions per site and the number of codes patched.
func OneCodePatches(codes []TopicCode, K int) (map[nn.Site]*Intervention, int) {
	out := map[nn.Site]*Intervention{}
	used := map[string]int{}
	n := 0
	for _, c := range codes {
		book := c.Book()
		if used[book] >= K {
			continue
		}
		iv := out[c.Site]
		if iv == nil {
			iv = &Intervention{}
			out[c.Site] = iv
		}
		iv.Patches = append(iv.Patches, Patch{Group: max(c.Group, 0), Slot: K - 1 - used[book], Code: c.Code})
		used[book]++
		n++
	}
	return out, n
}

// AllCodesPatches is the "all codes" mode: each codebook's best topic code
// (the first of codes in it) fills all K slots at every position. It
// returns the interventions per site and the number of codes patched (one
// per codebook).
func AllCodesPatches(codes []TopicCode) (map[nn.Site]*Intervention, int) {
	out := map[nn.Site]*Intervention{}
	seen := map[string]bool{}
	n := 0
	for _, c := range codes {
		if seen[c.Book()] {
			continue
		}
		seen[c.Book()] = true
		iv := out[c.Site]
		if iv == nil {
			iv = &Intervention{}
			out[c.Site] = iv
		}
		iv.Patches = append(iv.Patches, Patch{Group: max(c.Group, 0), Slot: AllSlots, Code: c.Code})
		n++
	}
	return out, n
}

// RecordCodes runs m (in eval mode, without gradients) over rows sequences
// of T token ids x (row-major), batch rows at a time, and returns each
// codebook site's code ids, [rows, T, G, K] row-major.
func RecordCodes(m *Model, x []int64, rows, T, batch int) map[nn.Site][]int32 {
	out := map[nn.Site][]int32{}
	wasTraining := m.Store().Training()
	m.Store().Train(false)
	defer m.Store().Train(wasTraining)
	m.SetRecord(true)
	defer m.SetRecord(false)
	torch.NoGrad(func() {
		for start := 0; start < rows; start += batch {
			n := min(batch, rows-start)
			torch.WithScope(func() {
				m.Forward(torch.FromSlice(x[start*T:(start+n)*T], []int{n, T}, deviceOf(m)))
				for _, s := range m.Sites {
					out[s] = append(out[s], torch.Values[int32](m.Layers[s].IDs())...)
				}
			})
		}
	})
	return out
}

// SeqTopics returns the topic codes per sequence of every group of a site's
// ids ([rows, T, G, K]): codes active on more than fraction of a sequence's
// positions.
func SeqTopics(site nn.Site, l *Layer, ids []int32, rows, T int, fraction float64) []BookTopics {
	var out []BookTopics
	for g := 0; g < l.G; g++ {
		seqs := make([][][]int32, rows)
		for r := range seqs {
			seqs[r] = make([][]int32, T)
			for t := range seqs[r] {
				at := ((r*T+t)*l.G + g) * l.K
				seqs[r][t] = ids[at : at+l.K]
			}
		}
		group := g
		if l.G == 1 {
			group = -1
		}
		out = append(out, BookTopics{Site: site, Group: group, PerSeq: interp.TopicCodes(seqs, fraction)})
	}
	return out
}

// SitePositions returns every group's codes of a site's ids ([rows, T, G,
// K]) per position, [rows·T][K] (slices into ids).
func SitePositions(site nn.Site, l *Layer, ids []int32) []BookPositions {
	var out []BookPositions
	n := len(ids) / (l.G * l.K)
	for g := 0; g < l.G; g++ {
		codes := make([][]int32, n)
		for i := range codes {
			at := (i*l.G + g) * l.K
			codes[i] = ids[at : at+l.K : at+l.K]
		}
		group := g
		if l.G == 1 {
			group = -1
		}
		out = append(out, BookPositions{Site: site, Group: group, NumCodes: l.C, Codes: codes})
	}
	return out
}

// searcher finds a topic's codes in the recorded windows by the method.
type searcher struct {
	s         Steering
	rows, T   int
	texts     []string        // per window
	tokens    [][]byte        // per position: the token's text (position methods)
	topics    []BookTopics    // method topic
	positions []BookPositions // methods context and token
}

// find returns the topic's codes, the number of on-topic windows and the
// number of topic codes by the paper's definition (method topic) with the
// same thresholds, for comparison.
func (sr *searcher) find(re *regexp.Regexp) (codes []TopicCode, on, paper int, err error) {
	s := sr.s
	matched := make([]bool, sr.rows)
	for r, t := range sr.texts {
		matched[r] = re.MatchString(t)
		if matched[r] {
			on++
		}
	}
	topic := RankTopicCodes(sr.topics, matched, s.MinHits, s.MinPrecision, s.MaxCodes)
	if s.Method == MethodTopic {
		return topic, on, len(topic), nil
	}
	pos := make([]bool, 0, sr.rows*sr.T)
	for r := 0; r < sr.rows; r++ {
		win := sr.tokens[r*sr.T : (r+1)*sr.T]
		if s.Method == MethodToken {
			pos = append(pos, interp.MatchPositions(win, re)...)
			continue
		}
		// context: from the first match on
		marks := interp.MatchStarts(win, re)
		first := slices.Index(marks, true)
		for t := range marks {
			pos = append(pos, first >= 0 && t >= first)
		}
	}
	codes, err = RankPositionCodes(sr.positions, pos, s.MinHits, interp.RegexMinRecall, s.MinPrecision, s.MaxCodes)
	return codes, on, len(topic), err
}

// SteerResult is the steering outcome for one topic.
type SteerResult struct {
	Topic, Regex string
	Codes        []TopicCode
	OnTopic      int // training windows matching the regex (of Searched)
	Searched     int // training windows searched
	// PaperTopicCodes counts the codes the paper's definition (method
	// topic) finds with the same thresholds.
	PaperTopicCodes int
	Baseline        float64 // share of unsteered samples mentioning the topic
	OneCode         float64
	OneCodeN        int // codes patched in the one-code mode
	AllCodes        float64
	AllCodesN       int // codes patched (one per codebook) in the all-codes mode
	// Examples are one steered sample per mode (one code, all codes).
	Examples [2]string
}

// SteerReport is the outcome of the steering experiment.
type SteerReport struct {
	Method   string // how the codes were found (Steering.Method)
	Samples  int    // generations per condition
	Tokens   int    // new tokens per generation
	Topics   []SteerResult
	Baseline []string // the unsteered samples
}

// steerer runs the steering experiment of one model and dataset.
type steerer struct {
	m     *Model
	d     lm.Data
	s     Steering
	batch int
}

// Steer runs the steering experiment (see Steering) for m trained on d,
// searching batch-row training batches for topic codes.
func Steer(m *Model, d lm.Data, s Steering, batch int) (*SteerReport, error) {
	s.fill()
	if err := s.check(); err != nil {
		return nil, err
	}
	st := &steerer{m: m, d: d, s: s, batch: max(batch, 1)}
	var rep *SteerReport
	var err, runErr error
	torch.NoGrad(func() {
		err = torch.Try(func() { rep, runErr = st.run() })
	})
	if err == nil {
		err = runErr
	}
	return rep, err
}

func (st *steerer) run() (*SteerReport, error) {
	s := st.s
	// 1. Codes of the attention codebooks over training windows.
	var sites []nn.Site
	for _, site := range st.m.Sites {
		if site.Point == nn.AttnPreProj && (len(s.Layers) == 0 || slices.Contains(s.Layers, site.Layer)) {
			sites = append(sites, site)
		}
	}
	if len(sites) == 0 {
		return nil, fmt.Errorf("eval.steering: the model has no attention (attn_preproj) codebook in layers %v", s.Layers)
	}
	T := st.d.Context()
	var x []int64
	for step := 0; len(x) < s.SearchSeqs*T; step++ {
		b, _ := st.d.Batch(1<<30+step, st.batch) // windows past any training step
		x = append(x, b...)
	}
	rows := s.SearchSeqs
	x = x[:rows*T]
	ids := RecordCodes(st.m, x, rows, T, st.batch)
	sr := &searcher{s: s, rows: rows, T: T, texts: make([]string, rows)}
	for r := range sr.texts {
		sr.texts[r] = st.d.Decode(x[r*T : (r+1)*T])
	}
	for _, site := range sites {
		l := st.m.Layers[site]
		sr.topics = append(sr.topics, SeqTopics(site, l, ids[site], rows, T, s.Fraction)...)
		if s.Method != MethodTopic {
			sr.positions = append(sr.positions, SitePositions(site, l, ids[site])...)
		}
	}
	if s.Method != MethodTopic {
		vocab := make([][]byte, st.d.Vocab())
		for id := range vocab {
			vocab[id] = []byte(st.d.Decode([]int64{int64(id)}))
		}
		sr.tokens = make([][]byte, len(x))
		for i, id := range x {
			sr.tokens[i] = vocab[id]
		}
	}

	// 2. Prompts and the unsteered samples.
	K := st.m.Layers[sites[0]].K
	rep := &SteerReport{Samples: len(s.Prompts) * s.Samples, Method: s.Method}
	baseline, err := st.generate(nil)
	if err != nil {
		return nil, err
	}
	rep.Baseline = baseline
	for _, topic := range s.Topics {
		re := regexp.MustCompile("(?i)" + topic.Regex)
		res := SteerResult{Topic: topic.Name, Regex: topic.Regex, Searched: rows}
		if res.Codes, res.OnTopic, res.PaperTopicCodes, err = sr.find(re); err != nil {
			return nil, err
		}
		res.Baseline = share(baseline, re)
		if len(res.Codes) > 0 {
			one, n1 := OneCodePatches(res.Codes, K)
			all, n2 := AllCodesPatches(res.Codes)
			res.OneCodeN, res.AllCodesN = n1, n2
			for i, iv := range []map[nn.Site]*Intervention{one, all} {
				out, err := st.generate(iv)
				if err != nil {
					return nil, err
				}
				rate := share(out, re)
				if i == 0 {
					res.OneCode = rate
				} else {
					res.AllCodes = rate
				}
				res.Examples[i] = firstMatch(out, re)
			}
		} else {
			res.OneCode, res.AllCodes = res.Baseline, res.Baseline
		}
		rep.Topics = append(rep.Topics, res)
	}
	rep.Tokens = st.tokens()
	return rep, nil
}

// tokens is the number of new tokens per sample: s.Tokens capped by the
// context left after the longest prompt.
func (st *steerer) tokens() int {
	longest := 0
	for _, p := range st.s.Prompts {
		longest = max(longest, 1+len(st.d.Encode(p)))
	}
	return max(1, min(st.s.Tokens, st.m.Config.Context-longest))
}

// generate samples every prompt s.Samples times with the interventions in
// place (nil: none), from the same seed for every condition, and returns
// the texts (prompt + continuation).
func (st *steerer) generate(ivs map[nn.Site]*Intervention) ([]string, error) {
	s := st.s
	var prompts [][]int64
	var heads []string
	for _, p := range s.Prompts {
		ids := append([]int64{st.d.Start()}, st.d.Encode(p)...)
		for i := 0; i < s.Samples; i++ {
			prompts = append(prompts, ids)
			heads = append(heads, p)
		}
	}
	for site, iv := range ivs {
		st.m.Layers[site].Intervention = iv
	}
	defer st.m.ClearInterventions()
	torch.ManualSeed(s.Seed)
	out, err := st.m.Generate(prompts, nn.GenerateOptions{MaxNew: st.tokens(), Stop: -1,
		Sampling: nn.Sampling{Temperature: s.Temperature}})
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(out))
	for i, ids := range out {
		texts[i] = heads[i] + st.d.Decode(ids)
	}
	return texts, nil
}

// share is the fraction of texts re matches.
func share(texts []string, re *regexp.Regexp) float64 {
	if len(texts) == 0 {
		return 0
	}
	n := 0
	for _, t := range texts {
		if re.MatchString(t) {
			n++
		}
	}
	return float64(n) / float64(len(texts))
}

// firstMatch returns the first text re matches (or the first text).
func firstMatch(texts []string, re *regexp.Regexp) string {
	for _, t := range texts {
		if re.MatchString(t) {
			return t
		}
	}
	if len(texts) > 0 {
		return texts[0]
	}
	return ""
}

// Markdown renders the steering table (the Table 3 analogue), the codes
// patched and a steered sample per topic; figure, if not empty, is the
// bar chart's file name beside the report.
func (r *SteerReport) Markdown(s Steering, figure string) string {
	s.fill()
	var b strings.Builder
	fmt.Fprintf(&b, "## Steering with topic codes (paper §4.1, Table 3)\n\n")
	fmt.Fprintf(&b, "%d samples per condition (%d prompt(s) × %d; prompts %s), %d new tokens each, temperature %g, no top-k, the same seed for every condition; a sample counts when the topic's regex matches its text (case-insensitive). Topic codes are forced at every position of the prompt and of every generated token.\n\n",
		r.Samples, len(s.Prompts), s.Samples, quoteList(s.Prompts), r.Tokens, s.Temperature)
	fmt.Fprintf(&b, "Codes were chosen automatically over %d training windows (a window is on topic when the regex matches it), by method **%s**: %s Codes with ≥ %d hits and precision ≥ %.2f are ranked by precision and at most %d are patched. One code: a codebook's codes overwrite its least similar slots (k−1, k−2, …); all codes: each codebook's best code fills all k slots.\n\n",
		s.SearchSeqs, s.Method, methodText(s), s.MinHits, s.MinPrecision, s.MaxCodes)
	b.WriteString("| topic | regex | on-topic windows | paper topic codes | baseline % | one code % (codes) | all codes % (codes) |\n|---|---|---|---|---|---|---|\n")
	for _, t := range r.Topics {
		if len(t.Codes) == 0 {
			fmt.Fprintf(&b, "| %s | `%s` | %d / %d | %d | %.1f | no code found | no code found |\n",
				t.Topic, t.Regex, t.OnTopic, t.Searched, t.PaperTopicCodes, 100*t.Baseline)
			continue
		}
		fmt.Fprintf(&b, "| %s | `%s` | %d / %d | %d | %.1f | %.1f (%d) | %.1f (%d) |\n",
			t.Topic, t.Regex, t.OnTopic, t.Searched, t.PaperTopicCodes, 100*t.Baseline, 100*t.OneCode, t.OneCodeN, 100*t.AllCodes, t.AllCodesN)
	}
	if s.Method != MethodTopic {
		fmt.Fprintf(&b, "\n*paper topic codes*: how many codes the paper's definition (active on > %.0f%% of a window's tokens, precision over windows, the same thresholds) finds, for comparison.\n", 100*s.Fraction)
	}
	if figure != "" {
		fmt.Fprintf(&b, "\n![steering](%s)\n", figure)
	}
	unit := "positions"
	if s.Method == MethodTopic {
		unit = "windows"
	}
	table, rows := r.codesTable(unit)
	if rows > maxInlineRows {
		fmt.Fprintf(&b, "\n### Codes patched\n\n%d codes over %d topics: the table is in [%s](%s).\n", rows, len(r.Topics), CodesFile, CodesFile)
	} else {
		b.WriteString("\n### Codes patched\n\n" + table)
	}
	b.WriteString("\n### Steered samples\n\nThe first sample of each mode that mentions the topic (or the first sample):\n\n")
	for _, t := range r.Topics {
		if len(t.Codes) == 0 {
			continue
		}
		for i, mode := range []string{"one code", "all codes"} {
			fmt.Fprintf(&b, "**%s, %s**\n\n```\n%s\n```\n\n", t.Topic, mode, t.Examples[i])
		}
	}
	return b.String()
}

// maxInlineRows is the longest table the report shows inline; longer ones
// go to their own file, linked from it.
const maxInlineRows = 20

// CodesFile holds the table of patched codes when it is too long for the
// report.
const CodesFile = "steering_codes.md"

// codesTable is the table of patched codes and its number of rows.
func (r *SteerReport) codesTable(unit string) (string, int) {
	var b strings.Builder
	fmt.Fprintf(&b, "| topic | codebook | code | precision | recall | hits (%s) | fires (%s) |\n|---|---|---|---|---|---|---|\n", unit, unit)
	n := 0
	for _, t := range r.Topics {
		for _, c := range t.Codes {
			fmt.Fprintf(&b, "| %s | %s | %d | %.2f | %.3f | %d | %d |\n", t.Topic, c.Book(), c.Code, c.Precision, c.Recall, c.Hits, c.Fires)
			n++
		}
	}
	return b.String(), n
}

// methodText explains s.Method for the report.
func methodText(s Steering) string {
	switch s.Method {
	case MethodContext:
		return "a position is in the topic's context from the regex's first match in its window on; a code's precision is the share of its activations in topic context, its hits those activations."
	case MethodToken:
		return "the regex code search of §4 step 3: a code's precision is the share of its activations on the tokens the regex covers, its hits those activations (recall > 1%)."
	}
	return fmt.Sprintf("the paper's topic codes (§4 step 5): a code is a topic code of a window when it is active on more than %.0f%% of its tokens; its precision is the share of those windows on topic, its hits the on-topic ones.", 100*s.Fraction)
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// Extra returns the steering numbers for a run's summary (sweeps read them
// as extra.<key>): per topic steer_<topic>_baseline, _one_code, _all_codes
// (shares of the samples) and _one_code_n, _all_codes_n (codes patched),
// and steer_mean_baseline, _one_code, _all_codes over the topics.
func (r *SteerReport) Extra() map[string]any {
	out := map[string]any{}
	var base, one, all float64
	for _, t := range r.Topics {
		key := "steer_" + strings.ReplaceAll(strings.ToLower(t.Topic), " ", "_")
		out[key+"_baseline"] = t.Baseline
		out[key+"_one_code"] = t.OneCode
		out[key+"_one_code_n"] = t.OneCodeN
		out[key+"_all_codes"] = t.AllCodes
		out[key+"_all_codes_n"] = t.AllCodesN
		base += t.Baseline / float64(len(r.Topics))
		one += t.OneCode / float64(len(r.Topics))
		all += t.AllCodes / float64(len(r.Topics))
	}
	if len(r.Topics) > 0 {
		out["steer_mean_baseline"], out["steer_mean_one_code"], out["steer_mean_all_codes"] = base, one, all
	}
	return out
}

// Save writes the report as JSON (codes, rates and every baseline sample)
// to path, atomically.
func (r *SteerReport) Save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicio.WriteFile(path, append(b, '\n'), 0o644)
}

// Figure draws baseline, one-code and all-codes rates per topic as grouped
// bars into path.
func (r *SteerReport) Figure(path string) error {
	labels := make([]string, len(r.Topics))
	var base, one, all []float64
	for i, t := range r.Topics {
		labels[i] = t.Topic
		base = append(base, 100*t.Baseline)
		one = append(one, 100*t.OneCode)
		all = append(all, 100*t.AllCodes)
	}
	return plot.Bars(path, plot.Figure{Title: "Steering with topic codes", YLabel: "% of samples mentioning the topic"},
		plot.BarGroup{Name: "baseline", Labels: labels, Values: base},
		plot.BarGroup{Name: "one code", Labels: labels, Values: one},
		plot.BarGroup{Name: "all codes", Labels: labels, Values: all})
}

// steerSection runs the steering experiment for the report: it writes
// steering.json and steering.png into dir and returns the Markdown.
func steerSection(m *Model, d lm.Data, s Steering, batch int, dir string) (*SteerReport, string, error) {
	rep, err := Steer(m, d, s, batch)
	if err != nil {
		return nil, "", err
	}
	if err := rep.Save(filepath.Join(dir, "steering.json")); err != nil {
		return nil, "", err
	}
	fig := "steering.png"
	if err := rep.Figure(filepath.Join(dir, fig)); err != nil {
		fig = ""
	}
	unit := "positions"
	if s.Method == MethodTopic {
		unit = "windows"
	}
	if table, rows := rep.codesTable(unit); rows > maxInlineRows {
		if err := atomicio.WriteFile(filepath.Join(dir, CodesFile), []byte("# Codes patched in the steering experiment\n\n"+table), 0o644); err != nil {
			return nil, "", err
		}
	}
	return rep, rep.Markdown(s, fig), nil
}
