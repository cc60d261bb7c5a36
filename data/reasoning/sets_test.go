package reasoning

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// key turns a prompt into a map key (all ids are < 256).
func key(ids []int32) string {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}

func TestPrompts(t *testing.T) {
	for _, task := range []Task{ModChain, HopChain} {
		ps, err := Prompts(11, 2000, task, KRange{3, 6})
		require.NoError(t, err)
		require.Len(t, ps, 2000)
		byK := map[int]int{}
		for _, p := range ps {
			require.Equal(t, task, p.Task)
			require.Equal(t, TraceFull, p.Trace)
			require.False(t, HeldOut(p.Prompt))
			require.Equal(t, float64(1), Reward(p.Target, p.Answer))
			byK[p.K]++
		}
		require.Len(t, byK, 4, "K outside [3, 6]: %v", byK)
		for k, n := range byK {
			require.InDelta(t, 500, n, 90, "K=%d", k) // σ ≈ 19
		}
		again, err := Prompts(11, 2000, task, KRange{3, 6})
		require.NoError(t, err)
		require.Equal(t, ps, again)
		other, err := Prompts(12, 2000, task, KRange{3, 6})
		require.NoError(t, err)
		require.NotEqual(t, ps[:20], other[:20])
	}

	bad := []struct {
		name string
		n    int
		task Task
		ks   KRange
		err  string
	}{
		{"zero K", 1, ModChain, KRange{0, 3}, "bad K range [0, 3]"},
		{"empty range", 1, ModChain, KRange{5, 4}, "bad K range [5, 4]"},
		{"negative n", -1, ModChain, KRange{2, 8}, "negative prompt count -1"},
		{"unknown task", 1, Task(7), KRange{2, 8}, "unknown task 7"},
	}
	for _, tc := range bad {
		_, err := Prompts(0, tc.n, tc.task, tc.ks)
		require.ErrorContains(t, err, tc.err, tc.name)
	}
}

func TestEvalSet(t *testing.T) {
	for _, task := range []Task{ModChain, HopChain} {
		ps, err := EvalSet(task, DefaultEval)
		require.NoError(t, err)
		require.Len(t, ps, 9000)
		for i, p := range ps {
			require.Equal(t, 2+i/1000, p.K, "ordered by K")
			require.True(t, HeldOut(p.Prompt))
			require.Equal(t, TraceFull, p.Trace)
		}
		// The problems of one K depend only on (seed, task, K).
		small, err := EvalSet(task, EvalConfig{Seed: 0, K: KRange{5, 6}, PerK: 10})
		require.NoError(t, err)
		require.Equal(t, ps[3000:3010], small[:10])
		require.Equal(t, ps[4000:4010], small[10:])
		other, err := EvalSet(task, EvalConfig{Seed: 1, K: KRange{5, 6}, PerK: 10})
		require.NoError(t, err)
		require.NotEqual(t, small, other)
	}
	_, err := EvalSet(ModChain, EvalConfig{K: KRange{2, 1}, PerK: 1})
	require.ErrorContains(t, err, "bad K range")
	_, err = EvalSet(ModChain, EvalConfig{K: KRange{2, 3}, PerK: -1})
	require.ErrorContains(t, err, "negative eval size")
}

// TestHeldOutShare enumerates all 8,410 ModChain prompts with K = 2.
func TestHeldOutShare(t *testing.T) {
	type step struct{ op, x int32 }
	var steps []step
	for x := range int32(10) {
		steps = append(steps, step{Plus, x}, step{Minus, x})
		if x > 0 {
			steps = append(steps, step{Times, x})
		}
	}
	total, held := 0, 0
	for s := range int32(10) {
		for _, a := range steps {
			for _, b := range steps {
				total++
				if HeldOut([]int32{BOS, s, Sep, a.op, a.x, Sep, b.op, b.x, Query}) {
					held++
				}
			}
		}
	}
	require.Equal(t, 8410, total)
	t.Logf("held out: %d of %d ModChain K=2 prompts", held, total)
	require.InDelta(t, total/8, held, 90) // σ ≈ 30
}

// TestEvalDisjointFromTraining draws training data as the trainer does (SFT
// batches of the default mix, RL prompts) and counts exact prompt matches
// with the default eval sets: the split makes it zero. For comparison it
// also counts matches for unfiltered draws, what independent seeds alone
// would give.
func TestEvalDisjointFromTraining(t *testing.T) {
	eval := map[string]int{} // prompt → K
	distinct := map[int]int{}
	for _, task := range []Task{ModChain, HopChain} {
		ps, err := EvalSet(task, DefaultEval)
		require.NoError(t, err)
		for _, p := range ps {
			if _, dup := eval[key(p.Prompt)]; !dup && task == ModChain {
				distinct[p.K]++
			}
			eval[key(p.Prompt)] = p.K
		}
	}
	t.Logf("distinct ModChain eval prompts by K (of 1000): %v", distinct)
	require.Greater(t, distinct[2], 600)
	require.Equal(t, 1000, distinct[5])

	var train [][]int32
	for step := range 100 {
		b, err := SFTBatch(0, step, 256, 64)
		require.NoError(t, err)
		for _, p := range b.Problems {
			train = append(train, p.Prompt)
		}
	}
	for _, task := range []Task{ModChain, HopChain} {
		ps, err := Prompts(0, 10000, task, KRange{2, 10})
		require.NoError(t, err)
		for _, p := range ps {
			train = append(train, p.Prompt)
		}
	}
	hits := 0
	for _, p := range train {
		if _, ok := eval[key(p)]; ok {
			hits++
		}
	}
	t.Logf("training prompts found in the eval sets: %d of %d", hits, len(train))
	require.Zero(t, hits)

	// Without the split: 5,000 unfiltered ModChain draws per K.
	r := rand.New(rand.NewPCG(99, 99))
	unfiltered := map[int]int{}
	for k := 2; k <= 10; k++ {
		for range 5000 {
			if _, ok := eval[key(GenerateModChain(r, k, TraceDirect).Prompt)]; ok {
				unfiltered[k]++
			}
		}
	}
	t.Logf("unfiltered ModChain draws (5000 per K) found in the eval set, by K: %v", unfiltered)
	require.Greater(t, unfiltered[2], 100, "K=2 overlaps heavily without the split")
}
