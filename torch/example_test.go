package torch_test

import (
	"errors"
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Example computes a linear classifier's loss inside a scope, runs backward
// and reads the results out as Go values. README.md shows this body verbatim
// (readme_test.go keeps the two in sync).
func Example() {
	s := torch.NewScope() // tensors created from here on belong to s
	defer s.Close()       // frees them all in one call

	x := torch.FromSlice([]float32{1, 2, 0, -1, 0.5, 1}, []int{2, 3}) // 2 samples, 3 features
	w := torch.Zeros([]int{4, 3}, torch.RequiresGrad)                 // 4 classes
	y := torch.FromSlice([]int64{1, 3}, []int{2})                     // the classes of x
	loss := torch.CrossEntropy(torch.Linear(x, w, nil), y)
	loss.Backward()
	fmt.Printf("loss %.4f (ln 4), grad %v\n", loss.Item(), w.Grad().Shape())
	fmt.Println(w.Grad().Float32s())
	// Output:
	// loss 1.3863 (ln 4), grad [4 3]
	// [0 0.3125 0.125 -0.5 -0.6875 0.125 0 0.3125 0.125 0.5 0.0625 -0.375]
}

// ExampleTry shows the error model: tensor math panics with a *torch.Error,
// and Try turns the panic back into an error at a boundary of the caller's
// choosing.
func ExampleTry() {
	torch.WithScope(func() {
		a := torch.Ones([]int{2, 3})
		b := torch.Ones([]int{2, 3})
		err := torch.Try(func() { a.Matmul(b) })
		var te *torch.Error
		fmt.Println(errors.As(err, &te), errors.Is(err, torch.ErrShape), te.Op)
	})
	// Output:
	// true true matmul
}

// ExampleRunLocked runs tensor work on the device goroutine, where grad mode
// (here switched off by NoGrad) stays on the thread that set it.
func ExampleRunLocked() {
	torch.RunLocked(func() {
		s := torch.NewScope()
		defer s.Close()
		w := torch.Ones([]int{2}, torch.RequiresGrad)
		torch.NoGrad(func() {
			fmt.Println(torch.GradEnabled(), w.MulScalar(3).RequiresGrad())
		})
		fmt.Println(torch.GradEnabled(), w.MulScalar(3).RequiresGrad())
	})
	// Output:
	// false false
	// true true
}

// ExampleProfile finds where a computation's time goes, operator by
// operator: the calls and self time of every libtorch operator that ran,
// largest self time first (hlbench -child … -profile prints a training
// step's this way). (In float32 on AVX-512 CPUs the product would be the
// shim's own GEMM, listed as the scope hl::linear; float64 is libtorch's.)
func ExampleProfile() {
	torch.WithScope(func() {
		x := torch.Randn([]int{256, 256}, torch.Float64)
		ops, err := torch.ProfileByShape(func() {
			for i := 0; i < 3; i++ {
				x.Matmul(x).Relu()
			}
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, op := range ops {
			if op.Name == "aten::mm [256, 256] [256, 256]" || op.Name == "aten::relu [256, 256]" {
				fmt.Println(op.Name, op.Calls, op.Self > 0)
			}
		}
	})
	// Unordered output:
	// aten::mm [256, 256] [256, 256] 3 true
	// aten::relu [256, 256] 3 true
}
