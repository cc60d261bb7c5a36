package text_test

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/data/text"
)

func ExampleEvalWindows() {
	ids := []int32{10, 11, 12, 13, 14, 15, 16, 17, 18, 19} // 9 targets
	ws, err := text.EvalWindows(ids, 4, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ws)
	for b := range text.EvalBatches(ids, ws, 4, 8) {
		fmt.Println(b.X, b.Y, b.Mask, b.Scored)
	}
	// Output:
	// [{0 0} {4 0} {5 3}]
	// [10 11 12 13 14 15 16 17 15 16 17 18] [11 12 13 14 15 16 17 18 16 17 18 19] [1 1 1 1 1 1 1 1 0 0 0 1] 9
}
