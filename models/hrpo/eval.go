package hrpo

import (
	"fmt"
	"math"
	"sort"

	"github.com/hiddenlab/hiddenlab/data/reasoning"
	"github.com/hiddenlab/hiddenlab/torch"
)

// Result is one evaluated completion.
type Result struct {
	Problem reasoning.Problem
	// Completion is in task tokens (parsed from the decoded text when the
	// policy has a text tokenizer, see [Model.TaskTokens]).
	Completion []int32
	Correct    bool
	// HiddenRatio is the mean over the completion's fed-back think tokens
	// of √(1 − mean_d(a)²); NaN without a gate or without such tokens.
	HiddenRatio float64
}

// Evaluate rolls out every problem once (greedy unless o says otherwise)
// in batched decodes of at most batch rows and scores the completions. It
// runs without gradients; tensors are freed batch by batch.
func (m *Model) Evaluate(problems []reasoning.Problem, o RolloutOptions, batch int) ([]Result, error) {
	out := make([]Result, 0, len(problems))
	var err error
	torch.NoGrad(func() {
		for lo := 0; lo < len(problems) && err == nil; lo += batch {
			part := problems[lo:min(lo+batch, len(problems))]
			err = torch.Try(func() {
				s := torch.NewScope()
				defer s.Close()
				prompts := make([][]int32, len(part))
				for i, p := range part {
					prompts[i] = m.PromptIDs(p)
				}
				ro, rerr := m.Rollout(prompts, o)
				if rerr != nil {
					panic(rerr)
				}
				hidden := ro.rowHiddenRatios()
				completions := m.TaskTokens(ro.Completions, part) // task tokens, for Reward and the report
				for i, p := range part {
					c := completions[i]
					out = append(out, Result{Problem: p, Completion: c, Correct: reasoning.Reward(c, p.Answer) == 1, HiddenRatio: hidden[i]})
				}
			})
		}
	})
	return out, err
}

// rowHiddenRatios returns each row's mean √(1 − mean_d(a)²) over its
// fed-back think tokens (NaN where there are none or there is no gate).
func (ro *Rollout) rowHiddenRatios() []float64 {
	out := make([]float64, ro.B)
	for i := range out {
		out[i] = math.NaN()
	}
	if ro.EmbedsRatio == nil {
		return out
	}
	n := ro.N - 1
	ratio := ro.EmbedsRatio.Float32s()
	think := ro.Think.Narrow(1, 0, n).Contiguous().Bools()
	for b := range ro.B {
		sum, cnt := 0.0, 0
		for t := range n {
			if think[b*n+t] {
				er := float64(ratio[b*n+t])
				sum += math.Sqrt(max(0, 1-er*er))
				cnt++
			}
		}
		if cnt > 0 {
			out[b] = sum / float64(cnt)
		}
	}
	return out
}

// Summary aggregates results overall and by K.
type Summary struct {
	All reasoning.Stats
	ByK map[int]*reasoning.Stats

	hiddenSum float64
	hiddenN   int
}

// Summarize aggregates results.
func Summarize(results []Result) *Summary {
	s := &Summary{ByK: map[int]*reasoning.Stats{}}
	for _, r := range results {
		s.All.Add(r.Completion, r.Problem)
		k := s.ByK[r.Problem.K]
		if k == nil {
			k = &reasoning.Stats{}
			s.ByK[r.Problem.K] = k
		}
		k.Add(r.Completion, r.Problem)
		if !math.IsNaN(r.HiddenRatio) {
			s.hiddenSum += r.HiddenRatio
			s.hiddenN++
		}
	}
	return s
}

// Ks returns the chain lengths present, ascending.
func (s *Summary) Ks() []int {
	ks := make([]int, 0, len(s.ByK))
	for k := range s.ByK {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// HiddenRatio is the mean per-completion hidden ratio (NaN if none).
func (s *Summary) HiddenRatio() float64 {
	if s.hiddenN == 0 {
		return math.NaN()
	}
	return s.hiddenSum / float64(s.hiddenN)
}

// Logs names the summary's metrics with prefix: acc, acc_k<K>, len_k<K>,
// format, length, think_len, faith, skip, hidden_ratio.
func (s *Summary) Logs(prefix string) map[string]float64 {
	out := map[string]float64{
		prefix + "acc":       s.All.Accuracy(),
		prefix + "format":    s.All.FormatRate(),
		prefix + "length":    s.All.MeanLength(),
		prefix + "think_len": s.All.MeanThinkLength(),
		prefix + "skip":      s.All.MeanSkipRate(),
	}
	if f := s.All.Faithfulness(); !math.IsNaN(f) {
		out[prefix+"faith"] = f
	}
	if h := s.HiddenRatio(); !math.IsNaN(h) {
		out[prefix+"hidden_ratio"] = h
	}
	for _, k := range s.Ks() {
		out[fmt.Sprintf("%sacc_k%d", prefix, k)] = s.ByK[k].Accuracy()
		out[fmt.Sprintf("%slen_k%d", prefix, k)] = s.ByK[k].MeanLength()
	}
	return out
}

// Sampled is one problem's k sampled completions, scored.
type Sampled struct {
	Problem reasoning.Problem
	K       int // samples drawn
	Correct int // samples with reward 1
}

// Sample draws k completions of each problem at the policy's τ (rows of
// one problem adjacent, whole groups per batched decode) and counts the
// correct ones: the sampled evaluation behind pass@k and the sampled
// accuracy of the paper's Table 9.
func (m *Model) Sample(problems []reasoning.Problem, k, maxNew, batch int) ([]Sampled, error) {
	rows := make([]reasoning.Problem, 0, len(problems)*k)
	for _, p := range problems {
		for range k {
			rows = append(rows, p)
		}
	}
	batch = max(k, batch/k*k)
	res, err := m.Evaluate(rows, RolloutOptions{MaxNew: maxNew}, batch)
	if err != nil {
		return nil, err
	}
	out := make([]Sampled, len(problems))
	for i, p := range problems {
		out[i] = Sampled{Problem: p, K: k}
		for _, r := range res[i*k : (i+1)*k] {
			if r.Correct {
				out[i].Correct++
			}
		}
	}
	return out, nil
}

// SampledLogs summarises sampled results: pass_at_k (share of problems
// with a correct sample), sampled_acc (share of correct samples), and both
// by K (pass_at_k_k<K>, sampled_acc_k<K>).
func SampledLogs(s []Sampled) map[string]float64 {
	type acc struct{ pass, correct, samples, n float64 }
	byK := map[int]*acc{}
	all := &acc{}
	for _, x := range s {
		a := byK[x.Problem.K]
		if a == nil {
			a = &acc{}
			byK[x.Problem.K] = a
		}
		for _, a := range []*acc{a, all} {
			a.n++
			a.correct += float64(x.Correct)
			a.samples += float64(x.K)
			if x.Correct > 0 {
				a.pass++
			}
		}
	}
	out := map[string]float64{}
	put := func(suffix string, a *acc) {
		if a.n > 0 {
			out["pass_at_k"+suffix] = a.pass / a.n
			out["sampled_acc"+suffix] = a.correct / a.samples
		}
	}
	put("", all)
	for k, a := range byK {
		put(fmt.Sprintf("_k%d", k), a)
	}
	return out
}
