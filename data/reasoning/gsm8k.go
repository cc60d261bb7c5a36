package reasoning

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// GSM8KItem is one GSM8K problem.
type GSM8KItem struct {
	Question string
	Answer   string // worked solution ending in "#### <number>"
	Final    string // ExtractAnswer(Answer): the normalised gold answer
}

// LoadGSM8K reads a GSM8K JSON Lines file (third_party/gsm8k/*.jsonl):
// one object per line with exactly the string keys "question" and
// "answer". Blank lines are skipped. Errors name the file and the 1-based
// line: bad JSON, a missing or unknown key, or an answer without a number
// after "####".
func LoadGSM8K(path string) ([]GSM8KItem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gsm8k: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var items []GSM8KItem
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		it, err := parseGSM8KLine(raw)
		if err != nil {
			return nil, fmt.Errorf("gsm8k: %s:%d: %w", path, line, err)
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gsm8k: %s: %w", path, err)
	}
	return items, nil
}

func parseGSM8KLine(raw []byte) (GSM8KItem, error) {
	var row struct {
		Question *string `json:"question"`
		Answer   *string `json:"answer"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&row); err != nil {
		return GSM8KItem{}, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return GSM8KItem{}, errors.New("bad JSON: more than one value on the line")
	}
	switch {
	case row.Question == nil:
		return GSM8KItem{}, errors.New(`missing "question"`)
	case row.Answer == nil:
		return GSM8KItem{}, errors.New(`missing "answer"`)
	case !strings.Contains(*row.Answer, "####"):
		return GSM8KItem{}, errors.New(`answer has no "####"`)
	}
	final, ok := ExtractAnswer(*row.Answer)
	if !ok {
		return GSM8KItem{}, errors.New(`answer has no number after the last "####"`)
	}
	return GSM8KItem{Question: *row.Question, Answer: *row.Answer, Final: final}, nil
}

// number matches a decimal number with optional sign, thousands commas and
// fraction: "-1,234.50", "12", ".5".
var number = regexp.MustCompile(`-?(?:\d[\d,]*)?\.?\d+`)

// ExtractAnswer returns the GSM8K answer of text as HRPO extracts it (§3.2):
// the text after the last "####", stripped of surrounding space and
// trailing "."; then its last number, with commas removed and, if it has a
// decimal point, trailing zeros (and a bare trailing point) dropped:
// "$1,234.50." gives "1234.5", "12.0" gives "12", "-3" gives "-3". It
// reports false if text has no "####" or no number after the last one.
func ExtractAnswer(text string) (string, bool) {
	i := strings.LastIndex(text, "####")
	if i < 0 {
		return "", false
	}
	tail := strings.TrimRight(strings.TrimSpace(text[i+len("####"):]), ".")
	return lastNumber(tail)
}

// lastNumber returns the normalised last number in s.
func lastNumber(s string) (string, bool) {
	all := number.FindAllString(s, -1)
	if len(all) == 0 {
		return "", false
	}
	n := strings.ReplaceAll(all[len(all)-1], ",", "")
	if strings.Contains(n, ".") {
		n = strings.TrimRight(strings.TrimRight(n, "0"), ".")
		switch n {
		case "", "-": // ".0", "-.00"
			n += "0"
		}
	}
	return n, true
}

// GSM8KReward is the HRPO GSM8K reward: 1 iff completion contains exactly
// one "####" and [ExtractAnswer] of it equals gold, else 0. gold is
// normalised the same way (its last number), so both an item's Final and
// raw text such as "1,000" work.
func GSM8KReward(completion, gold string) float64 {
	if strings.Count(completion, "####") != 1 {
		return 0
	}
	got, ok := ExtractAnswer(completion)
	if !ok {
		return 0
	}
	want, ok := lastNumber(gold)
	if !ok || got != want {
		return 0
	}
	return 1
}
