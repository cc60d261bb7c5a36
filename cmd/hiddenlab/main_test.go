package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/hiddenlab/hiddenlab/runner"
)

// hl runs the command line in process, as main does, and returns the exit
// status and the output.
func hl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// commandPaths lists every command and verb of the tree, as argument lists
// (the root is the empty list).
func commandPaths() [][]string {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(newRoot(&bytes.Buffer{}, &bytes.Buffer{}), nil)
	return paths
}

// noArgsCode is the exit status of each command without arguments: 2 where
// arguments are required; hrpo study and report fail (1) in a directory
// without experiments/hrpo.yaml.
var noArgsCode = map[string]int{
	"": 2, "run": 2, "sweep": 2, "config": 2,
	"codebook": 2, "codebook cache": 2, "codebook top": 2, "codebook search": 2, "codebook topics": 2, "codebook study": 2,
	"mohd": 2, "mohd analyze": 2, "hrpo": 2, "hrpo study": 1, "hrpo report": 1,
	"import": 2, "import hf": 2, "export": 2, "export hf": 2,
	"data": 2, "data pretokenize": 2,
	"info": 0, "help": 0, "atlas": 2,
	"completion": 2, "completion bash": 0, "completion zsh": 0, "completion fish": 0, "completion powershell": 0,
}

// TestEveryCommand feeds every command and verb -h, an unknown flag (in both
// dash styles) and no arguments.
func TestEveryCommand(t *testing.T) {
	t.Chdir(t.TempDir()) // no recipes/ or experiments/ here: nothing can start training
	paths := commandPaths()
	require.Greater(t, len(paths), 15)
	seen := map[string]bool{}
	for _, path := range paths {
		name := strings.Join(path, " ")
		seen[name] = true
		display := strings.TrimSpace("hiddenlab " + name)
		t.Run(strings.ReplaceAll(display, " ", "_"), func(t *testing.T) {
			for _, h := range []string{"-h", "--help", "-help"} {
				code, out, errOut := hl(t, append(path, h)...)
				require.Equal(t, 0, code, "%s %s: %s", display, h, errOut)
				require.Contains(t, out, "Usage:", h)
				require.Contains(t, out, display, h)
				require.Empty(t, errOut, h)
			}
			for _, bad := range []string{"--no-such-flag", "-no-such-flag", "--no-such-flag=3"} {
				code, out, errOut := hl(t, append(path, bad)...)
				require.Equal(t, 2, code, "%s %s: %s", display, bad, errOut)
				require.Contains(t, errOut, display+": unknown flag: --no-such-flag", bad)
				require.Contains(t, errOut, "Run '"+display+" --help' for usage.", bad)
				require.Empty(t, out, bad)
			}
			want, ok := noArgsCode[name]
			require.True(t, ok, "add %q to noArgsCode", name)
			code, out, errOut := hl(t, path...)
			require.Equal(t, want, code, "%s: %s", display, errOut)
			switch want {
			case 0:
				require.NotEmpty(t, out)
			case 2:
				require.Regexp(t, `^`+regexp.QuoteMeta(display)+`: \S.*\nRun '`+regexp.QuoteMeta(display)+` --help' for usage.\n$`, errOut)
			default:
				require.True(t, strings.HasPrefix(errOut, "hiddenlab: ") && len(errOut) > 20, errOut)
			}
		})
	}
	for name := range noArgsCode {
		require.True(t, seen[name], "%q is no longer a command", name)
	}
}

// TestUsageErrors: wrong arguments and flag values are usage errors (2) with
// a message naming what is wrong.
func TestUsageErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, c := range []struct {
		args string
		want string
	}{
		{"rn", "unknown command \"rn\" (want one of: atlas, codebook, completion, config, data, export, hrpo, import, info, mohd, run, sweep)\n\nDid you mean this?\n\trun\n"},
		{"swep x.yaml", "Did you mean this?\n\tsweep"},
		{"codebook topic d", "hiddenlab codebook: unknown verb \"topic\""},
		{"codebook cache", "want <run dir> (got 0 arguments)"},
		{"codebook cache a b", "want <run dir> (got 2 arguments)"},
		{"codebook cache -seqs -5 d", "hiddenlab codebook cache: --seqs -5: must be at least 1"},
		{"codebook cache --seqs=0 d", "--seqs 0: must be at least 1"},
		{"codebook cache -seqs five d", `invalid argument "five" for "--seqs" flag`},
		{"codebook cache -source test d", `--source "test": want valid or train`},
		{"codebook cache -threads -1 d", "--threads -1: must be at least 0"},
		{"codebook top d b", "want <run dir> <codebook> <code>"},
		{"codebook top d b -3", "unknown shorthand flag: '3' in -3"},
		{"codebook top d b x", `code "x": want a non-negative integer`},
		{"codebook top -n 0 d b 3", "--n 0: must be at least 1"},
		{"codebook search d", "want <run dir> <regex> ..."},
		{"codebook search d ( ", `regex "(": error parsing regexp`},
		{"codebook search -min-recall 2 d x", "--min-recall 2: want a number in [0, 1]"},
		{"codebook topics d -fraction 1", "--fraction 1: want a number in (0, 1)"},
		{"codebook topics d -context", "--context needs --match <regex>"},
		{"codebook topics d -min-hits 0", "--min-hits 0: must be at least 1"},
		{"codebook search d x -neurons=maybe", `invalid argument "maybe" for "--neurons" flag`},
		{"mohd analyze -seqs 1 d", "--seqs 1: must be at least 2"},
		{"mohd analyze -threads 0 d", "--threads 0: must be at least 1"},
		{"mohd analyse d", "Did you mean this?\n\tanalyze"},
		{"run", "name a recipe (or --resume <run dir>)"},
		{"run -nproc 0 x.yaml", "hiddenlab run: --nproc 0: must be at least 1"},
		{"run -nproc -1 x.yaml", "--nproc -1: must be at least 1"},
		{"run x.yaml steps", `argument "steps": want key.path=value`},
		{"run -resume d steps", `argument "steps": want key.path=value`},
		{"sweep", "name one experiment file (got 0 arguments)"},
		{"sweep a b", "name one experiment file (got 2 arguments)"},
		{"sweep -workers -2 x", "--workers -2: must be at least 0"},
		{"sweep -emit pbs x", `--emit "pbs": want slurm or k8s`},
		{"config", "hiddenlab config: name a recipe"},
		{"config r.yaml steps", `argument "steps": want key.path=value`},
		{"hrpo study a b", "name at most one experiment file (got 2 arguments)"},
		{"hrpo stdy", "Did you mean this?\n\tstudy"},
		{"hrpo report -workers -1", "--workers -1: must be at least 0"},
		{"info x", `takes no arguments (got ["x"])`},
		{"help rn", "unknown help topic \"rn\""},
		{"help codebook tpo", "unknown help topic \"tpo\" (want one of: cache, search, study, top, topics)"},
		{"help info x", `unknown help topic "info x"`},
		{"completion tcsh", `unknown shell "tcsh"`},
	} {
		code, out, errOut := hl(t, strings.Fields(c.args)...)
		require.Equal(t, 2, code, "%s: %s", c.args, errOut)
		require.Contains(t, errOut, c.want, c.args)
		require.Contains(t, errOut, "--help' for usage.", c.args)
		require.Empty(t, out, c.args)
	}
}

func TestHelpVersionCompletion(t *testing.T) {
	code, out, _ := hl(t, "--version")
	require.Equal(t, 0, code)
	require.Regexp(t, `^hiddenlab dev \(libtorch \S+, go\S+, \w+/\w+\)\n$`, out)
	code, out2, _ := hl(t, "-version")
	require.Equal(t, 0, code)
	require.Equal(t, out, out2)

	code, out, _ = hl(t, "help", "codebook", "top")
	require.Equal(t, 0, code)
	require.Contains(t, out, "hiddenlab codebook top <run dir> <codebook> <code> [flags]")
	require.Contains(t, out, "--threads int") // the verbs share the codebook flag
	_, direct, _ := hl(t, "codebook", "top", "-h")
	require.Equal(t, direct, out)

	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := hl(t, "completion", shell)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "hiddenlab", shell)
	}
	// Completion requests see the commands and flags.
	code, out, _ = hl(t, "__complete", "code")
	require.Equal(t, 0, code)
	require.Contains(t, out, "codebook")
	code, out, _ = hl(t, "__complete", "run", "--npr")
	require.Equal(t, 0, code)
	require.Contains(t, out, "--nproc")
}

func TestExitCode(t *testing.T) {
	require.Equal(t, 0, exitCode(nil))
	require.Equal(t, 1, exitCode(&failure{errors.New("boom")}))
	require.Equal(t, 130, exitCode(&failure{fmt.Errorf("stage x: %w", runner.ErrInterrupted)}))
	require.Equal(t, 2, exitCode(usagef("bad")))
	require.Equal(t, 2, exitCode(errors.New("cobra's own")))
}

func TestNormalizeFlags(t *testing.T) {
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range []struct{ in, want string }{
		{"run -nproc 2 r.yaml a.b=-1", "run --nproc 2 r.yaml a.b=-1"},
		{"run -resume=d -no-progress", "run --resume=d --no-progress"},
		{"run -h", "run -h"},
		{"-version", "--version"},
		{"codebook cache -seqs -5 d", "codebook cache --seqs -5 d"},
		{"codebook topics d -match -dragon", "codebook topics d --match -dragon"},
		{"codebook -threads 2 cache d", "codebook --threads 2 cache d"},
		{"codebook top d b -3", "codebook top d b -3"},
		{"codebook search d x -neurons=false -min-recall 0.1", "codebook search d x --neurons=false --min-recall 0.1"},
		{"run r.yaml -- -nproc", "run r.yaml -- -nproc"},
		{"run -bogus r.yaml", "run --bogus r.yaml"},
		{"sweep x.yaml -workers 2 -tabulate", "sweep x.yaml --workers 2 --tabulate"},
		{"help run", "help run"},
		{"codebook top d b 3 -n 5", "codebook top d b 3 --n 5"},
		{"codebook top -h", "codebook top -h"},
		{"-v", "-v"},
	} {
		require.Equal(t, c.want, strings.Join(normalizeFlags(root, strings.Fields(c.in)), " "), c.in)
	}
}

// writeRecipes writes a base config and a recipe (and a staged one) into a
// temporary directory and returns the directory.
func writeRecipes(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"configs/base.yaml": "train: {optimizer: {lr: 0.01}, log_every: 7}\n",
		"recipes/tiny.yaml": "base: base.yaml\nname: tiny\nmodel: {family: gpt, width: 16}\ntrain: {steps: 10}\n",
		"recipes/staged.yaml": "base: base.yaml\nmodel: {family: gpt}\ntrain: {steps: 10}\n" +
			"stages:\n  - {name: pre, train: {steps: 20}}\n  - {name: fine, train: {optimizer: {lr: 0.001}}}\n",
		"experiments/e.yaml": "recipe: tiny.yaml\nseed: [1, 2]\n",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

// TestConfig: the resolved recipe names the source of every value.
func TestConfig(t *testing.T) {
	dir := writeRecipes(t)
	t.Chdir(dir)
	t.Setenv("HIDDENLAB_TRAIN__BATCH", "8")
	code, out, errOut := hl(t, "config", "tiny", "train.steps=5", "model.width=32")
	require.Equal(t, 0, code, errOut)
	recipePath, basePath := filepath.Join("recipes", "tiny.yaml"), filepath.Join("configs", "base.yaml")
	for _, want := range []string{
		`# recipes/tiny.yaml resolved; layers, lowest precedence first:\n#   configs/base.yaml\n#   recipes/tiny.yaml\n#   environment \(HIDDENLAB_TRAIN__BATCH\)\n#   command line\n# \(default: `,
		`\nname: tiny +# ` + regexp.QuoteMeta(recipePath) + `\n`,
		`\nmodel:\n  family: gpt +# ` + regexp.QuoteMeta(recipePath) + `\n  width: 32 +# command line\n`,
		`\n  steps: 5 +# command line\n`,
		`\n  batch: 8 +# environment HIDDENLAB_TRAIN__BATCH\n`,
		`\n    lr: 0.01 +# ` + regexp.QuoteMeta(basePath) + `\n`,
		`\n  log_every: 7 +# ` + regexp.QuoteMeta(basePath) + `\n`,
		`\n  threads: 2 +# default\n`,
		`\n    betas: \[0.9, 0.95\] +# default\n`,
		`\noutput:\n  dir: "" +# default\n  keep_checkpoints: 2 +# default\n  progress: true +# default\n`,
	} {
		require.Regexp(t, want, out)
	}
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(out), &m), "the printout is YAML")
	require.Equal(t, 5, m["train"].(map[string]any)["steps"])
	require.Empty(t, errOut)

	// A staged recipe: one document per stage, or the one asked for.
	code, out, errOut = hl(t, "config", "staged.yaml")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 2, strings.Count(out, "\n---\n"))
	require.Regexp(t, `# stage 0 of 2: pre\nname: staged +# default\n`, out)
	require.Regexp(t, `\n  steps: 20 +# recipes/staged.yaml stage "pre"\n`, out)
	code, out, errOut = hl(t, "config", "--stage", "fine", "staged.yaml")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "stage 0")
	require.Regexp(t, `\n    lr: 0.001 +# recipes/staged.yaml stage "fine"\n`, out)
	require.Regexp(t, `\n  steps: 10 +# recipes/staged.yaml\n`, out)
	code, _, errOut = hl(t, "config", "-stage", "2", "staged.yaml")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--stage 2: recipes/staged.yaml has stages pre, fine (by name or index 0-1)")

	// Bad values are errors naming their real source; nothing is printed.
	for _, c := range []struct {
		env, arg, want string
	}{
		{"", "train.steps=-5", "hiddenlab: command line: train.steps: must be positive"},
		{"-5", "", "hiddenlab: environment HIDDENLAB_TRAIN__STEPS: train.steps: must be positive"},
		{"", "train.stepz=5", `command line: train.stepz: unknown key (did you mean "steps"?)`},
		{"", "model.family=nope", `unknown family "nope"`},
	} {
		if c.env != "" {
			t.Setenv("HIDDENLAB_TRAIN__STEPS", c.env)
		}
		args := []string{"config", "tiny.yaml"}
		if c.arg != "" {
			args = append(args, c.arg)
		}
		code, out, errOut := hl(t, args...)
		require.Equal(t, 1, code, c.want)
		require.Contains(t, errOut, c.want)
		require.Empty(t, out)
		os.Unsetenv("HIDDENLAB_TRAIN__STEPS")
	}
	code, _, errOut = hl(t, "config", "missing.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `recipe "missing.yaml" not found`)

	// Experiment files are read by the same strict decoder.
	code, _, errOut = hl(t, "sweep", "-tabulate", "e.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, filepath.Join("experiments", "e.yaml")+`: seed: unknown key (did you mean "seeds"?)`)
}

// TestStrictEnvironment: an unknown HIDDENLAB_ variable stops every command
// (help and completion excepted) with an error naming it.
func TestStrictEnvironment(t *testing.T) {
	dir := writeRecipes(t)
	t.Chdir(dir)
	t.Setenv("HIDDENLAB_TRAINN", "5")
	want := "hiddenlab: environment: HIDDENLAB_TRAINN: unknown variable; recipe keys are HIDDENLAB_<SECTION>__<KEY> (e.g. HIDDENLAB_TRAIN__STEPS), settings are HIDDENLAB_MALLOC, HIDDENLAB_DIST_TIMEOUT, HIDDENLAB_SHIM_DIR, HIDDENLAB_NCCL, HIDDENLAB_SIMD\n"
	for _, args := range [][]string{{"config", "tiny.yaml"}, {"info"}, {"run", "tiny.yaml"}, {"sweep", "e.yaml"}} {
		code, out, errOut := hl(t, args...)
		require.Equal(t, 1, code, args)
		require.Equal(t, want, errOut, args)
		require.Empty(t, out, args)
	}
	for _, args := range [][]string{{"config", "-h"}, {"completion", "bash"}, {"help", "run"}} {
		code, _, errOut := hl(t, args...)
		require.Equal(t, 0, code, "%v: %s", args, errOut)
	}
	os.Unsetenv("HIDDENLAB_TRAINN")

	// A variable with a section the recipe does not have.
	t.Setenv("HIDDENLAB_TRAINN__STEPS", "5")
	code, _, errOut := hl(t, "config", "tiny.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "trainn: unknown key")
	os.Unsetenv("HIDDENLAB_TRAINN__STEPS")

	t.Setenv("HIDDENLAB_MALOC", "default")
	code, _, errOut = hl(t, "info")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "HIDDENLAB_MALOC: unknown variable (did you mean HIDDENLAB_MALLOC?)")
}
