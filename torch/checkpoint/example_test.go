package checkpoint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/checkpoint"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// exampleModel builds a small store with one linear layer, randomly initialised.
func exampleModel() *nn.Store {
	s := nn.NewStore()
	nn.NewLinear(s.Root().Sub("fc"), 4, 3, true, 1)
	return s
}

// equal reports whether a and b hold the same parameter values.
func equal(a, b *nn.Store) bool {
	same := true
	torch.WithScope(func() {
		for i, p := range a.Params() {
			same = same && slices.Equal(p.T.Float32s(), b.Params()[i].T.Float32s())
		}
	})
	return same
}

// Example saves a model at step 100, finds the checkpoint again as a resume
// would (LatestVerified checks every file's SHA-256), and loads it into a
// freshly initialised copy of the model.
func Example() {
	root, err := os.MkdirTemp("", "checkpoint-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)

	torch.ManualSeed(1)
	src := exampleModel()
	defer src.Close()
	dir, err := checkpoint.Save(root, src, nil, checkpoint.State{Step: 100}, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println("saved", filepath.Base(dir))

	st, err := checkpoint.Verify(dir)
	if err != nil {
		panic(err)
	}
	fmt.Println("verified step", st.Step, "files hashed:", len(st.SHA256))

	latest, notes, err := checkpoint.LatestVerified(root)
	if err != nil {
		panic(err)
	}
	fmt.Println("latest", filepath.Base(latest), "notes:", len(notes))

	torch.ManualSeed(2)
	dst := exampleModel()
	defer dst.Close()
	fmt.Println("fresh model matches:", equal(src, dst))
	st, err = checkpoint.Load(latest, dst, nil, nn.LoadOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("loaded step", st.Step, "weights match:", equal(src, dst))
	// Output:
	// saved step-000000100
	// verified step 100 files hashed: 1
	// latest step-000000100 notes: 0
	// fresh model matches: false
	// loaded step 100 weights match: true
}
