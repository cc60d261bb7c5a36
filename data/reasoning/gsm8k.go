package reasoning

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// GSM8KItem is one GSM8K problem.
type GSM8KItem struct {
	Question string
	Answer   string // worked solution ending in "#### <number>"
	// Final is the gold number by the dataset's README rule (the text after
	// the last "####" with commas removed), NumberParser.Extract(Answer):
	// "1,000" gives "1000".
	Final string
	// Gold is the raw gold text as the official code takes it
	// (extract_hash_answer: the text after the first "####", stripped):
	// "1,000" stays "1,000". Pass it to [GSM8KReward] to reproduce the
	// official reward, which normalises gold and prediction alike.
	Gold string
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
	final, ok := NumberParser.Extract(*row.Answer)
	if !ok {
		return GSM8KItem{}, errors.New(`answer has no number after the last "####"`)
	}
	gold := strings.SplitN(*row.Answer, "####", 3)[1]
	return GSM8KItem{Question: *row.Question, Answer: *row.Answer, Final: final, Gold: strings.TrimSpace(gold)}, nil
}

// AnswerParser is a rule that turns GSM8K answer text into the string the
// reward compares.
type AnswerParser string

// The answer parsers.
const (
	// OfficialParser is the official HRPO code's (utils.py,
	// process_gsm8k_answer after extract_from_response), the default: the
	// text after the last "####" is stripped and loses one trailing "."; its
	// last match of -?\d+/?\.?\d* is normalised by delete_extra_zero (the
	// Python float's repr without trailing zeros, "a/b" evaluated as a
	// division). Commas are not part of a match: "$1,234" gives "234",
	// "1,000,000" gives "0", "1/2" gives "0.5", "12.50" gives "12.5",
	// "1e20"-sized values keep Python's quirks ("100000000000000000000"
	// gives "100.0"). See [OfficialNormalize].
	OfficialParser AnswerParser = "official"
	// NumberParser is hiddenlab's earlier rule: the last decimal number
	// with thousands commas removed and, if it has a point, trailing zeros
	// dropped: "$1,234" gives "1234", "1,000,000" gives "1000000", "1/2"
	// gives "2".
	NumberParser AnswerParser = "number"
)

// ParseAnswerParser checks a parser name ("official" or "number").
func ParseAnswerParser(s string) (AnswerParser, error) {
	switch p := AnswerParser(s); p {
	case OfficialParser, NumberParser:
		return p, nil
	}
	return "", fmt.Errorf("unknown GSM8K answer parser %q (want official or number)", s)
}

// Normalize returns the comparable form of an answer text s and whether s
// holds a number.
func (p AnswerParser) Normalize(s string) (string, bool) {
	if p == NumberParser {
		return lastNumber(s)
	}
	return OfficialNormalize(s)
}

// Extract returns the normalised answer of a completion: the text after
// its last "####" (official: stripped, one trailing "." removed, stripped
// again; number: stripped and every trailing "." removed), normalised. It
// reports false if text has no "####" or no number after the last one.
func (p AnswerParser) Extract(text string) (string, bool) {
	i := strings.LastIndex(text, "####")
	if i < 0 {
		return "", false
	}
	tail := strings.TrimSpace(text[i+len("####"):])
	if p == NumberParser {
		return lastNumber(strings.TrimRight(tail, "."))
	}
	if strings.HasSuffix(tail, ".") {
		tail = strings.TrimSpace(tail[:len(tail)-1])
	}
	return OfficialNormalize(tail)
}

// Reward is the HRPO GSM8K reward under p: 1 iff completion contains
// exactly one "####" (the official pattern
// ^(?:(?!####).)*####(?:(?!####).)*$ is this count) and its extracted
// answer equals gold normalised by the same rule, else 0. gold is answer
// text: the raw text after "####" ([GSM8KItem].Gold) reproduces the
// official comparison. Under OfficialParser two empty normalisations are
// equal, as in the official code (a gold without a number matches a
// completion without one); NumberParser requires a number on both sides.
func (p AnswerParser) Reward(completion, gold string) float64 {
	if strings.Count(completion, "####") != 1 {
		return 0
	}
	got, okGot := p.Extract(completion)
	want, okWant := p.Normalize(gold)
	if p == NumberParser && !(okGot && okWant) {
		return 0
	}
	if got != want {
		return 0
	}
	return 1
}

// officialNumber is the official process_gsm8k_answer's pattern (ASCII
// digits; Python's \d also matches other Unicode digits).
var officialNumber = regexp.MustCompile(`-?\d+/?\.?\d*`)

// OfficialNormalize is the official process_gsm8k_answer: s loses
// surrounding newlines, trailing "." and "/" and surrounding spaces; the
// last match of -?\d+/?\.?\d* goes through delete_extra_zero and loses
// trailing "." and "/". It returns "" and false when nothing matches.
func OfficialNormalize(s string) (string, bool) {
	s = strings.Trim(s, "\n")
	s = strings.TrimRight(strings.TrimRight(s, "."), "/")
	s = strings.Trim(s, " ")
	all := officialNumber.FindAllString(s, -1)
	if len(all) == 0 {
		return "", false
	}
	last := deleteExtraZero(all[len(all)-1])
	return strings.TrimRight(strings.TrimRight(last, "."), "/"), true
}

// deleteExtraZero is the official delete_extra_zero on a match of the
// official pattern: float(s), or else eval(s) (a Python division "a/b"),
// or else s unchanged; then the float's repr with trailing zeros removed,
// as an int if that leaves a bare point, else re-read as a float and
// written again.
func deleteExtraZero(s string) string {
	f, ok := pyFloat(s)
	if !ok {
		if f, ok = pyDivision(s); !ok {
			return s
		}
	}
	r := strings.TrimRight(pyRepr(f), "0")
	if strings.HasSuffix(r, ".") {
		r = strings.TrimSuffix(r, ".")
		if strings.Trim(r, "-0") == "" { // int("-0") is 0
			return "0"
		}
		return r
	}
	g, _ := pyFloat(r)
	return pyRepr(g)
}

// pyFloat is Python's float() on the strings the pattern matches (and on
// reprs): overflow gives ±inf rather than an error.
func pyFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true
}

// pyDivision evaluates "a/b" as Python's eval does for a match of the
// official pattern: a is an int literal (optionally negated), b an int
// literal or a float literal ".ddd". Int literals with leading zeros
// (other than all zeros) are syntax errors, division by zero and overflow
// errors; each reports false, as the official code then keeps s.
func pyDivision(s string) (float64, bool) {
	a, b, found := strings.Cut(s, "/")
	if !found || b == "" || b == "." || strings.Contains(b, "/") {
		return 0, false
	}
	neg := strings.HasPrefix(a, "-")
	a = strings.TrimPrefix(a, "-")
	if !pyIntLiteral(a) {
		return 0, false
	}
	num, _ := new(big.Int).SetString(a, 10)
	if neg {
		num.Neg(num)
	}
	if strings.HasPrefix(b, ".") { // int / float: the int is converted first
		den, err := strconv.ParseFloat(b, 64)
		if err != nil || den == 0 {
			return 0, false
		}
		x, _ := new(big.Float).SetInt(num).Float64()
		if math.IsInf(x, 0) {
			return 0, false
		}
		return x / den, true
	}
	if !pyIntLiteral(b) {
		return 0, false
	}
	den, _ := new(big.Int).SetString(b, 10)
	if den.Sign() == 0 {
		return 0, false
	}
	q, _ := new(big.Rat).SetFrac(num, den).Float64() // correctly rounded, as Python's int true division
	if math.IsInf(q, 0) {
		return 0, false
	}
	return q, true
}

// pyIntLiteral reports whether digits is a valid Python 3 decimal integer
// literal: no leading zeros unless every digit is 0.
func pyIntLiteral(digits string) bool {
	if digits == "" {
		return false
	}
	return digits[0] != '0' || strings.Trim(digits, "0") == ""
}

// pyRepr is Python's repr of a float: the shortest round-tripping digits,
// positional with at least one decimal ("12.0", "0.0001") when the decimal
// exponent is in [−4, 16), else scientific with a two-digit exponent
// ("1e+16", "1.5e-05").
func pyRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // "-d.ddde±XX"
	sign := ""
	if strings.HasPrefix(e, "-") {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // value = 0.digits × 10^decpt
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
}

// number matches a decimal number with optional sign, thousands commas and
// fraction: "-1,234.50", "12", ".5" (NumberParser).
var number = regexp.MustCompile(`-?(?:\d[\d,]*)?\.?\d+`)

// ExtractAnswer is OfficialParser.Extract: the GSM8K answer of a
// completion as the official code extracts it.
func ExtractAnswer(text string) (string, bool) { return OfficialParser.Extract(text) }

// lastNumber returns the normalised last number in s (NumberParser).
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

// GSM8KReward is OfficialParser.Reward: the HRPO GSM8K reward as the
// official code computes it. Pass the raw gold text ([GSM8KItem].Gold) to
// reproduce its comparisons exactly; NumberParser.Reward is hiddenlab's
// earlier rule.
func GSM8KReward(completion, gold string) float64 { return OfficialParser.Reward(completion, gold) }
