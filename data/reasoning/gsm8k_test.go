package reasoning

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const gsm8kDir = "../../third_party/gsm8k"

// TestGSM8KFiles loads the real files and checks every item's own solution
// extracts to its gold answer, computed here by the README's rule (text
// after the last "####", stripped, commas removed; all golds are integers).
func TestGSM8KFiles(t *testing.T) {
	for _, tc := range []struct {
		file     string
		rows     int
		negative int
		commas   int
	}{
		{"train.jsonl", 7473, 3, 79},
		{"test.jsonl", 1319, 2, 14},
	} {
		items, err := LoadGSM8K(filepath.Join(gsm8kDir, tc.file))
		require.NoError(t, err)
		require.Len(t, items, tc.rows)
		ok, rewarded, numberRewarded, goldRaw, negative, commas := 0, 0, 0, 0, 0, 0
		for _, it := range items {
			raw := strings.TrimSpace(it.Answer[strings.LastIndex(it.Answer, "####")+4:])
			gold := strings.ReplaceAll(raw, ",", "")
			if it.Final == gold {
				ok++
			}
			rewarded += int(GSM8KReward(it.Answer, it.Gold))
			numberRewarded += int(NumberParser.Reward(it.Answer, it.Final))
			if it.Gold != raw {
				goldRaw++
			}
			if strings.HasPrefix(gold, "-") {
				negative++
			}
			if strings.Contains(raw, ",") {
				commas++
			}
			require.NotEmpty(t, it.Question)
		}
		t.Logf("%s: %d/%d extract to gold, %d/%d rewarded, %d negative, %d with commas",
			tc.file, ok, len(items), rewarded, len(items), negative, commas)
		require.Equal(t, tc.rows, ok)
		require.Equal(t, tc.rows, rewarded)
		require.Equal(t, tc.rows, numberRewarded)
		require.Zero(t, goldRaw, "Gold is the raw text after ####")
		require.Equal(t, tc.negative, negative)
		require.Equal(t, tc.commas, commas)
	}
	items, err := LoadGSM8K(filepath.Join(gsm8kDir, "train.jsonl"))
	require.NoError(t, err)
	require.Equal(t, "72", items[0].Final)
	require.True(t, strings.HasPrefix(items[0].Question, "Natalia sold clips"))
}

// TestExtractAnswer pins both parsers on hand-computed cases; the official
// column is what the official utils.py (extract_from_response, then
// process_gsm8k_answer) returns for the same text.
func TestExtractAnswer(t *testing.T) {
	tests := []struct {
		text             string
		official, number string // "" with ok false: no answer
	}{
		{"so 3+4=7\n#### 7", "7", "7"},
		{"#### 1,234.50", "234.5", "1234.5"}, // commas split the official match
		{"#### 12.0", "12", "12"},
		{"#### 12.", "12", "12"},
		{"#### 12.000.", "12", "12"},
		{"#### 12.50.", "12.5", "12.5"},
		{"#### 0.50", "0.5", "0.5"},
		{"#### .0", "0", "0"},
		{"#### 100", "100", "100"}, // integer zeros stay
		{"####   -3  ", "-3", "-3"},
		{"#### -1,000", "0", "-1000"},
		{"#### $1,234", "234", "1234"},
		{"#### 1,000,000", "0", "1000000"},
		{"#### 1/2", "0.5", "2"}, // evaluated as a division
		{"#### 3/4 cups", "0.75", "4"},
		{"#### 10/5", "2", "5"},
		{"#### 1/3", "0.3333333333333333", "3"},
		{"#### 1/0", "1/0", "0"},     // ZeroDivisionError: kept as matched
		{"#### 007/2", "007/2", "2"}, // SyntaxError (leading zeros): kept
		{"#### 5/", "5", "5"},
		{"#### 007", "7", "007"},
		{"#### -0", "0", "-0"},
		{"#### 100000000000000000000", "100.0", "100000000000000000000"}, // repr 1e+20 loses its exponent's 0
		{"#### 0.00001", "1e-05", "0.00001"},
		{"#### 2.5e3", "3", "3"},
		{"#### The answer is $18.", "18", "18"},
		{"#### 5 apples and 6 pears", "6", "6"}, // last number
		{"#### 3\n#### 4", "4", "4"},            // after the last ####
		{"####4", "4", "4"},
		{"12 #### ", "", ""}, // no number after ####
		{"#### seven", "", ""},
		{"the answer is 7", "", ""}, // no ####
		{"", "", ""},
	}
	for _, tc := range tests {
		for _, p := range []struct {
			parser AnswerParser
			want   string
		}{{OfficialParser, tc.official}, {NumberParser, tc.number}} {
			got, ok := p.parser.Extract(tc.text)
			require.Equal(t, p.want != "", ok, "%s %q", p.parser, tc.text)
			require.Equal(t, p.want, got, "%s %q", p.parser, tc.text)
		}
		got, _ := ExtractAnswer(tc.text)
		require.Equal(t, tc.official, got, "the default is the official parser: %q", tc.text)
	}
}

func TestGSM8KReward(t *testing.T) {
	tests := []struct {
		completion, gold string
		official, number float64
	}{
		{"48/2 = 24, 48+24 = 72 #### 72", "72", 1, 1},
		{"#### 72.", "72", 1, 1},
		{"#### $1,000", "1000", 0, 1}, // official: "0" vs "1000"
		{"#### $1,000", "1,000", 1, 1},
		{"#### 5,000", "1,000", 1, 0},   // official: "0" vs "0"
		{"#### 1000.00", "1,000", 0, 1}, // gold normalised too
		{"#### -5", "-5", 1, 1},
		{"#### 5", "-5", 0, 0},
		{"#### 2.5", "2.50", 1, 1},
		{"#### 0.5", "1/2", 1, 0},
		{"#### 73", "72", 0, 0},
		{"72", "72", 0, 0},                   // no ####
		{"#### 70 #### 72", "72", 0, 0},      // two ####, even with the right last one
		{"#### 72 ####", "72", 0, 0},         // two ####
		{"#####72", "72", 1, 1},              // one #### (then "#72")
		{"########", "", 0, 0},               // two ####
		{"#### none", "72", 0, 0},            // no number
		{"the answer: #### 7 2", "72", 0, 0}, // last number is 2
		{"#### 72", "", 0, 0},                // no gold number
		{"#### none", "none", 1, 0},          // official: "" equals ""
	}
	for _, tc := range tests {
		require.Equal(t, tc.official, OfficialParser.Reward(tc.completion, tc.gold), "official: %q vs %q", tc.completion, tc.gold)
		require.Equal(t, tc.official, GSM8KReward(tc.completion, tc.gold), "default: %q vs %q", tc.completion, tc.gold)
		require.Equal(t, tc.number, NumberParser.Reward(tc.completion, tc.gold), "number: %q vs %q", tc.completion, tc.gold)
	}
	p, err := ParseAnswerParser("official")
	require.NoError(t, err)
	require.Equal(t, OfficialParser, p)
	_, err = ParseAnswerParser("regex")
	require.ErrorContains(t, err, `unknown GSM8K answer parser "regex"`)
}

// pyRepr writes floats as Python's repr does.
func TestPyRepr(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{12, "12.0"}, {0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {0.1, "0.1"}, {-2.5, "-2.5"},
		{0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.5e-7, "1.5e-07"},
		{1234567890123456, "1234567890123456.0"}, {1e16, "1e+16"}, {1e22, "1e+22"},
		{123456789012345680000, "1.2345678901234568e+20"}, {1.0 / 3, "0.3333333333333333"},
		{math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
	} {
		require.Equal(t, tc.want, pyRepr(tc.f), "%v", tc.f)
	}
}

func TestLoadGSM8KErrors(t *testing.T) {
	dir := t.TempDir()
	good := `{"question": "q", "answer": "a\n#### 5"}`
	tests := []struct {
		name  string
		lines []string
		err   string
	}{
		{"bad JSON", []string{good, good, `{"question": "q", "answer": `}, ":3: bad JSON"},
		{"no ####", []string{good, `{"question": "q", "answer": "5"}`}, `:2: answer has no "####"`},
		{"no number", []string{`{"question": "q", "answer": "#### five"}`}, `:1: answer has no number after the last "####"`},
		{"missing answer", []string{`{"question": "q"}`}, `:1: missing "answer"`},
		{"missing question", []string{`{"answer": "#### 1"}`}, `:1: missing "question"`},
		{"unknown key", []string{`{"question": "q", "answer": "#### 1", "x": 1}`}, `:1: bad JSON: json: unknown field "x"`},
		{"two values", []string{good + good}, ":1: bad JSON: more than one value"},
		{"blank lines count", []string{"", good, "{"}, ":3: bad JSON"},
		{"not a string", []string{`{"question": 3, "answer": "#### 1"}`}, ":1: bad JSON"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
		require.NoError(t, os.WriteFile(path, []byte(strings.Join(tc.lines, "\n")+"\n"), 0o644))
		_, err := LoadGSM8K(path)
		require.ErrorContains(t, err, "gsm8k: "+path+tc.err, tc.name)
	}

	// Blank lines are skipped but still counted.
	path := filepath.Join(dir, "blank.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("\n"+good+"\n\n"+good+"\n"), 0o644))
	items, err := LoadGSM8K(path)
	require.NoError(t, err)
	require.Equal(t, []GSM8KItem{{"q", "a\n#### 5", "5", "5"}, {"q", "a\n#### 5", "5", "5"}}, items)

	_, err = LoadGSM8K(filepath.Join(dir, "missing.jsonl"))
	require.ErrorContains(t, err, "missing.jsonl")
	require.ErrorIs(t, err, os.ErrNotExist)
}
