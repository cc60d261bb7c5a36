package optim_test

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/nn"
	"github.com/hiddenlab/hiddenlab/torch/optim"
)

// ExampleAdamW takes one AdamW step on loss = p² from p = 1. Adam's first
// step moves each parameter by the learning rate against the sign of its
// gradient, after the decoupled weight decay shrank it by lr·wd:
// 1·(1 − 0.1·0.01) − 0.1 = 0.899.
func ExampleAdamW() {
	s := nn.NewStore()
	defer s.Close()
	s.Root().Param("p", torch.FromSlice([]float64{1}, []int{1}))
	p := s.Get("p")

	opt, err := optim.NewAdamW(&optim.Group{Name: "all", Params: []*nn.Param{p}, LR: 0.1, WeightDecay: 0.01})
	if err != nil {
		panic(err)
	}
	defer opt.Close()

	torch.WithScope(func() {
		s.ZeroGrad(true)
		p.T.Mul(p.T).Sum().Backward() // dp = 2p = 2
		opt.Step(1)                   // 1: the schedule's factor on LR
		fmt.Printf("p = %.4f after %d step\n", p.T.Item(), opt.Steps())
	})
	// Output:
	// p = 0.8990 after 1 step
}

// ExampleNewSchedule prints the learning-rate factor of a cosine schedule
// with 2 warm-up steps over 10 steps, decaying to 10% of the peak.
func ExampleNewSchedule() {
	sched, err := optim.NewSchedule("cosine", 2, 10, 0.1)
	if err != nil {
		panic(err)
	}
	for _, step := range []int{0, 1, 2, 6, 10} {
		fmt.Printf("step %2d: %.3f\n", step, sched.Factor(step))
	}
	// Output:
	// step  0: 0.500
	// step  1: 1.000
	// step  2: 1.000
	// step  6: 0.550
	// step 10: 0.100
}
