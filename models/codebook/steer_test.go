package codebook

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/runner"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

var (
	attn0 = nn.Site{Layer: 0, Point: nn.AttnPreProj}
	attn1 = nn.Site{Layer: 1, Point: nn.AttnPreProj}
)

func TestRankTopicCodes(t *testing.T) {
	// Three sequences on topic (0, 1, 2), two off (3, 4).
	matched := []bool{true, true, true, false, false}
	books := []BookTopics{
		{Site: attn0, Group: 0, PerSeq: [][]int32{{5}, {5, 7}, {5}, {7}, {}}},
		{Site: attn0, Group: 1, PerSeq: [][]int32{{2}, {2}, {}, {2}, {2}}},
		{Site: attn1, Group: 0, PerSeq: [][]int32{{9}, {9}, {9}, {}, {}}},
	}
	for _, c := range []struct {
		name    string
		minSeqs int
		minPrec float64
		limit   int
		want    []string // book:code
	}{
		{"all precise codes, precision then hits then book order", 1, 0.5, 0,
			[]string{"blocks.0.attn_preproj[0]:5", "blocks.1.attn_preproj[0]:9", "blocks.0.attn_preproj[1]:2", "blocks.0.attn_preproj[0]:7"}},
		{"support", 3, 0.5, 0, []string{"blocks.0.attn_preproj[0]:5", "blocks.1.attn_preproj[0]:9"}},
		{"precision", 1, 0.9, 0, []string{"blocks.0.attn_preproj[0]:5", "blocks.1.attn_preproj[0]:9"}},
		{"limit", 1, 0, 1, []string{"blocks.0.attn_preproj[0]:5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, tc := range RankTopicCodes(books, matched, c.minSeqs, c.minPrec, c.limit) {
				got = append(got, tc.Book()+":"+strconv.Itoa(tc.Code))
			}
			require.Equal(t, c.want, got)
		})
	}
	top := RankTopicCodes(books, matched, 1, 0, 1)[0]
	require.Equal(t, TopicCode{Site: attn0, Group: 0, Code: 5, Fires: 3, Hits: 3, Precision: 1, Recall: 1}, top)
}

func TestRankPositionCodes(t *testing.T) {
	// Six positions; matched 1, 2, 3.
	matched := []bool{false, true, true, true, false, false}
	books := []BookPositions{
		{Site: attn0, Group: 0, NumCodes: 4, Codes: [][]int32{{0, 1}, {2, 1}, {2, 1}, {2, 3}, {0, 3}, {0, 1}}},
		{Site: attn1, Group: -1, NumCodes: 4, Codes: [][]int32{{3}, {3}, {3}, {1}, {1}, {1}}},
	}
	for _, c := range []struct {
		name    string
		minHits int
		minPrec float64
		limit   int
		want    []string // book:code hits/fires
	}{
		// code 2 fires on the three matched positions only; 3 of group 0 on
		// one of two; 1 of group 0 on two of four; attn1's 3 on two of three.
		{"all", 1, 0, 0, []string{"blocks.0.attn_preproj[0]:2 3/3", "blocks.1.attn_preproj:3 2/3",
			"blocks.0.attn_preproj[0]:1 2/4", "blocks.0.attn_preproj[0]:3 1/2", "blocks.1.attn_preproj:1 1/3"}},
		{"hits", 2, 0, 0, []string{"blocks.0.attn_preproj[0]:2 3/3", "blocks.1.attn_preproj:3 2/3", "blocks.0.attn_preproj[0]:1 2/4"}},
		{"precision", 1, 0.6, 0, []string{"blocks.0.attn_preproj[0]:2 3/3", "blocks.1.attn_preproj:3 2/3"}},
		{"limit", 1, 0, 2, []string{"blocks.0.attn_preproj[0]:2 3/3", "blocks.1.attn_preproj:3 2/3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			codes, err := RankPositionCodes(books, matched, c.minHits, 0.01, c.minPrec, c.limit)
			require.NoError(t, err)
			var got []string
			for _, tc := range codes {
				got = append(got, fmt.Sprintf("%s:%d %d/%d", tc.Book(), tc.Code, tc.Hits, tc.Fires))
			}
			require.Equal(t, c.want, got)
		})
	}
	_, err := RankPositionCodes([]BookPositions{{Site: attn0, NumCodes: 2, Codes: [][]int32{{5}}}}, []bool{true}, 1, 0, 0, 0)
	require.ErrorContains(t, err, "codebook blocks.0.attn_preproj[0]: interp: code id 5 at position 0 is not below numCodes = 2")
}

// TestSearcherContext: the context method marks the positions from a
// window's first match on.
func TestSearcherContext(t *testing.T) {
	tok := func(ss ...string) [][]byte {
		out := make([][]byte, len(ss))
		for i, s := range ss {
			out[i] = []byte(s)
		}
		return out
	}
	// Two windows of four tokens; code 7 fires from " dog" on in window 0,
	// code 8 before it; window 1 has no dog and code 7 once.
	sr := &searcher{s: Steering{Method: MethodContext, MinHits: 1, MaxCodes: 5}, rows: 2, T: 4,
		texts:  []string{"a big dog ran", "a cat sat down"},
		tokens: tok("a", " big", " dog", " ran", "a", " cat", " sat", " down"),
		positions: []BookPositions{{Site: attn0, Group: -1, NumCodes: 10,
			Codes: [][]int32{{8}, {8}, {7}, {7}, {1}, {7}, {1}, {1}}}},
	}
	codes, on, paper, err := sr.find(regexp.MustCompile(`(?i)\bdog`))
	require.NoError(t, err)
	require.Equal(t, 1, on)
	require.Zero(t, paper)
	require.Len(t, codes, 1)
	require.Equal(t, TopicCode{Site: attn0, Group: -1, Code: 7, Fires: 3, Hits: 2, Precision: 2.0 / 3, Recall: 1}, codes[0])

	sr.s.Method = MethodToken
	codes, _, _, err = sr.find(regexp.MustCompile(`(?i)\bdog`))
	require.NoError(t, err)
	require.Equal(t, 7, codes[0].Code)
	require.Equal(t, 1, codes[0].Hits, "only the dog token")
}

func TestPatchModes(t *testing.T) {
	codes := []TopicCode{
		{Site: attn0, Group: 1, Code: 10}, {Site: attn0, Group: 1, Code: 11}, {Site: attn0, Group: 1, Code: 12},
		{Site: attn1, Group: 0, Code: 20}, {Site: attn0, Group: 2, Code: 30},
	}
	one, n := OneCodePatches(codes, 2)
	require.Equal(t, 4, n, "at most k = 2 codes per codebook")
	require.Equal(t, []Patch{{Group: 1, Slot: 1, Code: 10}, {Group: 1, Slot: 0, Code: 11}, {Group: 2, Slot: 1, Code: 30}}, one[attn0].Patches)
	require.Equal(t, []Patch{{Group: 0, Slot: 1, Code: 20}}, one[attn1].Patches)

	all, n := AllCodesPatches(codes)
	require.Equal(t, 3, n, "one code per codebook")
	require.Equal(t, []Patch{{Group: 1, Slot: AllSlots, Code: 10}, {Group: 2, Slot: AllSlots, Code: 30}}, all[attn0].Patches)
	require.Equal(t, []Patch{{Group: 0, Slot: AllSlots, Code: 20}}, all[attn1].Patches)

	// A vanilla codebook (group −1) patches group 0.
	one, _ = OneCodePatches([]TopicCode{{Site: attn1, Group: -1, Code: 3}}, 4)
	require.Equal(t, []Patch{{Group: 0, Slot: 3, Code: 3}}, one[attn1].Patches)
}

func TestSteeringConfig(t *testing.T) {
	ok := Steering{Topics: []SteerTopic{{Name: "cat", Regex: `\bcat`}}}
	ok.fill()
	require.NoError(t, ok.check())
	require.Equal(t, 10, ok.Samples)
	require.Len(t, ok.Prompts, 4)
	for _, c := range []struct {
		name string
		edit func(*Steering)
		want string
	}{
		{"no topics", func(s *Steering) { s.Topics = nil }, "eval.steering.topics: needs at least one topic"},
		{"bad regex", func(s *Steering) { s.Topics[0].Regex = "(" }, "eval.steering.topics[0].regex: error parsing regexp"},
		{"unnamed", func(s *Steering) { s.Topics[0].Name = "" }, "eval.steering.topics[0]: needs a name and a regex"},
		{"fraction", func(s *Steering) { s.Fraction = 1.5 }, "eval.steering.fraction: must be in (0, 1)"},
		{"method", func(s *Steering) { s.Method = "best" }, `eval.steering.method: want topic, context or token, got "best"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			s.Topics = append([]SteerTopic(nil), ok.Topics...)
			c.edit(&s)
			err := s.check()
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

// storyText is a small corpus where "cat" and "dog" stories alternate.
func storyText() string {
	var b strings.Builder
	for i := 0; i < 60; i++ {
		if i%2 == 0 {
			b.WriteString("the cat sat on the mat and the cat was happy.\n")
		} else {
			b.WriteString("a dog ran in the park and the dog was glad.\n")
		}
	}
	return b.String()
}

// TestSteeringRun trains a tiny codebook model in a few steps and runs the
// steering experiment through the family's report: the table, the JSON and
// the summary numbers appear, and rates are shares of the samples.
func TestSteeringRun(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "stories.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(storyText()), 0o644))
	recipe := `
name: tiny-steer
model: {family: codebook, width: 16, layers: 1, heads: 2, codebook: {at: [attn_preproj], codes: 16, k: 2}}
data: {kind: text, text: {train: ` + corpus + `, tokenizer: byte, context: 24, valid_fraction: 0.2}}
train: {steps: 3, batch: 4, threads: 1, log_every: 1}
eval:
  samples: 0
  steering:
    prompts: ["", "the"]
    samples: 2
    tokens: 8
    search_seqs: 8
    method: context
    min_hits: 1
    min_precision: 0.1
    topics: [{name: cat, regex: 'cat'}, {name: dog, regex: 'dog'}]
output: {progress: false}
`
	path := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(path, []byte(recipe), 0o644))
	baseline := torch.LiveTensors()
	run, err := runner.Run(runner.Options{Recipe: path, Overrides: []string{"output.dir=" + filepath.Join(dir, "run")}})
	require.NoError(t, err)
	require.Equal(t, baseline, torch.LiveTensors(), "live tensor handles after training, steering and the report")
	report, err := os.ReadFile(filepath.Join(run, rundir.ReportFile))
	require.NoError(t, err)
	require.Contains(t, string(report), "## Steering with topic codes")
	require.Contains(t, string(report), "| cat | `cat` |")

	var rep SteerReport
	b, err := os.ReadFile(filepath.Join(run, "steering.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Equal(t, 4, rep.Samples)
	require.Len(t, rep.Baseline, 4)
	require.Len(t, rep.Topics, 2)
	s, err := rundir.ReadSummary(run)
	require.NoError(t, err)
	for _, topic := range rep.Topics {
		for _, v := range []float64{topic.Baseline, topic.OneCode, topic.AllCodes} {
			require.True(t, v >= 0 && v <= 1 && v*4 == float64(int(v*4)), "a share of 4 samples: %v", v)
		}
		require.LessOrEqual(t, topic.OneCodeN, 2*2, "at most k codes in each of the 2 heads")
		require.Contains(t, s.Extra, "steer_"+topic.Topic+"_one_code")
	}
	resolved, err := os.ReadFile(filepath.Join(run, rundir.RecipeFile))
	require.NoError(t, err)
	require.Contains(t, string(resolved), "search_seqs: 8", "the resolved recipe records the steering section")
}
