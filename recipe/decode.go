package recipe

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// Decode copies the values of src (a YAML-shaped map: maps, slices, strings,
// numbers, bools) into the struct pointed to by dst, strictly: a key dst does
// not declare, a value of the wrong type, or a missing required field is an
// error naming the key path under prefix. Fields are matched by their `key`
// tag; `required:"true"` marks fields src must set. Fields src leaves out keep
// dst's values (the defaults).
func Decode(src map[string]any, dst any, prefix string) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("recipe: Decode needs a pointer to a struct, got %T", dst)
	}
	return decodeStruct(src, v.Elem(), prefix)
}

// KeyError is a problem with one key of a recipe.
type KeyError struct {
	Key    string // dotted path, e.g. "train.steps"
	Reason string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

type field struct {
	key      string
	index    []int
	required bool
}

// fields lists a struct's keyed fields; an embedded struct tagged
// `key:",inline"` contributes its own fields at the same level.
func fields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("key")
		if key == ",inline" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			for _, sub := range fields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		out = append(out, field{key: key, index: []int{i}, required: f.Tag.Get("required") == "true"})
	}
	return out
}

func decodeStruct(src map[string]any, v reflect.Value, prefix string) error {
	fs := fields(v.Type())
	known := map[string]field{}
	for _, f := range fs {
		known[f.key] = f
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := known[k]
		if !ok {
			return &KeyError{Key: join(prefix, k), Reason: unknownReason(k, fieldKeys(fs))}
		}
		if err := decodeValue(src[k], v.FieldByIndex(f.index), join(prefix, k)); err != nil {
			return err
		}
	}
	for _, f := range fs {
		if _, ok := src[f.key]; f.required && !ok {
			return &KeyError{Key: join(prefix, f.key), Reason: "required, but missing"}
		}
	}
	return nil
}

func fieldKeys(fs []field) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.key
	}
	return names
}

// unknownReason explains an unknown key k among the known ones, with the
// closest known key as a hint.
func unknownReason(k string, known []string) string {
	names := append([]string(nil), known...)
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	sort.Strings(names)
	reason := "unknown key"
	if best != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return reason + "; known keys: " + strings.Join(names, ", ")
}

func describe(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case int, int64, uint64, int32:
		return fmt.Sprintf("integer %v", x)
	case float64, float32:
		return fmt.Sprintf("number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", x)
}

func asInt(x any) (int64, bool) {
	switch x := x.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case float64: // YAML numbers written as 1e3 decode as floats
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func decodeValue(x any, v reflect.Value, path string) error {
	bad := func(want string) error {
		return &KeyError{Key: path, Reason: fmt.Sprintf("expected %s, got %s", want, describe(x))}
	}
	if v.Kind() == reflect.Interface { // raw: keep as is
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return bad("a string")
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			return bad("true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := asInt(x)
		if !ok || v.OverflowInt(n) {
			return bad("an integer")
		}
		v.SetInt(n)
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		n, ok := asInt(x)
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			return bad("a non-negative integer")
		}
		v.SetUint(uint64(n))
	case reflect.Float64, reflect.Float32:
		switch y := x.(type) {
		case float64:
			v.SetFloat(y)
		default:
			n, ok := asInt(x)
			if !ok {
				return bad("a number")
			}
			v.SetFloat(float64(n))
		}
	case reflect.Slice:
		list, ok := x.([]any)
		if !ok {
			return bad("a list")
		}
		out := reflect.MakeSlice(v.Type(), len(list), len(list))
		for i, item := range list {
			if err := decodeValue(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(out)
	case reflect.Map:
		m, ok := x.(map[string]any)
		if !ok {
			return bad("a mapping")
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for k, item := range m {
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := decodeValue(item, elem, join(path, k)); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k), elem)
		}
	case reflect.Struct:
		m, ok := x.(map[string]any)
		if !ok {
			return bad("a mapping")
		}
		return decodeStruct(m, v, path)
	case reflect.Pointer:
		if x == nil {
			v.Set(reflect.Zero(v.Type()))
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeValue(x, v.Elem(), path)
	default:
		return &KeyError{Key: path, Reason: fmt.Sprintf("cannot decode into %s", v.Type())}
	}
	return nil
}

// Encode turns a struct with `key` tags back into a YAML-shaped map (for the
// resolved recipe saved with a run).
func Encode(src any) map[string]any {
	v := reflect.ValueOf(src)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	out, _ := encodeValue(v).(map[string]any)
	return out
}

func encodeValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return encodeValue(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for _, f := range fields(v.Type()) {
			fv := v.FieldByIndex(f.index)
			if fv.Kind() == reflect.Pointer && fv.IsNil() {
				continue // an absent optional section
			}
			m[f.key] = encodeValue(fv)
		}
		return m
	case reflect.Slice:
		if v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = encodeValue(v.Index(i))
		}
		return out
	case reflect.Map:
		m := map[string]any{}
		for _, k := range v.MapKeys() {
			m[k.String()] = encodeValue(v.MapIndex(k))
		}
		return m
	default:
		return v.Interface()
	}
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
