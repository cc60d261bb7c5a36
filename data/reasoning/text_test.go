package reasoning

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/data/tokenize"
)

// textTokenizers are the tokenizers the text codec is checked with: bytes,
// and hiddenlab's 4096-id byte-level BPE in Hugging Face's format.
func textTokenizers(t *testing.T) map[string]tokenize.Tokenizer {
	t.Helper()
	byteTok, err := tokenize.New("byte", 0, nil)
	require.NoError(t, err)
	out := map[string]tokenize.Tokenizer{"byte": byteTok}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	b, err := exec.Command("gzip", "-dc", "../tokenize/testdata/hf/hlbpe.tokenizer.json.gz").Output()
	if err == nil {
		require.NoError(t, os.WriteFile(path, b, 0o644))
		bpe, err := tokenize.Load(path)
		require.NoError(t, err)
		out["hlbpe"] = bpe
	}
	return out
}

// Problems written as text and encoded parse back to their task tokens;
// the byte-length bounds hold; the think span ends at the first "####".
func TestTextCodec(t *testing.T) {
	for name, tok := range textTokenizers(t) {
		c := TextCodec{Tok: tok}
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			for _, tc := range []struct {
				task  Task
				trace Trace
				k     int
			}{
				{ModChain, TraceFull, 2}, {ModChain, TraceSkip, 8}, {ModChain, TraceDirect, 5},
				{HopChain, TraceFull, 3}, {HopChain, TraceFull, 10}, {HopChain, TraceSkip, 7},
			} {
				p := tc.task.Generate(r, tc.k, tc.trace)
				prompt, target := c.Prompt(p), c.Target(p)
				require.Equal(t, p.Target, c.Parse(target), "%s %s", tc.task, TargetText(p))
				require.Equal(t, 1.0, Reward(c.Parse(target), p.Answer))
				require.LessOrEqual(t, len(prompt), PromptBytes(tc.task, tc.k))
				require.LessOrEqual(t, len(prompt)+len(target), SequenceBytes(tc.task, tc.k))
				require.Equal(t, tok.EOT(), target[len(target)-1])
				think := 0 // tokens of the think span's text " v1 … vK"
				if len(p.Think()) > 0 {
					think = len(c.Tok.Encode(" " + Vocab{}.String(p.Think())))
				}
				for n := 1; n <= len(target); n++ {
					// "####" is complete only after the think span's tokens and the delimiter's.
					if n <= think {
						require.False(t, c.ThinkDone(target[:n]), "%d tokens of %q", n, TargetText(p))
					}
				}
				require.True(t, c.ThinkDone(target))
			}
		})
	}
}

// Parse judges decoded text as the toy rule judges tokens.
func TestTextCodecParse(t *testing.T) {
	tok, err := tokenize.New("byte", 0, nil)
	require.NoError(t, err)
	c := TextCodec{Tok: tok}
	v := Vocab{}
	for _, tc := range []struct {
		text   string
		eot    bool
		want   []int32
		reward float64 // answer 4
	}{
		{" 7 4 #### 4", true, append(mustParse(t, "7 4 #### 4"), EOS), 1},
		{"7 4 ####4", true, append(mustParse(t, "7 4"), Unknown, EOS), 0},
		{" #### 4", false, mustParse(t, "#### 4"), 1},
		{" 3 #### 4 4", true, append(mustParse(t, "3 #### 4 4"), EOS), 0},
		{" x #### 4 EOS", true, []int32{Unknown, Delim, 4, Unknown, EOS}, 0},
		{"", true, []int32{EOS}, 0},
	} {
		ids := tok.Encode(tc.text)
		if tc.eot {
			ids = append(ids, tok.EOT(), tok.Encode(" 9")[0])
		}
		got := c.Parse(ids)
		require.Equal(t, tc.want, got, "%q → %s", tc.text, v.String(got))
		require.Equal(t, tc.reward, Reward(got, 4), tc.text)
	}
}

func mustParse(t *testing.T, s string) []int32 {
	ids, err := Vocab{}.Parse(s)
	require.NoError(t, err)
	return ids
}

// A text SFT batch has the layout of SFTMix.Batch: loss on the target's
// tokens only, EOT padding, T the longest row.
func TestTextBatch(t *testing.T) {
	tok, err := tokenize.New("byte", 0, nil)
	require.NoError(t, err)
	c := TextCodec{Tok: tok}
	b0, err := DefaultSFTMix.Batch(3, 0, 6, DefaultSFTMix.MaxLen())
	require.NoError(t, err)
	b, err := c.Batch(b0.Problems, DefaultSFTMix.MaxTextLen())
	require.NoError(t, err)
	longest := 0
	for i, p := range b.Problems {
		pr, tg := c.Prompt(p), c.Target(p)
		longest = max(longest, len(pr)+len(tg))
		require.Equal(t, len(pr), b.PromptLen[i])
		row := b.Tokens[i*b.T : (i+1)*b.T]
		for j, id := range append(pr, tg...) {
			require.Equal(t, int64(id), row[j])
		}
		for j := len(pr) + len(tg); j < b.T; j++ {
			require.Equal(t, int64(tok.EOT()), row[j])
		}
		for j := range b.T - 1 {
			inTarget := j+1 >= len(pr) && j+1 < len(pr)+len(tg)
			if inTarget {
				require.Equal(t, row[j+1], b.Targets[i*(b.T-1)+j])
			} else {
				require.Equal(t, int64(IgnoreIndex), b.Targets[i*(b.T-1)+j])
			}
		}
	}
	require.Equal(t, longest, b.T)
	_, err = c.Batch(b0.Problems, 10)
	require.ErrorContains(t, err, "longer than 10")
}

// GSM8K items written as text round-trip through the tokenizers, and the
// reward on the decoded gold solution is 1, on a wrong one 0.
func TestTextCodecGSM8K(t *testing.T) {
	items, err := LoadGSM8K("../../third_party/gsm8k/test.jsonl")
	require.NoError(t, err)
	items = items[:20]
	for name, tok := range textTokenizers(t) {
		c := TextCodec{Tok: tok}
		t.Run(name, func(t *testing.T) {
			for _, it := range items {
				prompt, target := c.GSM8KPrompt(it), c.GSM8KTarget(it)
				require.Equal(t, GSM8KPromptText(it), tok.Decode(prompt))
				require.Equal(t, tok.EOT(), target[len(target)-1])
				require.Equal(t, 1.0, c.GSM8KReward(target, it), it.Answer)
				require.Equal(t, 1.0, c.GSM8KReward(append(target, tok.Encode(" #### 0")...), it), "text after EOT is ignored")
				wrong := append(tok.Encode(" so #### "+it.Final+"1"), tok.EOT())
				require.Equal(t, 0.0, c.GSM8KReward(wrong, it))
				require.Equal(t, 0.0, c.GSM8KReward(tok.Encode(" "+it.Answer+" #### "+it.Final), it), "two ####")
				require.True(t, c.ThinkDone(target))
			}
		})
	}
}

// ParseFor on GSM8K problems gives task tokens that the toy rules judge as
// the official GSM8K reward and format judge the text.
func TestParseForGSM8K(t *testing.T) {
	tok, err := tokenize.New("byte", 0, nil)
	require.NoError(t, err)
	c := TextCodec{Tok: tok}
	p := GSM8KProblem(GSM8KItem{Question: "How many?", Answer: "3 + 15 = 18\\n#### 18", Final: "18", Gold: "18"})
	for _, tc := range []struct {
		text   string
		reward float64
		format bool
	}{
		{" 3 + 15 = 18\n#### 18", 1, true},
		{" so #### 18 dollars.", 1, true}, // the official extraction: the last number after ####
		{" #### 17", 0, true},
		{" 18", 0, false},
		{" #### 18 #### 18", 0, false},
		{"####18", 1, true},
	} {
		ids := append(tok.Encode(tc.text), tok.EOT())
		got := c.ParseFor(ids, p)
		require.Equal(t, tc.reward, Reward(got, p.Answer), tc.text)
		require.Equal(t, tc.reward, c.GSM8KReward(ids, *p.Item), tc.text)
		require.Equal(t, tc.format, FormatOK(got), tc.text)
		require.Equal(t, EOS, got[len(got)-1])
	}
	require.Equal(t, "gsm8k", GSM8K.String())
	require.Equal(t, GSM8KPromptText(*p.Item), PromptText(p))
}
