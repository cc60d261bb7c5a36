package reasoning

import (
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
		ok, rewarded, negative, commas := 0, 0, 0, 0
		for _, it := range items {
			raw := strings.TrimSpace(it.Answer[strings.LastIndex(it.Answer, "####")+4:])
			gold := strings.ReplaceAll(raw, ",", "")
			if it.Final == gold {
				ok++
			}
			rewarded += int(GSM8KReward(it.Answer, it.Final))
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
		require.Equal(t, tc.negative, negative)
		require.Equal(t, tc.commas, commas)
	}
	items, err := LoadGSM8K(filepath.Join(gsm8kDir, "train.jsonl"))
	require.NoError(t, err)
	require.Equal(t, "72", items[0].Final)
	require.True(t, strings.HasPrefix(items[0].Question, "Natalia sold clips"))
}

func TestExtractAnswer(t *testing.T) {
	tests := []struct {
		text string
		want string
		ok   bool
	}{
		{"so 3+4=7\n#### 7", "7", true},
		{"#### 1,234.50", "1234.5", true},
		{"#### 12.0", "12", true},
		{"#### 12.", "12", true},
		{"#### 12.000.", "12", true},
		{"#### 0.50", "0.5", true},
		{"#### .0", "0", true},
		{"#### 100", "100", true}, // integer zeros stay
		{"####   -3  ", "-3", true},
		{"#### -1,000", "-1000", true},
		{"#### $1,234", "1234", true},
		{"#### The answer is $18.", "18", true},
		{"#### 5 apples and 6 pears", "6", true}, // last number
		{"#### 3\n#### 4", "4", true},            // after the last ####
		{"####4", "4", true},
		{"12 #### ", "", false}, // no number after ####
		{"#### seven", "", false},
		{"the answer is 7", "", false}, // no ####
		{"", "", false},
	}
	for _, tc := range tests {
		got, ok := ExtractAnswer(tc.text)
		require.Equal(t, tc.ok, ok, "%q", tc.text)
		require.Equal(t, tc.want, got, "%q", tc.text)
	}
}

func TestGSM8KReward(t *testing.T) {
	tests := []struct {
		completion, gold string
		want             float64
	}{
		{"48/2 = 24, 48+24 = 72 #### 72", "72", 1},
		{"#### 72.", "72", 1},
		{"#### $1,000", "1000", 1},
		{"#### 1000.00", "1,000", 1}, // gold normalised too
		{"#### -5", "-5", 1},
		{"#### 5", "-5", 0},
		{"#### 2.5", "2.50", 1},
		{"#### 73", "72", 0},
		{"72", "72", 0},                   // no ####
		{"#### 70 #### 72", "72", 0},      // two ####, even with the right last one
		{"#### 72 ####", "72", 0},         // two ####
		{"#### none", "72", 0},            // no number
		{"the answer: #### 7 2", "72", 0}, // last number is 2
		{"#### 72", "", 0},                // no gold number
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, GSM8KReward(tc.completion, tc.gold), "%q vs %q", tc.completion, tc.gold)
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
	require.Equal(t, []GSM8KItem{{"q", "a\n#### 5", "5"}, {"q", "a\n#### 5", "5"}}, items)

	_, err = LoadGSM8K(filepath.Join(dir, "missing.jsonl"))
	require.ErrorContains(t, err, "missing.jsonl")
	require.ErrorIs(t, err, os.ErrNotExist)
}
