package recipe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type inner struct {
	LR    float64   `key:"lr"`
	Betas []float64 `key:"betas"`
}

type schema struct {
	Steps int            `key:"steps" required:"true"`
	Name  string         `key:"name"`
	On    bool           `key:"on"`
	Seed  uint64         `key:"seed"`
	Opt   inner          `key:"opt"`
	Tags  map[string]int `key:"tags"`
	Ptr   *inner         `key:"ptr"`
	Raw   any            `key:"raw"`
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name string
		src  map[string]any
		want string // error substring; "" for success
	}{
		{"ok", map[string]any{"steps": 3, "name": "x", "on": true, "seed": 7, "opt": map[string]any{"lr": 1, "betas": []any{0.9, 0.95}},
			"tags": map[string]any{"a": 1}, "ptr": map[string]any{"lr": 0.5}, "raw": []any{"anything"}}, ""},
		{"float that is an integer", map[string]any{"steps": 1e3}, ""},
		{"missing required", map[string]any{"name": "x"}, "p.steps: required, but missing"},
		{"unknown", map[string]any{"steps": 1, "stepz": 2}, `p.stepz: unknown key (did you mean "steps"?); known keys: name, on, opt, ptr, raw, seed, steps, tags`},
		{"string for int", map[string]any{"steps": "3"}, `p.steps: expected an integer, got string "3"`},
		{"fraction for int", map[string]any{"steps": 2.5}, `p.steps: expected an integer, got number 2.5`},
		{"int for bool", map[string]any{"steps": 1, "on": 1}, `p.on: expected true or false, got integer 1`},
		{"negative for uint", map[string]any{"steps": 1, "seed": -1}, `p.seed: expected a non-negative integer, got integer -1`},
		{"bad nested", map[string]any{"steps": 1, "opt": map[string]any{"lr": "fast"}}, `p.opt.lr: expected a number, got string "fast"`},
		{"bad list item", map[string]any{"steps": 1, "opt": map[string]any{"betas": []any{0.9, "x"}}}, `p.opt.betas[1]: expected a number`},
		{"scalar for section", map[string]any{"steps": 1, "opt": 3}, `p.opt: expected a mapping, got integer 3`},
		{"bad map value", map[string]any{"steps": 1, "tags": map[string]any{"a": "b"}}, `p.tags.a: expected an integer`},
		{"null", map[string]any{"steps": nil}, `p.steps: expected an integer, got null`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s schema
			err := Decode(c.src, &s, "p")
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
			var ke *KeyError
			require.True(t, errors.As(err, &ke))
		})
	}
	var s schema
	require.NoError(t, Decode(map[string]any{"steps": 3, "opt": map[string]any{"lr": 2}}, &s, ""))
	require.Equal(t, 2.0, s.Opt.LR)
	enc := Encode(&s)
	require.Equal(t, 3, enc["steps"])
	require.NotContains(t, enc, "ptr", "nil optional sections are left out")
}

func TestDecodeInline(t *testing.T) {
	var s struct {
		inner `key:",inline"`
		K     int `key:"k"`
	}
	require.NoError(t, Decode(map[string]any{"lr": 0.5, "k": 2}, &s, "m"))
	require.Equal(t, 0.5, s.LR)
	require.Equal(t, map[string]any{"lr": 0.5, "betas": []any{}, "k": 2}, Encode(&s))
	require.ErrorContains(t, Decode(map[string]any{"lrr": 1}, &s, "m"), "known keys: betas, k, lr")
}

func TestParseOverrides(t *testing.T) {
	m, err := ParseOverrides([]string{"train.steps=200", "model.k=8", "train.optimizer.betas=[0.9, 0.95]", "name=hello world", "flag=true"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"train": map[string]any{"steps": 200, "optimizer": map[string]any{"betas": []any{0.9, 0.95}}},
		"model": map[string]any{"k": 8}, "name": "hello world", "flag": true,
	}, m)
	for _, bad := range []string{"novalue", "=3", "a..b=1", "a=[unclosed", "a b=1"} {
		_, err := ParseOverrides([]string{bad})
		require.Error(t, err, bad)
	}
	_, err = ParseOverrides([]string{"a=1", "a.b=2"})
	require.ErrorContains(t, err, "a is both a value and a section")
}

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	cfgs := filepath.Join(dir, "configs")
	require.NoError(t, os.MkdirAll(cfgs, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cfgs, "root.yaml"), []byte("steps: 1\nname: root\nopt: {lr: 0.1, betas: [1, 2]}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cfgs, "mid.yaml"), []byte("base: root.yaml\nsteps: 2\n"), 0o644))
	p := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(p, []byte("base: mid.yaml\nopt: {lr: 0.3}\n"), 0o644))
	r, err := Load(p, cfgs, []string{"HIDDENLAB_OPT__BETAS=[3, 4]", "HIDDENLAB_MALLOC=default", "OTHER=1", "HIDDENLAB_OPT__LR=0.4"}, []string{"opt.lr=0.5"})
	require.NoError(t, err)
	require.Len(t, r.Sources, 5)
	require.Equal(t, map[string]any{"opt": map[string]any{"betas": []any{3, 4}, "lr": 0.4}}, r.Sources[3].Values,
		"only HIDDENLAB_<SECTION>__<KEY> variables are recipe keys")
	var s schema
	require.NoError(t, r.Decode("", &s))
	require.Equal(t, 2, s.Steps)
	require.Equal(t, "root", s.Name)
	require.Equal(t, 0.5, s.Opt.LR)
	require.Equal(t, []float64{3, 4}, s.Opt.Betas, "the environment overrides the files")

	// A type error is attributed to the layer that holds it.
	r, err = Load(p, cfgs, []string{"HIDDENLAB_OPT__LR=many"}, nil)
	require.NoError(t, err)
	err = r.Decode("", &s)
	require.ErrorContains(t, err, `environment HIDDENLAB_OPT__LR: opt.lr: expected a number, got string "many"`)

	require.NoError(t, os.WriteFile(filepath.Join(cfgs, "root.yaml"), []byte("base: mid.yaml\n"), 0o644))
	_, err = Load(p, cfgs, nil, nil)
	require.ErrorContains(t, err, "base chain loops back")
}

// TestSourceOf: every key is attributed to the highest layer that sets it,
// environment values to their variable, stage values to the stage.
func TestSourceOf(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	require.NoError(t, os.WriteFile(base, []byte("steps: 1\nname: root\nopt: {lr: 0.1, betas: [1, 2]}\n"), 0o644))
	p := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(p, []byte("base: base.yaml\nsteps: 2\nstages:\n  - {name: pre, opt: {lr: 0.2}}\n  - {name: fine}\n"), 0o644))
	r, err := Load(p, dir, []string{"HIDDENLAB_OPT__BETAS=[3, 4]", "HIDDENLAB_TAGS__A=1"}, []string{"seed=4", "ptr={lr: 1}"})
	require.NoError(t, err)
	for key, want := range map[string]string{
		"steps":        p,
		"name":         base,
		"opt.lr":       base,
		"opt.betas":    "environment HIDDENLAB_OPT__BETAS",
		"opt.betas[1]": "environment HIDDENLAB_OPT__BETAS",
		"OPT.Betas":    "environment HIDDENLAB_OPT__BETAS",
		"tags":         "environment HIDDENLAB_TAGS__A",
		"seed":         "command line",
		"ptr.lr":       "command line",
		"opt":          "environment HIDDENLAB_OPT__BETAS",
		"on":           DefaultSource,
		"opt.eps":      DefaultSource,
		"name.x":       DefaultSource,
		"":             DefaultSource,
	} {
		require.Equal(t, want, r.SourceOf(key), key)
	}
	require.Equal(t, []string{base, p, "environment (HIDDENLAB_OPT__BETAS, HIDDENLAB_TAGS__A)", "command line"}, r.Layers())

	s, err := r.WithStage(0)
	require.NoError(t, err)
	require.Equal(t, p+` stage "pre"`, s.SourceOf("opt.lr"))
	require.Equal(t, "environment HIDDENLAB_OPT__BETAS", s.SourceOf("opt.betas"), "the stage keeps the variables")
	require.Equal(t, p, s.SourceOf("steps"))

	require.NoError(t, r.CheckTopLevel("steps", "name", "opt", "stages", "tags", "seed", "ptr"))
	r, err = Load(p, dir, []string{"HIDDENLAB_OTP__LR=1"}, nil)
	require.NoError(t, err)
	require.EqualError(t, r.CheckTopLevel("steps", "name", "opt", "stages"),
		`environment HIDDENLAB_OTP__LR: otp: unknown key (did you mean "opt"?); known keys: name, opt, stages, steps`)
}

// TestStrictEnvironment: a HIDDENLAB_ variable is a setting or a recipe key.
func TestStrictEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.yaml")
	require.NoError(t, os.WriteFile(p, []byte("steps: 1\n"), 0o644))
	for _, c := range []struct{ env, want string }{
		{"HIDDENLAB_TRAINN=5", "environment: HIDDENLAB_TRAINN: unknown variable; recipe keys are HIDDENLAB_<SECTION>__<KEY> (e.g. HIDDENLAB_TRAIN__STEPS), settings are HIDDENLAB_MALLOC, HIDDENLAB_DIST_TIMEOUT, HIDDENLAB_SHIM_DIR, HIDDENLAB_NCCL"},
		{"HIDDENLAB_MALOC=default", "HIDDENLAB_MALOC: unknown variable (did you mean HIDDENLAB_MALLOC?)"},
		{"HIDDENLAB_TRAIN_STEPS=5", "HIDDENLAB_TRAIN_STEPS: unknown variable (did you mean HIDDENLAB_TRAIN__STEPS?)"},
		{"HIDDENLAB_=1", "environment: HIDDENLAB_: unknown variable"},
		{"HIDDENLAB_TRAIN____STEPS=1", "environment: HIDDENLAB_TRAIN____STEPS: empty key segment"},
		{"HIDDENLAB_TRAIN__STEPS=[", "environment: HIDDENLAB_TRAIN__STEPS: value is not valid YAML"},
	} {
		_, err := Load(p, dir, []string{"HIDDENLAB_MALLOC=default", c.env}, nil)
		require.ErrorContains(t, err, c.want, c.env)
		require.ErrorContains(t, CheckEnv([]string{c.env}), c.want, c.env)
	}
	for _, ok := range append([]string{"HIDDENLAB_TRAIN__STEPS=3", "OTHER=1", "hiddenlab_x=1"}, Settings...) {
		if !strings.Contains(ok, "=") {
			ok += "=1"
		}
		require.NoError(t, CheckEnv([]string{ok}), ok)
	}
}

// TestWriteAnnotated: the annotated recipe is YAML that reads back as the
// map, with one source comment per value.
func TestWriteAnnotated(t *testing.T) {
	m := map[string]any{
		"name":   "x",
		"train":  map[string]any{"steps": 5, "optimizer": map[string]any{"betas": []any{0.9, 0.95}, "name": "adamw"}, "init_from": ""},
		"model":  map[string]any{"family": "gpt", "empty": map[string]any{}},
		"stages": []any{map[string]any{"name": "a", "train": map[string]any{"steps": 1}}},
		"eval":   map[string]any{"prompts": []any{"Once: upon", "it's"}, "on": true},
	}
	var b strings.Builder
	require.NoError(t, WriteAnnotated(&b, m, []string{"name", "model", "train"}, func(k string) string { return "src of " + k }))
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Regexp(t, `^name: x +# src of name$`, lines[0])
	require.Equal(t, "model:", lines[1])
	require.Contains(t, out, "  steps: 5")
	require.Regexp(t, `\n    betas: \[0\.9, 0\.95\] +# src of train\.optimizer\.betas\n`, out)
	require.Regexp(t, `\n  init_from: "" +# src of train\.init_from\n`, out)
	require.Regexp(t, `\nstages: +# src of stages\n  - name: a\n`, out)
	require.Less(t, strings.Index(out, "train:"), strings.Index(out, "eval:"), "listed top-level keys first")
	var back map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(out), &back))
	require.Equal(t, m, back)
}

// TestDecodeFile: one file, strictly, errors naming file and key.
func TestDecodeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.yaml")
	require.NoError(t, os.WriteFile(p, []byte("steps: 2\nopt: {lr: 0.5}\n"), 0o644))
	var s schema
	require.NoError(t, DecodeFile(p, &s))
	require.Equal(t, 0.5, s.Opt.LR)
	require.NoError(t, os.WriteFile(p, []byte("steps: 2\nopt: {lrr: 0.5}\n"), 0o644))
	require.EqualError(t, DecodeFile(p, &s), p+`: opt.lrr: unknown key (did you mean "lr"?); known keys: betas, lr`)
	require.NoError(t, os.WriteFile(p, []byte("- 1\n"), 0o644))
	require.ErrorContains(t, DecodeFile(p, &s), "expected a mapping of keys, got a list")
}

// FuzzLoad: any bytes as a recipe file either load and decode or fail with an
// error; nothing panics.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"steps: 3\n", "steps: [1, 2]\n", "opt: {lr: x}\n", "base: missing.yaml\n", "tags: {a: 1, b: [2]}\n",
		"steps: 1\nptr: null\nraw: {x: [1, {y: 2}]}\n", ": :\n", "steps: 1e400\n", "\x00\xff", "- a\n- b\n",
		"opt:\n  betas: [.nan, .inf]\n", "steps: 9223372036854775808\n", "base: 3\n",
	} {
		f.Add(seed, "steps=2")
	}
	f.Fuzz(func(t *testing.T, body, override string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "r.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Skip()
		}
		r, err := Load(p, dir, nil, []string{override})
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		var s schema
		if err := r.Decode("", &s); err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error")
		}
	})
}
