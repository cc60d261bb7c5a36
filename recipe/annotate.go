package recipe

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// WriteAnnotated writes m, a YAML-shaped map such as a resolved recipe, as
// YAML with each value's source as a trailing comment (sourceOf gets the
// dotted key path; Raw.SourceOf fits). Top-level keys listed in order come
// first, in that order, the rest sorted; nested keys are sorted. Lists of
// scalars are written on one line; a list holding mappings (stages) is
// written as a block under its key, whose comment is the source of the
// whole list. The output is valid YAML.
func WriteAnnotated(w io.Writer, m map[string]any, order []string, sourceOf func(key string) string) error {
	var lines []annotatedLine
	annotate(&lines, m, "", 0, order, sourceOf)
	// Comments line up after the longest line up to maxAligned columns;
	// longer lines (long paths) do not push every comment right.
	const maxAligned = 40
	width := 0
	for _, l := range lines {
		if n := len(l.text); l.comment != "" && n > width && n <= maxAligned {
			width = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text)
		if l.comment != "" {
			b.WriteString(strings.Repeat(" ", max(1, width+2-len(l.text))))
			b.WriteString("# ")
			b.WriteString(l.comment)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type annotatedLine struct{ text, comment string }

func annotate(lines *[]annotatedLine, m map[string]any, prefix string, depth int, order []string, sourceOf func(string) string) {
	indent := strings.Repeat("  ", depth)
	for _, k := range orderedKeys(m, order) {
		key := join(prefix, k)
		head := indent + yamlKey(k) + ":"
		switch v := m[k].(type) {
		case map[string]any:
			if len(v) == 0 {
				*lines = append(*lines, annotatedLine{head + " {}", sourceOf(key)})
				continue
			}
			*lines = append(*lines, annotatedLine{head, ""})
			annotate(lines, v, key, depth+1, nil, sourceOf)
		case []any:
			if flat(v) {
				*lines = append(*lines, annotatedLine{head + " " + flowYAML(v), sourceOf(key)})
				continue
			}
			*lines = append(*lines, annotatedLine{head, sourceOf(key)})
			b, err := yaml.Marshal(v)
			if err != nil {
				*lines = append(*lines, annotatedLine{indent + "  " + fmt.Sprint(v), ""})
				continue
			}
			for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
				*lines = append(*lines, annotatedLine{indent + "  " + l, ""})
			}
		default:
			*lines = append(*lines, annotatedLine{head + " " + flowYAML(v), sourceOf(key)})
		}
	}
}

// orderedKeys lists m's keys: those in order first, then the rest sorted.
func orderedKeys(m map[string]any, order []string) []string {
	keys := make([]string, 0, len(m))
	seen := map[string]bool{}
	for _, k := range order {
		if _, ok := m[k]; ok && !seen[k] {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// flat reports whether a list holds only scalars (written on one line).
func flat(list []any) bool {
	for _, x := range list {
		switch x.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// flowYAML renders a scalar or a flat list as one line of YAML.
func flowYAML(v any) string {
	var node yaml.Node
	if err := node.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	node.Style |= yaml.FlowStyle
	b, err := yaml.Marshal(&node)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(b))
}

// yamlKey quotes a key when plain YAML would misread it.
func yamlKey(k string) string {
	s := flowYAML(k)
	if strings.Contains(s, "\n") {
		return fmt.Sprintf("%q", k)
	}
	return s
}
