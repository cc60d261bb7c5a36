package text

import (
	"fmt"
	"math/rand/v2"
)

// A Batcher serves training batches of random windows of a token sequence.
//
// Batch(step) depends only on the ids, the shape, the seed and step: its
// windows start at positions drawn from a PCG generator seeded with
// rand.NewPCG(seed, uint64(step)) (math/rand/v2). A run resumed at step k
// therefore sees the same batches as one that never stopped, without
// replaying steps 0..k-1, and two Batchers with the same arguments agree.
// Changing this derivation would change every run's data order.
//
// A Batcher is safe for concurrent use.
type Batcher struct {
	ids            []int32
	batch, context int
	seed           uint64
	// src, when set, holds the ids instead: ids [lo, lo+n) of a mapped
	// token file (NewMappedBatcher).
	src   *MappedTokens
	lo, n int
}

// NewBatcher returns a Batcher of batch windows of context ids each over
// ids, which it keeps and does not modify. The ids must hold at least
// context+1 tokens, one window and its next-token targets.
func NewBatcher(ids []int32, batch, context int, seed uint64) (*Batcher, error) {
	if err := checkBatcher(len(ids), batch, context); err != nil {
		return nil, err
	}
	return &Batcher{ids: ids, batch: batch, context: context, seed: seed, n: len(ids)}, nil
}

// checkBatcher checks a Batcher's shape against its n tokens.
func checkBatcher(n, batch, context int) error {
	switch {
	case batch < 1:
		return fmt.Errorf("batcher: batch size %d, want at least 1", batch)
	case context < 1:
		return fmt.Errorf("batcher: context %d, want at least 1", context)
	case n < context+1:
		return fmt.Errorf("batcher: %d tokens, want at least context+1 = %d", n, context+1)
	}
	return nil
}

// Shape returns the batch size and the context length.
func (b *Batcher) Shape() (batch, context int) { return b.batch, b.context }

// Batch returns the inputs and targets of training step step, each
// batch*context ids in row-major order: row r is x = ids[s:s+context] and
// y = ids[s+1:s+context+1], for a start s drawn uniformly and independently
// from [0, len(ids)-context-1]. It panics if step is negative.
func (b *Batcher) Batch(step int) (x, y []int64) {
	x = make([]int64, b.batch*b.context)
	y = make([]int64, b.batch*b.context)
	b.BatchInto(step, x, y)
	return x, y
}

// BatchInto is Batch writing into x and y, which must each hold exactly
// batch*context values, so a training loop can reuse them.
func (b *Batcher) BatchInto(step int, x, y []int64) {
	if step < 0 {
		panic(fmt.Sprintf("text: Batcher.Batch: negative step %d", step))
	}
	if n := b.batch * b.context; len(x) != n || len(y) != n {
		panic(fmt.Sprintf("text: Batcher.BatchInto: len(x) = %d, len(y) = %d, want %d", len(x), len(y), n))
	}
	rng := rand.New(rand.NewPCG(b.seed, uint64(step)))
	starts := b.n - b.context // starts 0..starts-1 leave room for the targets
	for r := range b.batch {
		s := rng.IntN(starts)
		row := r * b.context
		if b.src != nil {
			b.src.fill(x[row:row+b.context], b.lo+s)
			b.src.fill(y[row:row+b.context], b.lo+s+1)
			continue
		}
		for i, id := range b.ids[s : s+b.context] {
			x[row+i] = int64(id)
		}
		for i, id := range b.ids[s+1 : s+1+b.context] {
			y[row+i] = int64(id)
		}
	}
}
