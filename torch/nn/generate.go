package nn

import (
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch"
)

// Sampling chooses next tokens from logits.
type Sampling struct {
	// Temperature divides the logits; 0 picks the argmax (greedy).
	Temperature float64
	// TopK keeps only the k most likely tokens (0: all).
	TopK int
}

// Sample draws one token per row of logits [B, V] and returns them [B] (int64).
func (s Sampling) Sample(logits *torch.Tensor) *torch.Tensor {
	if s.Temperature <= 0 {
		return logits.Argmax(-1, false)
	}
	scaled := logits.DivScalar(s.Temperature)
	if s.TopK > 0 && s.TopK < logits.Size(-1) {
		vals, idx := scaled.TopK(s.TopK, -1)
		pick := vals.Softmax(-1).Multinomial(1, true) // [B, 1] index into the top k
		return idx.Gather(-1, pick).Squeeze(-1)
	}
	return scaled.Softmax(-1).Multinomial(1, true).Squeeze(-1)
}

// GenerateOptions control Generate.
type GenerateOptions struct {
	MaxNew int // tokens to add at most
	Sampling
	// Stop ends a row once it emits this token (which is kept); -1: never.
	Stop int64
}

// Generate extends each prompt by up to MaxNew tokens with a KV cache and
// returns the new tokens of each row. Prompts may differ in length: they are
// left-padded and the padding is masked out. It runs without gradients and in
// eval mode, restoring the store's mode afterwards.
func (m *GPT) Generate(prompts [][]int64, o GenerateOptions) ([][]int64, error) {
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	P := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		P = max(P, len(p))
	}
	total := P + o.MaxNew
	if total > m.Config.Context {
		return nil, fmt.Errorf("generate: prompt %d + %d new tokens exceeds the context %d", P, o.MaxNew, m.Config.Context)
	}
	out := make([][]int64, B)
	wasTraining := m.Store.Training()
	m.Store.Train(false)
	defer m.Store.Train(wasTraining)

	err := torch.Try(func() {
		torch.NoGrad(func() {
			s := torch.NewScope()
			defer s.Close()
			cache := m.NewKVCache(B, total)
			defer cache.Close()

			// Left padding: row b starts at pad[b].
			ids := make([]int64, B*P)
			pad := make([]int, B)
			ragged := false
			keys := make([]bool, B*total)
			pos := make([]int64, B*P)
			for b, p := range prompts {
				pad[b] = P - len(p)
				ragged = ragged || pad[b] > 0
				copy(ids[b*P+pad[b]:], p)
				for j := 0; j < total; j++ {
					keys[b*total+j] = j >= pad[b]
				}
				for j := 0; j < P; j++ {
					pos[b*P+j] = int64(max(0, j-pad[b]))
				}
			}
			var keyMask *torch.Tensor
			opts := &ForwardOptions{Cache: cache}
			if ragged {
				keyMask = torch.FromSlice(keys, []int{B, total})
				opts.KeyMask = keyMask.Narrow(1, 0, P)
				opts.Positions = torch.FromSlice(pos, []int{B, P})
			}
			logits := m.Forward(torch.FromSlice(ids, []int{B, P}), opts).Select(1, -1)
			done := make([]bool, B)
			step := make([]int64, B)
			for t := 0; t < o.MaxNew; t++ {
				next := o.Sample(logits).Int64s()
				alive := false
				for b := range next {
					if !done[b] {
						out[b] = append(out[b], next[b])
						done[b] = next[b] == o.Stop
					}
					alive = alive || !done[b]
				}
				if !alive || t == o.MaxNew-1 {
					break
				}
				opts := &ForwardOptions{Cache: cache}
				if ragged {
					opts.KeyMask = keyMask.Narrow(1, 0, P+t+1)
					for b := range step {
						step[b] = int64(P - pad[b] + t)
					}
					opts.Positions = torch.FromSlice(step, []int{B, 1})
				}
				it := torch.NewScope()
				logits = m.Forward(torch.FromSlice(next, []int{B, 1}), opts).Select(1, -1)
				it.Keep(logits)
				it.Close()
			}
		})
	})
	return out, err
}
