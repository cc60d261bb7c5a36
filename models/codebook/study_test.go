package codebook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/data/tokfsm"
	"github.com/hiddenlab/hiddenlab/rundir"
)

// Study reads each run's recipe (C, layers, the FSM's Bayes CE) and
// summary (CE, per-layer precisions and JSD, dead-code shares) and tables
// them per configuration and per layer.
func TestStudy(t *testing.T) {
	root := t.TempDir()
	write := func(config string, seed int, at string, summary string) StudyRun {
		dir := filepath.Join(root, config, fmt.Sprintf("seed-%d", seed))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		rec := fmt.Sprintf("name: t\nmodel:\n  family: codebook\n  layers: 2\n  width: 16\n  heads: 2\n  codebook: {at: %s, codes: 100}\ndata:\n  kind: tokfsm\n  tokfsm: {states: 40, edges: 4, base: 10, seq_len: 64, seed: 42}\ntrain: {steps: 1, batch: 1}\n", at)
		require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.RecipeFile), []byte(rec), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.SummaryFile), []byte(summary), 0o644))
		return StudyRun{Config: config, Seed: seed, Dir: dir}
	}
	cb := func(ce, p0, n0 float64, dead float64) string {
		return fmt.Sprintf(`{"status": "completed", "family": "codebook", "eval": {"loss": %g, "dead/blocks.0.mlp": %g, "dead/blocks.1.mlp": 0.5,
			"dead/blocks.0.attn_preproj": 0.9, "dead/blocks.1.attn_preproj": 0.9},
			"extra": {"state_code_precision": 0.8, "best_neuron_precision": 0.5, "transition_accuracy": 0.99,
			"state_code_precision_l0": %g, "best_neuron_precision_l0": %g, "state_code_precision_l1": 0.9, "best_neuron_precision_l1": 0.4,
			"jsd MLP layer 0": 0.7, "jsd MLP layer 1": 0.6, "jsd attention layer 0": 0.5, "jsd attention layer 1": 0.4,
			"jsd all MLP codebooks": 0.3, "jsd all attention codebooks": 0.2}}`, ce, dead, p0, n0)
	}
	runs := []StudyRun{
		write("vanilla", 1, "[]", `{"status": "completed", "family": "codebook", "eval": {"loss": 0.75}, "extra": {"transition_accuracy": 0.98}}`),
		write("cb", 1, "[attn_preproj, mlp]", cb(0.80, 0.6, 0.5, 0.75)),
		write("cb", 2, "[attn_preproj, mlp]", cb(0.76, 0.8, 0.5, 0.25)),
		write("failed", 1, "[mlp]", `{"status": "failed"}`),
	}
	f, err := tokfsm.New(tokfsm.SmallConfig)
	require.NoError(t, err)
	bayes, _ := f.BayesExact() // 0.7341 (SmallConfig is the recipe's FSM)
	md, err := Study(runs)
	require.NoError(t, err)
	for _, want := range []string{
		fmt.Sprintf("| vanilla | 1 | – | 0.750 | %.4f | %.3f | 0.980 | – | – | – | – | – | – | – |", bayes, 0.75-bayes),
		// CE 0.78 ± 0.028; live MLP (0.25+0.5)/2 and (0.75+0.5)/2 → 0.5 of 100.
		fmt.Sprintf("| cb | 2 | 100 | 0.780 ± 0.028 | %.4f | %.3f ± 0.028 | 0.990 ± 0.000 | 0.800 ± 0.000 | 0.500 ± 0.000 | 0.300 ± 0.000 | 0.500 (50 of 100) | 0.100 (10 of 100) | 0.300 ± 0.000 | 0.200 ± 0.000 |", bayes, 0.78-bayes),
		// Layer 0: code 0.7 ± 0.141, neuron 0.5, difference 0.2 ± 0.141; live MLP 1 − (0.75, 0.25) → 0.5.
		"| cb | 0 | 0.700 ± 0.141 | 0.500 ± 0.000 | 0.200 ± 0.141 | 0.700 ± 0.000 | 0.500 ± 0.000 | 0.500 (50 of 100) | 0.100 (10 of 100) |",
		"| cb | 1 | 0.900 ± 0.000 | 0.400 ± 0.000 | 0.500 ± 0.000 | 0.600 ± 0.000 | 0.400 ± 0.000 | 0.500 (50 of 100) | 0.100 (10 of 100) |",
	} {
		require.Contains(t, md, want)
	}
	require.NotContains(t, md, "failed")
	require.False(t, strings.Contains(md, "| vanilla | 0 |"), "no per-layer rows without codebooks")

	_, err = Study([]StudyRun{runs[3]})
	require.ErrorContains(t, err, "no completed runs")
	other := write("rl", 1, "[]", `{"status": "completed", "family": "hrpo"}`)
	_, err = Study([]StudyRun{other})
	require.ErrorContains(t, err, `a "hrpo" run, not a codebook run`)
}
