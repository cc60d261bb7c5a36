// Package recipe loads YAML recipes: files composed from a base in configs/,
// overridden by the environment and the command line, and decoded strictly
// into typed Go structs. Every error names the source (file, environment or
// command line), the key path and what was expected, before anything is built.
//
// Precedence, lowest first: base files (configs/, recursively), the recipe
// file, a stage of the recipe, environment variables HIDDENLAB_<SECTION>__<KEY>
// (nesting with double underscores: HIDDENLAB_TRAIN__STEPS=200), then command-line
// overrides key.path=value (values are YAML: 8, 1e-3, true, [1, 2], text).
package recipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the environment variables that override recipe keys.
const EnvPrefix = "HIDDENLAB_"

// Source is one layer of a recipe.
type Source struct {
	Name   string         // file path, "environment" or "command line"
	Values map[string]any // keys in lower case, nested maps
	// Vars maps the dotted key path each environment variable sets to the
	// variable (only for the environment layer), so that messages can name
	// HIDDENLAB_TRAIN__STEPS rather than "environment".
	Vars map[string]string
}

// DefaultSource is what SourceOf reports for a key no layer sets: its value,
// if any, is a default filled in by the code that decodes the recipe.
const DefaultSource = "default"

// Settings are the HIDDENLAB_ environment variables that configure the
// program rather than a recipe: HIDDENLAB_MALLOC=default keeps glibc's malloc
// thresholds, HIDDENLAB_DIST_TIMEOUT bounds a stalled collective,
// HIDDENLAB_SHIM_DIR, HIDDENLAB_NCCL and HIDDENLAB_SIMD (torch.SIMDEnv)
// configure the libtorch shim. Any other HIDDENLAB_ variable must be a recipe
// key, HIDDENLAB_<SECTION>__<KEY>.
var Settings = []string{"HIDDENLAB_MALLOC", "HIDDENLAB_DIST_TIMEOUT", "HIDDENLAB_SHIM_DIR", "HIDDENLAB_NCCL", "HIDDENLAB_SIMD"}

// Raw is a recipe before typed decoding: its layers and their merge.
type Raw struct {
	Path    string   // the recipe file
	Sources []Source // lowest precedence first
	merged  map[string]any
}

// Merged returns the merged recipe as nested maps.
func (r *Raw) Merged() map[string]any { return r.merged }

// Find resolves a recipe name: an existing path, or a file in dir (".yaml"
// may be omitted).
func Find(name, dir string) (string, error) {
	candidates := []string{name, filepath.Join(dir, name), filepath.Join(dir, name+".yaml")}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	var have []string
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".yaml") {
				have = append(have, e.Name())
			}
		}
	}
	return "", fmt.Errorf("recipe %q not found (looked for %s); %s has: %s", name, strings.Join(candidates, ", "), dir, strings.Join(have, ", "))
}

// readFile reads one YAML file. Keys are kept even when their value is empty
// or null (viper's view drops them, and a misspelt empty section must still
// be reported); viper merges the layers afterwards.
//
// A recipe is a short file: one larger than maxRecipeBytes, or nested deeper
// than maxRecipeDepth, is refused before it is parsed (the parser's time
// grows with the nesting), and a file that never ends (/dev/zero) is never
// read whole.
func readFile(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRecipeBytes+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecipeBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB, too large for a recipe", path, maxRecipeBytes>>20)
	}
	if yamlDepth(string(b)) > maxRecipeDepth {
		return nil, fmt.Errorf("%s: too deeply nested (more than %d levels); a recipe nests a few sections", path, maxRecipeDepth)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %v", path, err)
	}
	if doc == nil {
		return map[string]any{}, nil
	}
	m, ok := normalize(doc).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: expected a mapping of keys, got %s", path, describe(doc))
	}
	return m, nil
}

// Limits of a recipe file (readFile).
const (
	maxRecipeBytes = 16 << 20
	maxRecipeDepth = 64
)

// yamlDepth estimates a YAML text's nesting depth without parsing it: the
// open block levels (by indentation, each "- " a level of its own) plus the
// open flow brackets, outside quotes, comments and block scalars. It stops
// counting past maxRecipeDepth.
func yamlDepth(text string) int {
	var levels []int // indentation of each open block level
	flow, deepest := 0, 0
	scalar := -1 // indentation of a block scalar's key (|, >) whose lines are text
	for _, line := range strings.Split(text, "\n") {
		body := strings.TrimLeft(line, " ")
		indent := len(line) - len(body)
		col := indent
		if strings.TrimSpace(body) == "" || body[0] == '#' {
			continue
		}
		if scalar >= 0 {
			if indent > scalar {
				continue
			}
			scalar = -1
		}
		if flow == 0 {
			push := func(c int) {
				for len(levels) > 0 && levels[len(levels)-1] >= c {
					levels = levels[:len(levels)-1]
				}
				levels = append(levels, c)
			}
			for strings.HasPrefix(body, "- ") || body == "-" {
				push(col)
				rest := strings.TrimLeft(body[1:], " ")
				col += len(body) - len(rest)
				body = rest
			}
			if body != "" {
				push(col)
			}
		}
		quote := byte(0)
		prev := byte(' ')
	scan:
		for i := 0; i < len(body); i++ {
			c := body[i]
			switch {
			case quote == '"' && c == '\\':
				i++
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case (c == '"' || c == '\'') && strings.IndexByte(" [{,:", prev) >= 0:
				quote = c
			case c == '#' && prev == ' ':
				body = body[:i]
				break scan
			case c == '[' || c == '{':
				flow++
				deepest = max(deepest, len(levels)+flow)
			case c == ']' || c == '}':
				flow = max(flow-1, 0)
			}
			prev = c
		}
		deepest = max(deepest, len(levels)+flow)
		if deepest > maxRecipeDepth {
			return deepest
		}
		if t := strings.TrimRight(body, " "); flow == 0 && (strings.HasSuffix(t, "|") || strings.HasSuffix(t, ">") ||
			strings.HasSuffix(t, "|-") || strings.HasSuffix(t, ">-") || strings.HasSuffix(t, "|+") || strings.HasSuffix(t, ">+")) {
			scalar = indent
		}
	}
	return deepest
}

// Load reads the recipe at path with its base chain (base files are looked up
// beside the recipe and in configsDir), then applies the environment (env
// entries "NAME=value"; only HIDDENLAB_ ones count) and the command-line
// overrides.
func Load(path, configsDir string, env, overrides []string) (*Raw, error) {
	r := &Raw{Path: path}
	var chain []Source
	seen := map[string]bool{}
	for p := path; p != ""; {
		abs, _ := filepath.Abs(p)
		if seen[abs] {
			return nil, fmt.Errorf("%s: base chain loops back to %s", path, p)
		}
		seen[abs] = true
		values, err := readFile(p)
		if err != nil {
			return nil, err
		}
		chain = append([]Source{{Name: p, Values: values}}, chain...)
		base, _ := values["base"].(string)
		if raw, ok := values["base"]; ok && base == "" {
			return nil, &SourceError{Source: p, Err: &KeyError{Key: "base", Reason: "expected a file name, got " + describe(raw)}}
		}
		delete(values, "base")
		if base == "" {
			break
		}
		next, err := findBase(base, filepath.Dir(p), configsDir)
		if err != nil {
			return nil, &SourceError{Source: p, Err: &KeyError{Key: "base", Reason: err.Error()}}
		}
		p = next
	}
	r.Sources = chain
	envSrc, vars, err := parseEnv(env)
	if err != nil {
		return nil, err
	}
	cli, err := ParseOverrides(overrides)
	if err != nil {
		return nil, err
	}
	if len(envSrc) > 0 {
		r.Sources = append(r.Sources, Source{Name: "environment", Values: envSrc, Vars: vars})
	}
	if len(cli) > 0 {
		r.Sources = append(r.Sources, Source{Name: "command line", Values: cli})
	}
	r.merge()
	return r, nil
}

func findBase(name, recipeDir, configsDir string) (string, error) {
	for _, c := range []string{filepath.Join(recipeDir, name), filepath.Join(configsDir, name)} {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("base %q not found beside the recipe or in %s", name, configsDir)
}

// merge combines the sources with viper, later ones winning.
func (r *Raw) merge() {
	v := viper.New()
	for _, s := range r.Sources {
		v.MergeConfigMap(copyMap(s.Values)) // viper merges into the map it is given
	}
	r.merged = v.AllSettings()
}

// WithStage returns the recipe with stage i's keys layered above the recipe
// files and below the environment and command line; stages themselves are
// dropped.
func (r *Raw) WithStage(i int) (*Raw, error) {
	stages, _ := r.merged["stages"].([]any)
	if i < 0 || i >= len(stages) {
		return nil, fmt.Errorf("%s: stage %d does not exist", r.Path, i)
	}
	st, ok := stages[i].(map[string]any)
	if !ok {
		return nil, &SourceError{Source: r.Path, Err: &KeyError{Key: fmt.Sprintf("stages[%d]", i), Reason: "expected a mapping, got " + describe(stages[i])}}
	}
	name, _ := st["name"].(string)
	if name == "" {
		name = fmt.Sprint(i)
	}
	out := &Raw{Path: r.Path}
	var files, rest []Source
	for _, s := range r.Sources {
		c := Source{Name: s.Name, Values: copyMap(s.Values), Vars: s.Vars}
		delete(c.Values, "stages")
		if s.Name == "environment" || s.Name == "command line" {
			rest = append(rest, c)
		} else {
			files = append(files, c)
		}
	}
	stage := copyMap(st)
	delete(stage, "name")
	out.Sources = append(append(files, Source{Name: fmt.Sprintf("%s stage %q", r.Path, name), Values: stage}), rest...)
	out.merge()
	return out, nil
}

// Stages reports the names of the recipe's stages (nil without stages).
func (r *Raw) Stages() []string {
	stages, _ := r.merged["stages"].([]any)
	var names []string
	for i, s := range stages {
		m, _ := s.(map[string]any)
		name, _ := m["name"].(string)
		if name == "" {
			name = fmt.Sprint(i)
		}
		names = append(names, name)
	}
	return names
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = copyMap(sub)
		}
		out[k] = v
	}
	return out
}

// SourceError is a KeyError located in one source.
type SourceError struct {
	Source string
	Err    error
}

func (e *SourceError) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// Section returns the merged value of a top-level section (nil if absent).
func (r *Raw) Section(name string) map[string]any {
	m, _ := r.merged[name].(map[string]any)
	return m
}

// Decode decodes section (a top-level key, or "" for the whole recipe) into
// dst strictly. Each source is checked on its own first, so an error names the
// file or override that holds the bad key; then the merge is decoded.
func (r *Raw) Decode(section string, dst any) error {
	for _, s := range r.Sources {
		part := s.Values
		if section != "" {
			raw, ok := s.Values[section]
			if !ok {
				continue
			}
			m, ok := raw.(map[string]any)
			if !ok {
				return &SourceError{Source: s.Name, Err: &KeyError{Key: section, Reason: "expected a mapping, got " + describe(raw)}}
			}
			part = m
		}
		probe := reflect.New(reflect.TypeOf(dst).Elem()).Interface()
		if err := decodeLoose(part, probe, section); err != nil {
			return &SourceError{Source: s.nameFor(errorKey(err)), Err: err}
		}
	}
	merged := r.merged
	if section != "" {
		merged = r.Section(section)
		if merged == nil {
			merged = map[string]any{}
		}
	}
	if err := Decode(merged, dst, section); err != nil {
		return &SourceError{Source: r.Path, Err: err}
	}
	return nil
}

// decodeLoose checks keys and types of one source without the required-key
// check (a required key may come from another source).
func decodeLoose(src map[string]any, dst any, prefix string) error {
	err := Decode(src, dst, prefix)
	var ke *KeyError
	if errors.As(err, &ke) && ke.Reason == "required, but missing" {
		return nil
	}
	return err
}

// ParseOverrides turns "key.path=value" strings into nested maps; values are
// parsed as YAML.
func ParseOverrides(args []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.Contains(key, " ") {
			return nil, fmt.Errorf("command line: override %q: want key.path=value", a)
		}
		var v any
		if err := yaml.Unmarshal([]byte(val), &v); err != nil {
			return nil, fmt.Errorf("command line: override %q: value is not valid YAML: %v", a, err)
		}
		v = normalize(v)
		if err := setPath(out, strings.Split(strings.ToLower(key), "."), v); err != nil {
			return nil, fmt.Errorf("command line: override %q: %v", a, err)
		}
	}
	return out, nil
}

// parseEnv collects the recipe keys set by HIDDENLAB_<SECTION>__<KEY>
// variables and the variable behind each key path. Any other HIDDENLAB_
// variable must be one of Settings.
func parseEnv(env []string) (map[string]any, map[string]string, error) {
	out := map[string]any{}
	vars := map[string]string{}
	env = append([]string(nil), env...)
	sort.Strings(env)
	for _, e := range env {
		name, val, ok := strings.Cut(e, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if !strings.Contains(name[len(EnvPrefix):], "__") {
			if err := checkSetting(name); err != nil {
				return nil, nil, err
			}
			continue
		}
		path := strings.Split(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__")
		var v any
		if err := yaml.Unmarshal([]byte(val), &v); err != nil {
			return nil, nil, fmt.Errorf("environment: %s: value is not valid YAML: %v", name, err)
		}
		if err := setPath(out, path, normalize(v)); err != nil {
			return nil, nil, fmt.Errorf("environment: %s: %v", name, err)
		}
		vars[strings.Join(path, ".")] = name
	}
	return out, vars, nil
}

// checkSetting accepts the program settings among HIDDENLAB_ variables that
// are not recipe keys.
func checkSetting(name string) error {
	best, bestD := "", 3
	for _, s := range Settings {
		if s == name {
			return nil
		}
		if d := editDistance(name, s); d < bestD {
			best, bestD = s, d
		}
	}
	if rest := name[len(EnvPrefix):]; best == "" && strings.Contains(rest, "_") && !strings.HasPrefix(rest, "_") {
		best = EnvPrefix + strings.Replace(rest, "_", "__", 1)
	}
	hint := ""
	if best != "" {
		hint = " (did you mean " + best + "?)"
	}
	return fmt.Errorf("environment: %s: unknown variable%s; recipe keys are %s<SECTION>__<KEY> (e.g. %sTRAIN__STEPS), settings are %s",
		name, hint, EnvPrefix, EnvPrefix, strings.Join(Settings, ", "))
}

// CheckEnv checks the HIDDENLAB_ variables of env ("NAME=value" entries) as
// Load does: each is a program setting or a well-formed recipe key. Whether a
// recipe key names a known section and key is for the decoder to say.
func CheckEnv(env []string) error {
	_, _, err := parseEnv(env)
	return err
}

func setPath(m map[string]any, path []string, v any) error {
	for i, k := range path {
		if k == "" {
			return errors.New("empty key segment")
		}
		if i == len(path)-1 {
			m[k] = v
			return nil
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			if _, exists := m[k]; exists {
				return fmt.Errorf("%s is both a value and a section", strings.Join(path[:i+1], "."))
			}
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	return nil
}

// normalize converts yaml.v3 output to the shapes viper produces.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[strings.ToLower(k)] = normalize(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	}
	return v
}

// Marshal renders a YAML-shaped map as YAML with sorted keys.
func Marshal(m map[string]any) ([]byte, error) { return yaml.Marshal(m) }
