package recipe

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// SourceOf names the layer a key's merged value comes from: the
// highest-precedence source that sets the dotted key path (or a mapping
// holding it): a file path, `<file> stage "<name>"`, "environment
// HIDDENLAB_<VAR>" (the variable that set it), or "command line". A key no
// layer sets is DefaultSource. Index suffixes (opt.betas[1]) name the list,
// since a layer replaces a list as a whole; keys are case-insensitive.
func (r *Raw) SourceOf(key string) string {
	path := splitKey(key)
	if len(path) == 0 {
		return DefaultSource
	}
	for i := len(r.Sources) - 1; i >= 0; i-- {
		if has(r.Sources[i].Values, path) {
			return r.Sources[i].nameFor(strings.Join(path, "."))
		}
	}
	return DefaultSource
}

// splitKey turns "a.b[2].c" into [a b]: the path down to the first list.
func splitKey(key string) []string {
	var path []string
	for _, seg := range strings.Split(strings.ToLower(strings.TrimSpace(key)), ".") {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			if seg[:i] != "" {
				path = append(path, seg[:i])
			}
			break
		}
		if seg == "" {
			break
		}
		path = append(path, seg)
	}
	return path
}

// has reports whether m sets path (to a value, or to a mapping holding keys
// under it).
func has(m map[string]any, path []string) bool {
	for i, k := range path {
		v, ok := m[k]
		if !ok {
			return false
		}
		next, isMap := v.(map[string]any)
		if !isMap {
			return i == len(path)-1
		}
		m = next
	}
	return true
}

// nameFor names the source of the dotted key in s: for the environment, the
// variable that set the key, a mapping above it, or (for a section) the first
// key under it.
func (s Source) nameFor(key string) string {
	if len(s.Vars) == 0 || key == "" {
		return s.Name
	}
	path := splitKey(key)
	for n := len(path); n > 0; n-- {
		if v, ok := s.Vars[strings.Join(path[:n], ".")]; ok {
			return s.Name + " " + v
		}
	}
	prefix := strings.Join(path, ".") + "."
	keys := make([]string, 0, len(s.Vars))
	for k := range s.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return s.Name + " " + s.Vars[k]
		}
	}
	return s.Name
}

// errorKey is the key path of a KeyError in err ("" if none).
func errorKey(err error) string {
	var ke *KeyError
	if errors.As(err, &ke) {
		return ke.Key
	}
	return ""
}

// CheckTopLevel reports the first top-level key of any layer that is not
// among known, naming the layer (for the environment, the variable) and the
// closest known key.
func (r *Raw) CheckTopLevel(known ...string) error {
	ok := map[string]bool{}
	for _, k := range known {
		ok[k] = true
	}
	for _, s := range r.Sources {
		keys := make([]string, 0, len(s.Values))
		for k := range s.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !ok[k] {
				return &SourceError{Source: s.nameFor(k), Err: &KeyError{Key: k, Reason: unknownReason(k, known)}}
			}
		}
	}
	return nil
}

// DecodeFile reads one YAML file (no base chain, environment or overrides)
// and decodes it strictly into dst, a pointer to a struct with `key` tags
// holding the defaults. Errors name the file and the key path, with a "did
// you mean" hint for a misspelt key.
func DecodeFile(path string, dst any) error {
	m, err := readFile(path)
	if err != nil {
		return err
	}
	if err := Decode(m, dst, ""); err != nil {
		return &SourceError{Source: path, Err: err}
	}
	return nil
}

// Layers lists the sources' names, lowest precedence first, with the
// environment's variables spelt out.
func (r *Raw) Layers() []string {
	out := make([]string, 0, len(r.Sources))
	for _, s := range r.Sources {
		name := s.Name
		if len(s.Vars) > 0 {
			vars := make([]string, 0, len(s.Vars))
			for _, v := range s.Vars {
				vars = append(vars, v)
			}
			sort.Strings(vars)
			name = fmt.Sprintf("%s (%s)", name, strings.Join(vars, ", "))
		}
		out = append(out, name)
	}
	return out
}
