package synthstories

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a, as := Generate(42, 50_000)
	b, bs := Generate(42, 50_000)
	if !bytes.Equal(a, b) || !slices.Equal(as, bs) {
		t.Fatal("two calls with the same seed differ")
	}
	c, _ := Generate(43, 50_000)
	if bytes.Equal(a, c) {
		t.Fatal("seeds 42 and 43 give the same text")
	}
	// A shorter corpus is a prefix of a longer one, slots included.
	short, ss := Generate(42, 10_007)
	if !bytes.HasPrefix(a, short) {
		t.Error("Generate(42, 10007) is not a prefix of Generate(42, 50000)")
	}
	if len(ss) == 0 || !slices.Equal(ss, as[:len(ss)]) {
		t.Error("the slots of the shorter corpus are not a prefix of the longer one's")
	}
}

// TestGolden pins the validation corpus. If a deliberate change to the
// generator or its word lists breaks it, update the hash and say so: every
// recorded result on SynthStories-char refers to the old corpus.
func TestGolden(t *testing.T) {
	text, slots := DefaultValid()
	const wantHash, wantSlots = "a59f3e38c907200b", 1012
	if got := fmt.Sprintf("%x", sha256.Sum256(text))[:16]; got != wantHash || len(slots) != wantSlots {
		t.Errorf("validation corpus: sha256 prefix %s with %d slots, want %s with %d", got, len(slots), wantHash, wantSlots)
	}
}

func TestDefaultSplits(t *testing.T) {
	for _, tt := range []struct {
		name  string
		split func() ([]byte, []RecallSlot)
		chars int
	}{
		{"train", DefaultTrain, TrainChars},
		{"valid", DefaultValid, ValidChars},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text, slots := tt.split()
			if len(text) != tt.chars {
				t.Fatalf("%d bytes, want %d", len(text), tt.chars)
			}
			stories := bytes.Count(text, []byte("\n"))
			if avg := tt.chars / stories; avg < 120 || avg > 400 {
				t.Errorf("%d stories, %d bytes each on average; want 120..400", stories, avg)
			}
			// One slot per story; the cut last story may add one.
			if len(slots) < stories || len(slots) > stories+1 {
				t.Errorf("%d slots for %d complete stories", len(slots), stories)
			}
		})
	}
}

func TestGenerateLengths(t *testing.T) {
	full, fullSlots := Generate(5, 20_000)
	tests := []struct {
		name   string
		nChars int
	}{
		{"negative", -1}, {"zero", 0}, {"one byte", 1}, {"one story or so", 300}, {"odd size", 12_345},
	}
	// Cut just inside, and just after, the colour word of the third slot.
	third := fullSlots[2]
	tests = append(tests,
		struct {
			name   string
			nChars int
		}{"cut inside a colour word", third.Offset + 1},
		struct {
			name   string
			nChars int
		}{"cut after a colour word", third.Offset + len(third.Color)},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, slots := Generate(5, tt.nChars)
			want := max(tt.nChars, 0)
			if len(text) != want || !bytes.Equal(text, full[:want]) {
				t.Fatalf("got %d bytes, want the first %d of the corpus", len(text), want)
			}
			var wantSlots []RecallSlot
			for _, s := range fullSlots {
				if s.Offset+len(s.Color) <= want {
					wantSlots = append(wantSlots, s)
				}
			}
			if !slices.Equal(slots, wantSlots) {
				t.Errorf("got %d slots, want the %d whose colour word is complete", len(slots), len(wantSlots))
			}
		})
	}
}

// The test parses stories with its own patterns rather than trusting the
// generator's bookkeeping.
var (
	introRE  = regexp.MustCompile(`^Once upon a time there was (?:a|an) [a-z]+ [a-z]+ named ([A-Z][a-z]+)\. `)
	ownsRE   = regexp.MustCompile(`([A-Z][a-z]+)(?: had|'s [a-z]+ gave (?:her|him)) (?:a|an) ([a-z]+) ([a-z]+)(?: and (?:a|an) ([a-z]+) ([a-z]+))?\.`)
	lostRE   = regexp.MustCompile(`(?:lost|dropped|could not find) (?:her|his) ([a-z]+)`)
	foundRE  = regexp.MustCompile(`found the ([a-z]+) ([a-z]+) `)
	articlRE = regexp.MustCompile(`\b(a|an) ([a-z]+)`)
	pronRE   = regexp.MustCompile(`\b(?i:she|her|he|him|his)\b`)
)

func TestStories(t *testing.T) {
	text, slots := Generate(11, 400_000)
	stories := strings.Split(string(text), "\n")
	stories = stories[:len(stories)-1] // the last one is cut short
	gender := map[string]gender{}
	for _, c := range names {
		gender[c.name] = c.gender
	}
	slotAt := map[int]RecallSlot{}
	for _, s := range slots {
		slotAt[s.Offset] = s
	}

	start := 0
	twoObjects := 0
	for i, st := range stories {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("story %d %q: %s", i, st, fmt.Sprintf(format, args...))
		}
		intro := introRE.FindStringSubmatch(st)
		if intro == nil {
			fail("no introduction")
		}
		hero := intro[1]
		if n := strings.Count(st, "."); n < 3 || n > 6 {
			fail("%d sentences, want 3..6", n)
		}

		// The colour each object was given.
		owns := ownsRE.FindAllStringSubmatchIndex(st, -1)
		if len(owns) != 1 {
			fail("%d possession sentences, want 1", len(owns))
		}
		m := owns[0]
		if st[m[2]:m[3]] != hero {
			fail("possession by %q, not the hero %q", st[m[2]:m[3]], hero)
		}
		colorOf := map[string]string{st[m[6]:m[7]]: st[m[4]:m[5]]}
		cueOf := map[string]int{st[m[6]:m[7]]: start + m[4]}
		if m[8] >= 0 {
			twoObjects++
			obj := st[m[10]:m[11]]
			if _, dup := colorOf[obj]; dup || st[m[8]:m[9]] == st[m[4]:m[5]] {
				fail("the two objects share an object or colour word")
			}
			colorOf[obj], cueOf[obj] = st[m[8]:m[9]], start+m[8]
		}

		// Exactly one recall, of an owned object, in the colour it was given.
		found := foundRE.FindAllStringSubmatchIndex(st, -1)
		if len(found) != 1 {
			fail("%d recall sentences, want 1", len(found))
		}
		f := found[0]
		color, obj := st[f[2]:f[3]], st[f[4]:f[5]]
		want, ok := colorOf[obj]
		if !ok {
			fail("found %q, which the hero never had", obj)
		}
		if color != want {
			fail("found the %s %s, but it was %s", color, obj, want)
		}
		// With two objects, the story says which was lost.
		lost := lostRE.FindStringSubmatch(st)
		if len(colorOf) == 2 && lost == nil {
			fail("two objects and no loss: the recall is ambiguous")
		}
		if lost != nil && lost[1] != obj {
			fail("lost the %s but found the %s", lost[1], obj)
		}

		// The generator's slot points at this colour word and its cue.
		s, ok := slotAt[start+f[2]]
		if !ok {
			fail("no recall slot at offset %d", start+f[2])
		}
		if s.Color != color || s.Cue != cueOf[obj] {
			fail("slot %+v, want colour %q and cue %d", s, color, cueOf[obj])
		}

		// Pronouns agree with the hero; articles with the next word.
		g, ok := gender[hero]
		if !ok {
			fail("hero %q is not in the name list", hero)
		}
		for _, p := range pronRE.FindAllString(st, -1) {
			p = strings.ToLower(p)
			if p != pronouns[g].sub && p != pronouns[g].obj && p != pronouns[g].poss {
				fail("pronoun %q for %s", p, hero)
			}
		}
		for _, a := range articlRE.FindAllStringSubmatch(st, -1) {
			if vowel := strings.ContainsRune("aeiou", rune(a[2][0])); vowel != (a[1] == "an") {
				fail("%q %q", a[1], a[2])
			}
		}
		start += len(st) + 1
	}
	if len(stories) < 1000 {
		t.Fatalf("only %d stories in 400k bytes", len(stories))
	}
	// Both kinds of story occur often: one object (a copy task) and two (a
	// binding task).
	if frac := float64(twoObjects) / float64(len(stories)); frac < 0.3 || frac > 0.6 {
		t.Errorf("%.2f of stories have two objects, want 0.3..0.6", frac)
	}
}

func TestSlots(t *testing.T) {
	text, slots := DefaultValid()
	if len(slots) < 500 {
		t.Fatalf("%d slots, want hundreds", len(slots))
	}
	prev := -1
	for _, s := range slots {
		if s.Offset <= prev {
			t.Fatalf("slot at %d after slot at %d: not in text order", s.Offset, prev)
		}
		prev = s.Offset
		if !slices.Contains(colors, s.Color) {
			t.Fatalf("slot %+v: %q is not a colour", s, s.Color)
		}
		if !bytes.HasSuffix(text[:s.Offset], []byte("found the ")) {
			t.Fatalf("slot %+v does not follow \"found the \"", s)
		}
		end := s.Offset + len(s.Color)
		if string(text[s.Offset:end]) != s.Color || (end < len(text) && text[end] != ' ') {
			t.Fatalf("slot %+v does not point at the word %q", s, s.Color)
		}
		if string(text[s.Cue:s.Cue+len(s.Color)+1]) != s.Color+" " || text[s.Cue-1] != ' ' {
			t.Fatalf("cue of slot %+v does not point at the word %q", s, s.Color)
		}
		if d := s.Offset - s.Cue; d <= 0 || d > MaxCueDistance {
			t.Fatalf("slot %+v is %d bytes after its cue, want 1..%d", s, d, MaxCueDistance)
		}
		if bytes.IndexByte(text[s.Cue:s.Offset], '\n') >= 0 {
			t.Fatalf("slot %+v and its cue are in different stories", s)
		}
	}
}

func TestAlphabet(t *testing.T) {
	if len(Alphabet) > 64 {
		t.Fatalf("alphabet has %d bytes, want <= 64", len(Alphabet))
	}
	for i := 1; i < len(Alphabet); i++ {
		if Alphabet[i-1] >= Alphabet[i] {
			t.Fatalf("alphabet not strictly increasing at %d", i)
		}
	}
	text, _ := Generate(3, 200_000)
	ids, err := Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	used := map[byte]bool{}
	for i, id := range ids {
		if Alphabet[id] != text[i] {
			t.Fatalf("byte %d: id %d decodes to %q, want %q", i, id, Alphabet[id], text[i])
		}
		used[text[i]] = true
	}
	// The alphabet is what the text uses, less the capitals no name or
	// sentence starts with.
	for _, b := range []byte(Alphabet) {
		if !used[b] && !unicode.IsUpper(rune(b)) {
			t.Errorf("alphabet byte %q never occurs", b)
		}
	}
	if _, err := Encode([]byte("Lily had a red ball?")); err == nil || !strings.Contains(err.Error(), `'?' at offset 19`) {
		t.Errorf("Encode of '?': error %v, want one naming the byte and offset", err)
	}
}

func TestWordLists(t *testing.T) {
	count := map[gender]int{}
	var nameWords []string
	for _, c := range names {
		count[c.gender]++
		nameWords = append(nameWords, c.name)
	}
	if count[female] != 20 || count[male] != 20 {
		t.Errorf("names: %d female, %d male; want 20 each", count[female], count[male])
	}
	var verbWords []string
	for _, v := range verbs {
		verbWords = append(verbWords, v.base)
	}
	var placeWords []string
	for _, p := range places {
		placeWords = append(placeWords, p.name)
	}
	initials := map[byte]string{}
	for _, c := range colors {
		if other, dup := initials[c[0]]; dup {
			t.Errorf("colours %q and %q share a first letter", other, c)
		}
		initials[c[0]] = c
	}
	tests := []struct {
		name  string
		words []string
		want  int
	}{
		{"names", nameWords, 40},
		{"objects", objects, 30},
		{"colors", colors, 12},
		{"places", placeWords, 20},
		{"verbs", verbWords, 40},
	}
	for _, tt := range tests {
		if len(tt.words) != tt.want {
			t.Errorf("%s: %d words, want %d", tt.name, len(tt.words), tt.want)
		}
		seen := map[string]bool{}
		for _, w := range tt.words {
			if seen[w] {
				t.Errorf("%s: %q twice", tt.name, w)
			}
			seen[w] = true
		}
	}
	// A colour or object word that is also another list's word would make
	// the recall patterns ambiguous.
	for _, c := range colors {
		if slices.Contains(objects, c) || slices.Contains(adjectives, c) {
			t.Errorf("colour %q is also an object or adjective", c)
		}
	}
}

func TestRecallAccuracy(t *testing.T) {
	text, slots := DefaultValid()
	// lastColor predicts the first letter of the colour word nearest before
	// the slot: right for one-object stories, and for two-object stories
	// only when the second object is the one lost.
	lastColor := func(offset int) byte {
		best, at := byte(0), -1
		for _, c := range colors {
			if i := bytes.LastIndex(text[:offset], []byte(" "+c+" ")); i > at {
				best, at = c[0], i
			}
		}
		return best
	}
	tests := []struct {
		name     string
		pred     func(int) byte
		slots    []RecallSlot
		min, max float64
	}{
		{"oracle", func(o int) byte { return text[o] }, slots, 1, 1},
		{"never right", func(int) byte { return 'x' }, slots, 0, 0},
		{"one colour always", func(int) byte { return 'r' }, slots, 0.04, 0.13},
		{"nearest colour", lastColor, slots, 0.6, 0.9},
		{"exactly half", func(o int) byte {
			if o < slots[50].Offset {
				return text[o]
			}
			return '?'
		}, slots[:100], 0.5, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RecallAccuracy(tt.pred, tt.slots); got < tt.min || got > tt.max {
				t.Errorf("RecallAccuracy = %.3f, want %.3f..%.3f", got, tt.min, tt.max)
			}
		})
	}
	if got := RecallAccuracy(func(int) byte { return 'r' }, nil); !math.IsNaN(got) {
		t.Errorf("RecallAccuracy with no slots = %g, want NaN", got)
	}
}
