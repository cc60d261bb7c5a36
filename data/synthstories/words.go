package synthstories

// The word lists of the corpus. Changing any of them changes the corpus for
// every seed (TestGolden pins it).

type gender int

const (
	female gender = iota
	male
)

type character struct {
	name   string
	gender gender
}

// names are the 40 character names, 20 of each gender; a name decides the
// pronouns used for its character.
var names = []character{
	{"Lily", female}, {"Mia", female}, {"Emma", female}, {"Sara", female},
	{"Anna", female}, {"Lucy", female}, {"Ella", female}, {"Zoe", female},
	{"Ruby", female}, {"Grace", female}, {"Chloe", female}, {"Rosa", female},
	{"Ivy", female}, {"Nora", female}, {"Alice", female}, {"Hannah", female},
	{"Maya", female}, {"Lena", female}, {"Julia", female}, {"Kate", female},
	{"Tom", male}, {"Ben", male}, {"Max", male}, {"Sam", male},
	{"Leo", male}, {"Jack", male}, {"Finn", male}, {"Noah", male},
	{"Oscar", male}, {"Jake", male}, {"Luke", male}, {"Adam", male},
	{"Tim", male}, {"Owen", male}, {"Peter", male}, {"Hugo", male},
	{"Eli", male}, {"Dan", male}, {"Ryan", male}, {"Theo", male},
}

// pronouns are the subject, object and possessive pronouns of a gender.
var pronouns = [...]struct{ sub, obj, poss string }{
	female: {"she", "her", "her"},
	male:   {"he", "him", "his"},
}

// kinds are what a character is; people's kinds depend on gender, animals'
// do not.
var (
	kindsOf = [...][]string{
		female: {"girl", "princess"},
		male:   {"boy", "prince"},
	}
	animalKinds = []string{"cat", "dog", "bunny", "fox", "bear", "mouse", "bird", "frog", "duck", "lamb"}
)

var adjectives = []string{
	"little", "kind", "happy", "brave", "small", "curious", "shy", "funny",
	"clever", "gentle", "old", "young", "friendly", "sleepy", "busy", "quiet",
	"fuzzy", "tiny",
}

// colors are the 12 colour words. Their first letters differ, so a model's
// prediction of the first letter of a recalled colour identifies the colour.
var colors = []string{
	"red", "blue", "green", "yellow", "orange", "purple",
	"white", "silver", "tan", "maroon", "lime", "coral",
}

// objects are the 30 things a character owns, loses and finds.
var objects = []string{
	"ball", "kite", "hat", "box", "cup", "book", "car", "boat", "drum", "bell",
	"doll", "sock", "shoe", "bag", "key", "coat", "sled", "bike", "spoon", "ring",
	"scarf", "lamp", "shell", "bucket", "pencil", "brush", "block", "wagon", "rope", "mug",
}

// place is one of the 20 places, with the preposition that puts something
// there ("in the park", "on the farm").
type place struct{ prep, name string }

var places = []place{
	{"in", "park"}, {"in", "garden"}, {"in", "forest"}, {"by", "river"},
	{"at", "beach"}, {"on", "farm"}, {"at", "school"}, {"in", "kitchen"},
	{"in", "barn"}, {"on", "hill"}, {"by", "lake"}, {"in", "field"},
	{"in", "yard"}, {"by", "pond"}, {"at", "library"}, {"at", "market"},
	{"in", "meadow"}, {"in", "cave"}, {"at", "playground"}, {"in", "village"},
}

// spots are where a lost thing turns up ("under the bed").
var spots = []string{
	"under the bed", "behind the door", "under the table", "next to the rock",
	"in the bush", "under the chair", "near the fence", "behind the tree",
}

// verb is one of the 40 verbs, in its base and past forms.
type verb struct{ base, past string }

var verbs = []verb{
	{"play", "played"}, {"sing", "sang"}, {"dance", "danced"}, {"run", "ran"},
	{"jump", "jumped"}, {"read", "read"}, {"draw", "drew"}, {"swim", "swam"},
	{"climb", "climbed"}, {"paint", "painted"}, {"bake", "baked"}, {"hop", "hopped"},
	{"skip", "skipped"}, {"walk", "walked"}, {"ride", "rode"}, {"explore", "explored"},
	{"build", "built"}, {"dig", "dug"}, {"laugh", "laughed"}, {"rest", "rested"},
	{"sleep", "slept"}, {"hide", "hid"}, {"wander", "wandered"}, {"splash", "splashed"},
	{"skate", "skated"}, {"race", "raced"}, {"roll", "rolled"}, {"spin", "spun"},
	{"clap", "clapped"}, {"whistle", "whistled"}, {"hum", "hummed"}, {"cook", "cooked"},
	{"fish", "fished"}, {"shout", "shouted"}, {"march", "marched"}, {"sit", "sat"},
	{"nap", "napped"}, {"stretch", "stretched"}, {"count", "counted"}, {"write", "wrote"},
}

var (
	givers   = []string{"mom", "dad", "grandma", "grandpa", "aunt", "uncle"}
	feelings = []string{"happy", "sad", "tired", "excited", "proud", "hungry", "sleepy", "glad"}
	openers  = []string{"Later", "After a while", "The next day", "Soon", "At last"}
)
