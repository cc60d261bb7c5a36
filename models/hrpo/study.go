package hrpo

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/rundir"
	"github.com/hiddenlab/hiddenlab/stats"
)

// StudyRun is one RL run of a study (rundir.SweepRun): a sweep
// configuration (its name, e.g. the arm), a seed and its directory.
type StudyRun = rundir.SweepRun

// PromptResults are a run's per-prompt final results ([PromptsFile], and
// [SampledFile] when the run has it).
type PromptResults struct {
	K          []int
	Correct    []float64 // greedy, 0 or 1
	CorrectOff []float64 // greedy with the latent off; nil if the run has none
	Length     []float64 // completion length
	// SampledK and Sampled are the problems of the sampled evaluation and
	// their share of correct samples; nil without it.
	SampledK []int
	Sampled  []float64
}

// readCSV reads a CSV file with a header into rows and column indices,
// checking that the named columns exist.
func readCSV(path string, need ...string) ([][]string, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("%s: empty", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range need {
		if _, ok := col[h]; !ok {
			return nil, nil, fmt.Errorf("%s: no %q column", path, h)
		}
	}
	return rows[1:], col, nil
}

// ReadPromptResults reads dir's per-prompt tables.
func ReadPromptResults(dir string) (*PromptResults, error) {
	path := filepath.Join(dir, PromptsFile)
	rows, col, err := readCSV(path, "k", "correct", "correct_off", "length")
	if err != nil {
		return nil, err
	}
	r := &PromptResults{}
	hasOff := len(rows) > 0 && rows[0][col["correct_off"]] != ""
	for line, row := range rows {
		k, err1 := strconv.Atoi(row[col["k"]])
		c, err2 := strconv.ParseFloat(row[col["correct"]], 64)
		n, err3 := strconv.ParseFloat(row[col["length"]], 64)
		if err := firstError(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line+2, err)
		}
		r.K, r.Correct, r.Length = append(r.K, k), append(r.Correct, c), append(r.Length, n)
		if hasOff {
			o, err := strconv.ParseFloat(row[col["correct_off"]], 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line+2, err)
			}
			r.CorrectOff = append(r.CorrectOff, o)
		}
	}
	path = filepath.Join(dir, SampledFile)
	if _, err := os.Stat(path); err != nil {
		return r, nil
	}
	rows, col, err = readCSV(path, "k", "samples", "correct")
	if err != nil {
		return nil, err
	}
	for line, row := range rows {
		k, err1 := strconv.Atoi(row[col["k"]])
		n, err2 := strconv.Atoi(row[col["samples"]])
		c, err3 := strconv.Atoi(row[col["correct"]])
		if err := firstError(err1, err2, err3); err != nil || n == 0 {
			return nil, fmt.Errorf("%s:%d: bad row %v", path, line+2, row)
		}
		r.SampledK, r.Sampled = append(r.SampledK, k), append(r.Sampled, float64(c)/float64(n))
	}
	return r, nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// studyArm is one row of the study: a configuration's runs.
type studyArm struct {
	name    string
	arm     string // from the runs' summaries
	off     bool   // the latent-off evaluation of name's runs
	seeds   []int
	results []*PromptResults
	sums    []*rundir.Summary
	dirs    []string // run directories
}

// score returns run i's per-prompt greedy correctness (latent-off for off
// rows), or its sampled accuracy when sampled is set.
func (a *studyArm) score(i int, sampled bool) []float64 {
	switch {
	case sampled && a.off:
		return nil
	case sampled:
		return a.results[i].Sampled
	case a.off:
		return a.results[i].CorrectOff
	}
	return a.results[i].Correct
}

// promptMeans averages the per-prompt scores over the arm's seeds.
func (a *studyArm) promptMeans(sampled bool) []float64 {
	out := make([]float64, len(a.score(0, sampled)))
	for i := range a.results {
		for j, v := range a.score(i, sampled) {
			out[j] += v / float64(len(a.results))
		}
	}
	return out
}

// Study tabulates a study's finished RL runs (per configuration, mean ±
// std over seeds: greedy accuracy by K, completion and think length, the
// final training hidden ratio, faithfulness; sampled accuracy by K), adds
// the latent-off evaluation of every latent arm as its own row, and runs
// paired tests over the held-out prompts, greedy and sampled: HRPO against
// GRPO and against each ablation, HRPO against itself with the latent off,
// and each ablation against GRPO. It returns Markdown.
func Study(runs []StudyRun) (string, error) {
	var arms []*studyArm
	for _, g := range rundir.Completed(runs) {
		arm, _ := g.Sums[0].Extra["arm"].(string)
		a := &studyArm{name: g.Config, arm: arm, sums: g.Sums}
		for _, r := range g.Runs {
			pr, err := ReadPromptResults(r.Dir)
			if err != nil {
				return "", err
			}
			a.seeds, a.results, a.dirs = append(a.seeds, r.Seed), append(a.results, pr), append(a.dirs, r.Dir)
		}
		arms = append(arms, a)
	}
	if len(arms) == 0 {
		return "", fmt.Errorf("study: no completed runs with %s", PromptsFile)
	}
	first := arms[0].results[0]
	for _, a := range arms {
		for i, r := range a.results {
			if !slices.Equal(r.K, first.K) || !slices.Equal(r.SampledK, first.SampledK) {
				return "", fmt.Errorf("study: %s seed %d was evaluated on other prompts than %s seed %d (eval settings differ)",
					a.name, a.seeds[i], arms[0].name, arms[0].seeds[0])
			}
		}
	}
	var rows []*studyArm
	for _, a := range arms {
		rows = append(rows, a)
		if a.results[0].CorrectOff != nil {
			rows = append(rows, &studyArm{name: a.name + " (latent off)", arm: a.arm, off: true, seeds: a.seeds, results: a.results, sums: a.sums, dirs: a.dirs})
		}
	}
	ks := distinct(first.K)

	var b strings.Builder
	fmt.Fprintf(&b, "## Greedy accuracy by chain length K\n\nGreedy decoding on %d held-out problems (%d per K); mean ± std over seeds. Latent-off rows evaluate the same checkpoints with plain token inputs.\n\n", len(first.K), len(first.K)/len(ks))
	b.WriteString("| config | seeds |")
	for _, k := range ks {
		fmt.Fprintf(&b, " K=%d |", k)
	}
	b.WriteString(" all | completion length | think length | final hidden ratio (train) | faithfulness |\n|---|---|")
	b.WriteString(strings.Repeat("---|", len(ks)+5) + "\n")
	for _, a := range rows {
		fmt.Fprintf(&b, "| %s | %d |", a.name, len(a.results))
		for _, k := range ks {
			b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return meanWhere(a.score(i, false), a.results[i].K, k) })) + " |")
		}
		b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return meanWhere(a.score(i, false), nil, 0) })) + " |")
		if a.off {
			b.WriteString(" – | – | – | – |\n")
			continue
		}
		b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return meanWhere(a.results[i].Length, nil, 0) })) + " |")
		b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return a.sums[i].Value("extra.think_len") })) + " |")
		b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return a.sums[i].Value("train.hidden_ratio") })) + " |")
		b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return a.sums[i].Value("extra.faith") })) + " |\n")
	}
	if first.Sampled != nil {
		sks := distinct(first.SampledK)
		fmt.Fprintf(&b, "\n## Sampled accuracy by K\n\nShare of correct completions sampled at τ on %d held-out problems (%d per K), the paper's Table 9 setting; mean ± std over seeds.\n\n| config | seeds |", len(first.SampledK), len(first.SampledK)/len(sks))
		for _, k := range sks {
			fmt.Fprintf(&b, " K=%d |", k)
		}
		b.WriteString(" all |\n|---|---|" + strings.Repeat("---|", len(sks)+1) + "\n")
		for _, a := range arms {
			fmt.Fprintf(&b, "| %s | %d |", a.name, len(a.results))
			for _, k := range sks {
				b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return meanWhere(a.score(i, true), a.results[i].SampledK, k) })) + " |")
			}
			b.WriteString(" " + pm(a.perSeed(func(i int) float64 { return meanWhere(a.score(i, true), nil, 0) })) + " |\n")
		}
	}

	b.WriteString(trajectoryTable(arms))

	find := func(arm string) *studyArm {
		for _, a := range arms {
			if a.arm == arm {
				return a
			}
		}
		return nil
	}
	hrpo, grpo := find(string(HRPO)), find(string(GRPO))
	var pairs [][2]*studyArm
	if hrpo != nil {
		if grpo != nil {
			pairs = append(pairs, [2]*studyArm{hrpo, grpo})
		}
		for _, a := range arms {
			if a != hrpo && a != grpo {
				pairs = append(pairs, [2]*studyArm{hrpo, a})
			}
		}
		for _, a := range rows {
			if a.off && a.name == hrpo.name+" (latent off)" {
				pairs = append(pairs, [2]*studyArm{hrpo, a})
			}
		}
	}
	if grpo != nil {
		for _, a := range arms {
			if a != grpo && a != hrpo {
				pairs = append(pairs, [2]*studyArm{a, grpo})
			}
		}
	}
	if len(pairs) > 0 {
		cut := studyCut(arms)
		b.WriteString(seedTable(pairs, first.Sampled != nil, cut))
		b.WriteString("\n## Paired tests over prompts\n\nEach prompt's score is averaged over the seeds of each side; the t-test treats the held-out prompts as the sample (it does not cover seed-to-seed variance: the seed-level table above does). Sign test: prompts where A's seed-mean is higher vs lower.\n")
		b.WriteString(pairedTable("Greedy accuracy", pairs, false, first.K, cut))
		if first.Sampled != nil {
			var sp [][2]*studyArm
			for _, p := range pairs {
				if !p[0].off && !p[1].off {
					sp = append(sp, p)
				}
			}
			b.WriteString(pairedTable("Sampled accuracy", sp, true, first.SampledK, cut))
		}
		if hrpo != nil && grpo != nil && slices.Equal(hrpo.seeds, grpo.seeds) {
			b.WriteString("\n### HRPO against GRPO seed by seed\n\nSeed s of each arm started from the same SFT checkpoint and saw the same prompt stream.\n\n| seed | greedy HRPO | greedy GRPO | difference | p (paired t over prompts) |")
			if first.Sampled != nil {
				b.WriteString(" sampled HRPO | sampled GRPO | difference | p |")
			}
			b.WriteString("\n|---|---|---|---|---|")
			if first.Sampled != nil {
				b.WriteString("---|---|---|---|")
			}
			b.WriteString("\n")
			for i := range hrpo.results {
				t := stats.PairedTest(hrpo.score(i, false), grpo.score(i, false))
				fmt.Fprintf(&b, "| %d | %.4f | %.4f | %+.4f | %s |", hrpo.seeds[i], t.MeanA, t.MeanB, t.Diff, pval(t.P))
				if first.Sampled != nil {
					t := stats.PairedTest(hrpo.score(i, true), grpo.score(i, true))
					fmt.Fprintf(&b, " %.4f | %.4f | %+.4f | %s |", t.MeanA, t.MeanB, t.Diff, pval(t.P))
				}
				b.WriteString("\n")
			}
		}
	}
	return b.String(), nil
}

// trajectoryWindows is how many equal windows of RL steps the trajectory
// table averages over.
const trajectoryWindows = 5

// trajectoryTable follows training: per arm, the mean over seeds of each
// run's average training reward, share of zero-variance groups and hidden
// ratio √(1 − a²) (latent arms) in each fifth of its RL steps, from
// metrics.jsonl. Runs without metrics are left out.
func trajectoryTable(arms []*studyArm) string {
	keys := []struct{ key, title string }{{"reward", "reward"}, {"zero_var", "zero-variance groups"}, {"hidden_ratio", "hidden ratio"}}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Training trajectory\n\nMean over seeds of each run's training metrics averaged within each fifth of its RL steps (metrics.jsonl; one value per step). The hidden ratio is √(1 − a²), the share of the latent mix that comes from the hidden distribution.\n\n| config | metric |")
	for w := range trajectoryWindows {
		fmt.Fprintf(&b, " steps %d–%d%% |", 100*w/trajectoryWindows, 100*(w+1)/trajectoryWindows)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", trajectoryWindows) + "\n")
	for _, a := range arms {
		per := make([][trajectoryWindows][]float64, len(keys)) // [key][window] per-seed values
		for i := range a.sums {
			recs, err := rundir.ReadMetrics(a.dirs[i])
			if err != nil {
				continue
			}
			last := 0
			for _, r := range recs {
				if r.Split == "train" {
					last = max(last, r.Step)
				}
			}
			for ki, k := range keys {
				var sum [trajectoryWindows]float64
				var n [trajectoryWindows]int
				for _, r := range recs {
					v, ok := r.Values[k.key]
					if r.Split != "train" || !ok || math.IsNaN(v) || last == 0 {
						continue
					}
					w := min((r.Step-1)*trajectoryWindows/last, trajectoryWindows-1)
					sum[w] += v
					n[w]++
				}
				for w := range trajectoryWindows {
					if n[w] > 0 {
						per[ki][w] = append(per[ki][w], sum[w]/float64(n[w]))
					}
				}
			}
		}
		for ki, k := range keys {
			if len(per[ki][0]) == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s |", a.name, k.title)
			for w := range trajectoryWindows {
				b.WriteString(" " + pm(per[ki][w]) + " |")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// studyCut is the longest training chain of the study's runs (extra.k_max;
// 8, the recipe default, for runs written before it was recorded).
func studyCut(arms []*studyArm) int {
	for _, a := range arms {
		for _, s := range a.sums {
			if v := s.Value("extra.k_max"); !math.IsNaN(v) {
				return int(v)
			}
		}
	}
	return 8
}

// Power of the seed-level comparisons: a two-sided paired t at level
// studyAlpha with studyPower.
const (
	studyAlpha = 0.05
	studyPower = 0.8
)

// seedTable compares arms with seeds as the sample: each seed's accuracy
// over all held-out prompts, paired by seed (seed s of every arm starts
// from the same SFT checkpoint and sees the same prompt stream), with a 95%
// Student-t interval of the mean difference and the smallest difference the
// design detects at α = 0.05 with 80% power given the observed spread of
// the per-seed differences (stats.DetectableDiff). Pairs whose seeds differ
// are skipped.
func seedTable(pairs [][2]*studyArm, sampled bool, cut int) string {
	var b strings.Builder
	b.WriteString("\n## Differences over seeds\n\nEach seed's accuracy on all held-out prompts, paired by seed; mean difference A − B with its 95% confidence interval (Student t, n − 1 df), the paired t-test's p, and the smallest true difference this many seeds detect at α = 0.05 with 80% power given the observed spread of the per-seed differences (sd). An interval inside ±d rules out differences larger than d.\n\n")
	b.WriteString("| A | B | accuracy | seeds | A − B | 95% CI | p | sd of differences | detectable (80%) | A − B, K ≤ " + strconv.Itoa(cut) + " | 95% CI | A − B, K > " + strconv.Itoa(cut) + " | 95% CI |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	kinds := []bool{false}
	if sampled {
		kinds = append(kinds, true)
	}
	for _, pr := range pairs {
		a, c := pr[0], pr[1]
		if !slices.Equal(a.seeds, c.seeds) {
			continue
		}
		for _, smp := range kinds {
			if smp && (a.off || c.off) {
				continue
			}
			ks := func(x *studyArm, i int) []int {
				if smp {
					return x.results[i].SampledK
				}
				return x.results[i].K
			}
			over := func(keep func(k int) bool) stats.Paired {
				f := func(x *studyArm) []float64 {
					return x.perSeed(func(i int) float64 {
						s, n := 0.0, 0
						for j, v := range x.score(i, smp) {
							if keep(ks(x, i)[j]) {
								s += v
								n++
							}
						}
						return s / float64(max(n, 1))
					})
				}
				return stats.PairedTest(f(a), f(c))
			}
			all := over(func(int) bool { return true })
			in := over(func(k int) bool { return k <= cut })
			out := over(func(k int) bool { return k > cut })
			kind := "greedy"
			if smp {
				kind = "sampled"
			}
			sd := all.SE * math.Sqrt(float64(all.N))
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %+.4f | %s | %s | %.4f | %.4f | %+.4f | %s | %+.4f | %s |\n",
				a.name, c.name, kind, all.N, all.Diff, ci(all), pval(all.P), sd,
				stats.DetectableDiff(sd, all.N, studyAlpha, studyPower), in.Diff, ci(in), out.Diff, ci(out))
		}
	}
	return b.String()
}

// ci renders a paired test's 95% interval.
func ci(p stats.Paired) string {
	if math.IsNaN(p.Lo) {
		return "–"
	}
	return fmt.Sprintf("[%+.4f, %+.4f]", p.Lo, p.Hi)
}

// pairedTable renders the paired tests of pairs on greedy or sampled
// scores; ks are the prompts' chain lengths.
func pairedTable(title string, pairs [][2]*studyArm, sampled bool, ks []int, cut int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s\n\n| A | B | prompts | A | B | A − B | SE | t | p (t-test) | wins/losses | p (sign) | A − B, K ≤ %d | A − B, K ≥ %d |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", title, cut, cut+1)
	for _, pr := range pairs {
		a, c := pr[0], pr[1]
		x, y := a.promptMeans(sampled), c.promptMeans(sampled)
		t := stats.PairedTest(x, y)
		in, out := splitByK(x, y, ks, cut)
		fmt.Fprintf(&b, "| %s | %s | %d | %.4f | %.4f | %+.4f | %.4f | %.2f | %s | %d/%d | %s | %+.4f | %+.4f |\n",
			a.name, c.name, t.N, t.MeanA, t.MeanB, t.Diff, t.SE, t.T, pval(t.P), t.Wins, t.Losses, pval(t.SignP), in, out)
	}
	return b.String()
}

// perSeed evaluates f for each of the arm's runs.
func (a *studyArm) perSeed(f func(i int) float64) []float64 {
	out := make([]float64, len(a.results))
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// meanWhere is the mean of xs where ks equals k (all when ks is nil).
func meanWhere(xs []float64, ks []int, k int) float64 {
	s, n := 0.0, 0
	for i, x := range xs {
		if ks == nil || ks[i] == k {
			s += x
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// splitByK returns the mean difference x − y over prompts with K ≤ cut
// and over those with K > cut.
func splitByK(x, y []float64, ks []int, cut int) (in, out float64) {
	var si, so float64
	var ni, no int
	for i := range x {
		if ks[i] <= cut {
			si += x[i] - y[i]
			ni++
		} else {
			so += x[i] - y[i]
			no++
		}
	}
	return si / float64(max(1, ni)), so / float64(max(1, no))
}

// pm renders mean ± std of the finite values ("–" if none).
func pm(xs []float64) string {
	var keep []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			keep = append(keep, x)
		}
	}
	if len(keep) == 0 {
		return "–"
	}
	m, s := stats.MeanStd(keep)
	return fmt.Sprintf("%.3f ± %.3f", m, s)
}

func pval(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p < 1e-4:
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.4f", p)
}

func distinct(ks []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, k := range ks {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Ints(out)
	return out
}
