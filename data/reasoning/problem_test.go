package reasoning

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

var allTraces = []Trace{TraceFull, TraceSkip, TraceDirect}

// solveModChain recomputes a ModChain prompt from its token texts, without
// the generator's code: it returns the running values 0..9.
func solveModChain(t *testing.T, prompt []string) []int {
	t.Helper()
	require.Equal(t, "BOS", prompt[0])
	require.Equal(t, "?", prompt[len(prompt)-1])
	v, err := strconv.Atoi(prompt[1])
	require.NoError(t, err)
	var vals []int
	steps := prompt[2 : len(prompt)-1]
	require.Zero(t, len(steps)%3, "steps %v", steps)
	for i := 0; i < len(steps); i += 3 {
		require.Equal(t, ";", steps[i])
		x, err := strconv.Atoi(steps[i+2])
		require.NoError(t, err)
		require.True(t, x >= 0 && x <= 9)
		switch steps[i+1] {
		case "+":
			v += x
		case "-":
			v -= x
		case "*":
			require.NotZero(t, x, "× operand 0")
			v *= x
		default:
			t.Fatalf("bad operator %q", steps[i+1])
		}
		v = ((v % 10) + 10) % 10
		vals = append(vals, v)
	}
	return vals
}

// wantThink is the think span the brief's trace styles prescribe.
func wantThink(vals []string, trace Trace) []string {
	switch trace {
	case TraceFull:
		return vals
	case TraceSkip:
		var out []string
		for j := len(vals); j >= 1; j -= 2 { // 1-based j ≡ K (mod 2)
			out = append(out, vals[j-1])
		}
		slices.Reverse(out)
		return out
	}
	return nil
}

func TestModChainAnswersRecomputed(t *testing.T) {
	var v Vocab
	r := rand.New(rand.NewPCG(1, 2))
	ops := map[string]int{}
	for i := range 12000 {
		k := 1 + i%10
		trace := allTraces[i%3]
		p := GenerateModChain(r, k, trace)
		require.Equal(t, ModChain, p.Task)
		require.Equal(t, trace, p.Trace)
		require.Equal(t, k, p.K)
		require.Len(t, p.Prompt, 3*k+3)
		require.Equal(t, ModChain.PromptLen(k), len(p.Prompt))
		prompt := v.Decode(p.Prompt)
		vals := solveModChain(t, prompt)
		require.Len(t, vals, k)
		for j := 3; j < len(prompt); j += 3 {
			ops[prompt[j]]++
		}
		var valText []string
		for j, x := range vals {
			require.Equal(t, int32(x), p.Values[j], "value %d of %s", j+1, v.String(p.Prompt))
			valText = append(valText, strconv.Itoa(x))
		}
		require.Equal(t, int32(vals[k-1]), p.Answer)
		want := append(wantThink(valText, trace), "####", valText[k-1], "EOS")
		require.Equal(t, want, v.Decode(p.Target), "%s / %s", v.String(p.Prompt), trace)
		require.Equal(t, p.Target[:len(p.Target)-3], p.Think())
		require.Equal(t, append(slices.Clone(p.Prompt), p.Target...), p.Sequence())
	}
	// Operators are uniform: 66,000 steps, 22,000 expected each (σ ≈ 121).
	for _, op := range []string{"+", "-", "*"} {
		require.InDelta(t, 22000, ops[op], 600, op)
	}
}

// TestModChainExample pins the generator's output for one seed, so a change
// of the draw order (which would silently change every data set) fails.
func TestModChainExample(t *testing.T) {
	var v Vocab
	r := rand.New(rand.NewPCG(7, 7))
	p := GenerateModChain(r, 4, TraceSkip)
	vals := solveModChain(t, v.Decode(p.Prompt))
	t.Logf("%s | %s", v.String(p.Prompt), v.String(p.Target))
	require.Equal(t, "BOS 9 ; + 7 ; + 2 ; + 8 ; + 4 ?", v.String(p.Prompt))
	require.Equal(t, []int{6, 8, 6, 0}, vals)
	require.Equal(t, "8 0 #### 0 EOS", v.String(p.Target))
}

func TestHopChainFollowsMap(t *testing.T) {
	var v Vocab
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 6000 {
		k := 1 + i%11
		trace := allTraces[i%3]
		p := GenerateHopChain(r, k, trace)
		toks := v.Decode(p.Prompt)
		require.Equal(t, HopChain.PromptLen(k), len(toks))

		// Parse the map: 12 entries "X Y ;" in alphabetical order.
		require.Equal(t, "BOS", toks[0])
		next := map[string]string{}
		for i := range NumSymbols {
			e := toks[1+3*i : 4+3*i]
			require.Equal(t, string(rune('A'+i)), e[0])
			require.Equal(t, ";", e[2])
			next[e[0]] = e[1]
		}
		rest := toks[1+3*NumSymbols:]
		require.Equal(t, "start", rest[0])
		require.Equal(t, "hops", rest[2])
		require.Equal(t, strconv.Itoa(k), stringsJoin(rest[3:len(rest)-1]))
		require.Equal(t, "?", rest[len(rest)-1])

		// The map is one 12-cycle: from any symbol, 12 hops visit all.
		seen := map[string]bool{}
		x := "A"
		for range NumSymbols {
			seen[x] = true
			x = next[x]
		}
		require.Equal(t, "A", x)
		require.Len(t, seen, NumSymbols)

		var visited []string
		x = rest[1]
		for range k {
			x = next[x]
			visited = append(visited, x)
		}
		require.Equal(t, visited, v.Decode(p.Values))
		require.Equal(t, x, v.Token(p.Answer))
		want := append(wantThink(visited, trace), "####", x, "EOS")
		require.Equal(t, want, v.Decode(p.Target))
		// K ≤ 11 hops on a 12-cycle never revisit a symbol or the start.
		require.Len(t, uniq(append(visited, rest[1])), k+1)
	}
}

func stringsJoin(s []string) string {
	out := ""
	for _, x := range s {
		out += x
	}
	return out
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

func TestGeneratorsDeterministic(t *testing.T) {
	for _, task := range []Task{ModChain, HopChain} {
		gen := func(seed uint64) []Problem {
			r := rand.New(rand.NewPCG(seed, 0))
			var ps []Problem
			for i := range 50 {
				ps = append(ps, task.Generate(r, 2+i%7, allTraces[i%3]))
			}
			return ps
		}
		require.Equal(t, gen(5), gen(5), task)
		require.NotEqual(t, gen(5), gen(6), task)
	}
	require.Panics(t, func() { GenerateModChain(rand.New(rand.NewPCG(0, 0)), 0, TraceFull) })
	require.Panics(t, func() { GenerateHopChain(rand.New(rand.NewPCG(0, 0)), 0, TraceFull) })
	require.Panics(t, func() { Task(9).Generate(rand.New(rand.NewPCG(0, 0)), 1, TraceFull) })
}

func TestSequenceLengths(t *testing.T) {
	tests := []struct {
		task              Task
		k, prompt, maxLen int
	}{
		{ModChain, 2, 9, 14},
		{ModChain, 8, 27, 38},
		{ModChain, 10, 33, 46},
		{HopChain, 2, 42, 47},
		{HopChain, 8, 42, 53},
		{HopChain, 9, 42, 54},
		{HopChain, 10, 43, 56},
	}
	r := rand.New(rand.NewPCG(0, 1))
	for _, tc := range tests {
		require.Equal(t, tc.prompt, tc.task.PromptLen(tc.k), "%s K=%d", tc.task, tc.k)
		require.Equal(t, tc.maxLen, tc.task.MaxLen(tc.k), "%s K=%d", tc.task, tc.k)
		p := tc.task.Generate(r, tc.k, TraceFull)
		require.Len(t, p.Sequence(), tc.maxLen)
		require.Len(t, tc.task.Generate(r, tc.k, TraceSkip).Target, (tc.k+1)/2+3)
		require.Len(t, tc.task.Generate(r, tc.k, TraceDirect).Target, 3)
	}
	require.Equal(t, "modchain", ModChain.String())
	require.Equal(t, "hopchain", HopChain.String())
	require.Equal(t, "skip", TraceSkip.String())
}
