package synthstories_test

import (
	"bytes"
	"fmt"

	"github.com/hiddenlab/hiddenlab/data/synthstories"
)

func ExampleGenerate() {
	text, slots := synthstories.Generate(1, 1000)
	end := bytes.IndexByte(text, '\n')
	fmt.Printf("%s\n", text[:end])
	s := slots[0]
	fmt.Printf("recall %q at %d (cue at %d): %q\n", s.Color, s.Offset, s.Cue, text[s.Offset-10:s.Offset+len(s.Color)])
	// Output:
	// Once upon a time there was a little frog named Sara. Sara's uncle gave her a purple pencil and a white cup. One day, she lost her cup on the farm. She wrote with her friend Adam at the beach. At last, she found the white cup under the chair.
	// recall "white" at 215 (cue at 97): "found the white"
}

func ExampleRecallAccuracy() {
	text, slots := synthstories.DefaultValid()
	// A model that always predicts the next byte correctly.
	oracle := func(offset int) byte { return text[offset] }
	fmt.Println(synthstories.RecallAccuracy(oracle, slots))
	// A model that always says "r" (for "red").
	fmt.Printf("%.2f\n", synthstories.RecallAccuracy(func(int) byte { return 'r' }, slots))
	// Output:
	// 1
	// 0.08
}
