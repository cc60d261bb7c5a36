// Package synthstories generates SynthStories-char, a seeded synthetic
// corpus of short children's stories for character-level language models,
// with a built-in recall task.
//
// Each story is one line of 3–6 sentences, ended by '\n'. It introduces a
// character ("Once upon a time there was a brave girl named Lily."), gives
// the character one or two coloured objects ("Lily had a red ball and a
// blue kite."), may have the character do things in places and lose one of
// the objects ("One day, she lost her ball in the park."), and ends with a
// recall sentence ("Later, she found the red ball under the bed."). The
// colour word after "found the " is the story's recall slot: it can only be
// predicted by recalling the colour that the story gave the found object,
// at most MaxCueDistance bytes earlier. When the character owns two
// objects, the story always says which one was lost before it is found, so
// the slot has one right answer; about 45% of stories have two objects.
//
// Pronouns agree with the character's name (each of the 40 names has a
// gender). The corpus uses 40 names, 30 objects, 12 colours, 20 places and
// 40 verbs; the colours' first letters all differ.
//
// Generation is deterministic: the same seed and length always give the
// same bytes, from a math/rand/v2 PCG source.
package synthstories

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Alphabet holds every byte the generator can emit, in increasing order:
// newline, space, "!", "'", ",", ".", A–Z and a–z (58 bytes). A byte's
// index in Alphabet is its token id (see Encode).
const Alphabet = "\n !',.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// The default splits used by the recipes.
const (
	TrainSeed  = 1
	TrainChars = 3_000_000
	ValidSeed  = 2
	ValidChars = 200_000
)

// MaxCueDistance bounds RecallSlot.Offset − RecallSlot.Cue: a model that sees
// the MaxCueDistance bytes before a slot sees the colour it must recall.
const MaxCueDistance = 120

// pcgStream is the second PCG seed word, fixed so that one seed names one
// corpus.
const pcgStream = 0x5359_4e54_4853_5459 // "SYNTHSTY"

// RecallSlot is the colour word of a story's recall sentence. To score a
// slot fairly, the model's context for position Offset−1 must include Cue,
// e.g. a window ending at Offset−1 of more than MaxCueDistance bytes; a
// window cut at a fixed stride may start after the cue.
type RecallSlot struct {
	// Offset is the byte offset in the text of the colour word's first
	// letter; a model predicts it from its output at Offset−1.
	Offset int
	// Color is the colour word, e.g. "red".
	Color string
	// Cue is the byte offset of the same colour word where the story gave
	// it to the object (Cue < Offset ≤ Cue+MaxCueDistance).
	Cue int
}

// Generate returns the first nChars bytes of the corpus for seed, and the
// recall slots whose colour word lies wholly within them, in text order.
// The text is whole stories except that the last one is cut at nChars.
// nChars <= 0 gives an empty text.
func Generate(seed uint64, nChars int) (text []byte, slots []RecallSlot) {
	if nChars <= 0 {
		return []byte{}, nil
	}
	g := generator{r: rand.New(rand.NewPCG(seed, pcgStream))}
	text = make([]byte, 0, nChars+512)
	for len(text) < nChars {
		s := g.story()
		base := len(text)
		text = append(text, s.text...)
		if end := base + s.slot + len(s.color); end <= nChars {
			slots = append(slots, RecallSlot{Offset: base + s.slot, Color: s.color, Cue: base + s.cue})
		}
	}
	return text[:nChars:nChars], slots
}

// DefaultTrain returns the training split: TrainChars bytes for TrainSeed.
func DefaultTrain() ([]byte, []RecallSlot) { return Generate(TrainSeed, TrainChars) }

// DefaultValid returns the validation split: ValidChars bytes for ValidSeed.
func DefaultValid() ([]byte, []RecallSlot) { return Generate(ValidSeed, ValidChars) }

// RecallAccuracy returns the fraction of slots whose colour's first letter
// pred gives. pred(offset) is the model's most likely byte at offset, i.e.
// the argmax of its output at offset−1. It returns NaN when slots is empty.
func RecallAccuracy(pred func(offset int) byte, slots []RecallSlot) float64 {
	if len(slots) == 0 {
		return math.NaN()
	}
	hits := 0
	for _, s := range slots {
		if pred(s.Offset) == s.Color[0] {
			hits++
		}
	}
	return float64(hits) / float64(len(slots))
}

// tokenIDs maps a byte to its index in Alphabet, or -1.
var tokenIDs = func() (ids [256]int8) {
	for i := range ids {
		ids[i] = -1
	}
	for i := range len(Alphabet) {
		ids[Alphabet[i]] = int8(i)
	}
	return ids
}()

// Encode returns the token ids of text (indices into Alphabet). It fails on
// a byte outside Alphabet.
func Encode(text []byte) ([]uint8, error) {
	ids := make([]uint8, len(text))
	for i, b := range text {
		id := tokenIDs[b]
		if id < 0 {
			return nil, fmt.Errorf("synthstories: byte %q at offset %d is not in the alphabet", b, i)
		}
		ids[i] = uint8(id)
	}
	return ids, nil
}

// story is one generated story, with the offsets of its cue and recall
// slot relative to its start.
type story struct {
	text      []byte
	color     string
	cue, slot int
}

// generator writes stories from a random source.
type generator struct {
	r *rand.Rand
	b []byte // the story being written
	// cue and slot are the offsets in b of the recalled colour's two
	// occurrences, set while writing.
	cue, slot int
}

// story returns the next story. Drafts whose recall slot lies more than
// MaxCueDistance bytes after its cue are discarded. The returned text is
// only valid until the next call.
func (g *generator) story() story {
	for {
		color := g.draft()
		if g.slot-g.cue <= MaxCueDistance {
			return story{text: g.b, color: color, cue: g.cue, slot: g.slot}
		}
	}
}

// draft writes a story to g.b and returns its recalled colour.
func (g *generator) draft() string {
	r := g.r
	g.b = g.b[:0]

	hero := pick(r, names)
	pr := pronouns[hero.gender]
	kind := pick(r, animalKinds)
	if r.IntN(2) == 0 {
		kind = pick(r, kindsOf[hero.gender])
	}
	// Two different objects of two different colours; the story uses the
	// second pair only when it has a distractor.
	o := [2]string{pick(r, objects), ""}
	for o[1] = pick(r, objects); o[1] == o[0]; o[1] = pick(r, objects) {
	}
	c := [2]string{pick(r, colors), ""}
	for c[1] = pick(r, colors); c[1] == c[0]; c[1] = pick(r, colors) {
	}
	distractor := r.IntN(2) == 0
	target := 0
	if distractor {
		target = r.IntN(2)
	}
	// With two objects the story must say which one is lost.
	lost := distractor || r.IntN(2) == 0

	// Intro, possession and recall, the loss if any, and fillers up to six
	// sentences in all. A filler goes before the possession (0), after it
	// (1) or after the loss (2).
	fixed := 3
	if lost {
		fixed++
	}
	var fillersAt [3]int
	gaps := 2
	if lost {
		gaps = 3
	}
	for range r.IntN(6 - fixed + 1) {
		fillersAt[r.IntN(gaps)]++
	}

	adj := pick(r, adjectives)
	g.put("Once upon a time there was ", an(adj), " ", adj, " ", kind, " named ", hero.name, ". ")
	g.fillers(fillersAt[0], hero)
	switch r.IntN(2) {
	case 0:
		g.put(hero.name, " had ")
	default:
		g.put(hero.name, "'s ", pick(r, givers), " gave ", pr.obj, " ")
	}
	g.thing(c[0], o[0], target == 0)
	if distractor {
		g.put(" and ")
		g.thing(c[1], o[1], target == 1)
	}
	g.put(". ")
	g.fillers(fillersAt[1], hero)
	if lost {
		switch r.IntN(3) {
		case 0:
			g.put("One day, ", pr.sub, " lost ", pr.poss, " ", o[target], " ", at(pick(r, places)), ". ")
		case 1:
			g.put("Oh no! ", hero.name, " dropped ", pr.poss, " ", o[target], " ", at(pick(r, places)), ". ")
		default:
			g.put("Then ", hero.name, " could not find ", pr.poss, " ", o[target], ". ")
		}
		g.fillers(fillersAt[2], hero)
	}
	if lost && r.IntN(3) == 0 {
		g.put(hero.name, " looked everywhere and found the ")
	} else {
		g.put(pick(r, openers), ", ", pr.sub, " found the ")
	}
	g.slot = len(g.b)
	where := pick(r, spots)
	if r.IntN(2) == 0 {
		where = at(pick(r, places))
	}
	g.put(c[target], " ", o[target], " ", where, ".\n")
	return c[target]
}

// thing writes "a red ball", recording the colour's offset as the cue if
// the object is the one the story recalls.
func (g *generator) thing(color, object string, recalled bool) {
	g.put(an(color), " ")
	if recalled {
		g.cue = len(g.b)
	}
	g.put(color, " ", object)
}

// fillers writes n sentences about the hero that name no object or colour.
func (g *generator) fillers(n int, hero character) {
	r := g.r
	pr := pronouns[hero.gender]
	sub := capitalize(pr.sub)
	for range n {
		friend := pick(r, names).name
		for friend == hero.name {
			friend = pick(r, names).name
		}
		switch r.IntN(8) {
		case 0:
			g.put(hero.name, " lived near the ", pick(r, places).name, ". ")
		case 1:
			g.put(sub, " liked to ", pick(r, verbs).base, " ", at(pick(r, places)), ". ")
		case 2:
			g.put("Every day, ", pr.sub, " went to the ", pick(r, places).name, " to ", pick(r, verbs).base, ". ")
		case 3:
			g.put(sub, " ", pick(r, verbs).past, " with ", pr.poss, " friend ", friend, " ", at(pick(r, places)), ". ")
		case 4:
			g.put(hero.name, " was very ", pick(r, feelings), ". ")
		case 5:
			g.put(capitalize(pr.poss), " ", pick(r, givers), " told ", pr.obj, " to be careful. ")
		case 6:
			g.put(friend, " asked ", pr.obj, " to ", pick(r, verbs).base, ". ")
		default:
			g.put(sub, " loved to ", pick(r, verbs).base, " with ", friend, ". ")
		}
	}
}

func (g *generator) put(parts ...string) {
	for _, p := range parts {
		g.b = append(g.b, p...)
	}
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// an returns the indefinite article for word: "a" or "an".
func an(word string) string {
	switch word[0] {
	case 'a', 'e', 'i', 'o', 'u':
		return "an"
	}
	return "a"
}

// at returns the phrase that puts something in p: "in the park".
func at(p place) string { return p.prep + " the " + p.name }

func capitalize(s string) string { return string(s[0]-'a'+'A') + s[1:] }
