package reasoning

import (
	"fmt"
	"math/rand/v2"
)

// IgnoreIndex marks [Batch.Targets] entries that carry no loss; it is
// PyTorch's default ignore_index (torch.DefaultCrossEntropy).
const IgnoreIndex = -100

// SFTMix describes the SFT warm-up distribution (§8.1). Each row draws its
// task (HopChain with probability HopShare), then K uniform in K, then its
// trace style with probabilities proportional to Full, Skip and Direct.
type SFTMix struct {
	K                  KRange
	Full, Skip, Direct float64 // trace style weights, ≥ 0, not all 0
	HopShare           float64 // share of HopChain rows, in [0, 1]
	// TraceNoise is the probability that a think token is replaced by a
	// different token of the same kind (digit or symbol): the optional
	// noisy teacher of §8.1. Values and Answer stay true.
	TraceNoise float64
}

// DefaultSFTMix is the §8.1 mix: K in [2, 8], 60% full, 20% skip and 20%
// direct traces, a quarter of the rows HopChain, no trace noise. With
// HopChain rows a batch needs maxLen ≥ 53 (ModChain alone: 38).
var DefaultSFTMix = SFTMix{K: KRange{2, 8}, Full: 0.6, Skip: 0.2, Direct: 0.2, HopShare: 0.25}

// Validate reports whether m describes a distribution.
func (m SFTMix) Validate() error {
	if err := m.K.Validate(); err != nil {
		return err
	}
	if m.Full < 0 || m.Skip < 0 || m.Direct < 0 || m.Full+m.Skip+m.Direct <= 0 {
		return fmt.Errorf("reasoning: bad trace weights full=%g skip=%g direct=%g: need ≥ 0 with a positive sum", m.Full, m.Skip, m.Direct)
	}
	if !(m.HopShare >= 0 && m.HopShare <= 1) {
		return fmt.Errorf("reasoning: HopChain share %g outside [0, 1]", m.HopShare)
	}
	if !(m.TraceNoise >= 0 && m.TraceNoise <= 1) {
		return fmt.Errorf("reasoning: trace noise %g outside [0, 1]", m.TraceNoise)
	}
	return nil
}

// MaxLen returns the longest prompt+target sequence m can produce.
func (m SFTMix) MaxLen() int {
	n := ModChain.MaxLen(m.K.Max)
	if m.HopShare > 0 {
		n = max(n, HopChain.MaxLen(m.K.Max))
	}
	return n
}

// Batch is one SFT batch of B sequences, each prompt+target right-padded
// with PAD to length T. All slices are row-major. For row b:
//
//	Tokens[b, t]    the sequence; t < PromptLen[b] prompt, t < SeqLen[b] target, then PAD
//	LossMask[b, t]  1 iff PromptLen[b] ≤ t < SeqLen[b], the target tokens (think, ####, answer, EOS)
//	Inputs[b, t]    Tokens[b, t]      for t < T-1 (model input, shape B×(T-1))
//	Targets[b, t]   Tokens[b, t+1]    where LossMask[b, t+1] = 1, else IgnoreIndex
//	TargetMask[b,t] LossMask[b, t+1]  (the same positions as a float mask)
//
// so cross_entropy(model(Inputs), Targets, ignore_index=IgnoreIndex) is the
// next-token loss on exactly the target tokens; the prompt is context only.
// Right padding needs no attention mask under causal attention: PAD only
// follows the real tokens.
type Batch struct {
	B, T       int
	Tokens     []int64   // B×T
	LossMask   []float32 // B×T
	Inputs     []int64   // B×(T-1)
	Targets    []int64   // B×(T-1)
	TargetMask []float32 // B×(T-1)
	PromptLen  []int     // B
	SeqLen     []int     // B, prompt+target length
	Problems   []Problem // B, the rows' problems (Target as trained, noise included)
}

// SFTBatch returns batch step of the [DefaultSFTMix] stream for seed; see
// [SFTMix.Batch].
func SFTBatch(seed uint64, step, batch, maxLen int) (*Batch, error) {
	return DefaultSFTMix.Batch(seed, step, batch, maxLen)
}

// Batch returns batch step of the SFT stream for seed: a pure function of
// (m, seed, step, batch, maxLen). Rows are i.i.d. draws from m restricted to
// non-held-out prompts. It fails if maxLen < m.MaxLen(), whatever the rows
// drawn, so a too-short context is caught on the first step.
func (m SFTMix) Batch(seed uint64, step, batch, maxLen int) (*Batch, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if step < 0 || batch < 1 {
		return nil, fmt.Errorf("reasoning: bad SFT batch: step %d, batch %d", step, batch)
	}
	if need := m.MaxLen(); maxLen < need {
		return nil, fmt.Errorf("reasoning: maxLen %d too short for the SFT mix: K up to %d needs %d", maxLen, m.K.Max, need)
	}
	r := newRand(seed, streamSFT, uint64(step))
	T := maxLen
	b := newBatch(batch, T)
	b.Problems = make([]Problem, batch)
	for i := range batch {
		p, err := m.draw(r)
		if err != nil {
			return nil, err
		}
		b.Problems[i] = p
		b.setRow(i, p.Prompt, p.Target, int64(PAD))
	}
	return b, nil
}

// newBatch allocates a batch of B rows of T tokens (Problems left to the
// caller).
func newBatch(B, T int) *Batch {
	return &Batch{
		B: B, T: T,
		Tokens:     make([]int64, B*T),
		LossMask:   make([]float32, B*T),
		Inputs:     make([]int64, B*(T-1)),
		Targets:    make([]int64, B*(T-1)),
		TargetMask: make([]float32, B*(T-1)),
		PromptLen:  make([]int, B),
		SeqLen:     make([]int, B),
	}
}

// setRow writes row i: the prompt, then the target, then pad to the end;
// the loss mask on the target; and the shifted inputs, targets (IgnoreIndex
// off the target) and target mask.
func (b *Batch) setRow(i int, prompt, target []int32, pad int64) {
	T := b.T
	b.PromptLen[i] = len(prompt)
	b.SeqLen[i] = len(prompt) + len(target)
	tok := b.Tokens[i*T : (i+1)*T]
	mask := b.LossMask[i*T : (i+1)*T]
	n := copyIDs(tok, prompt)
	n += copyIDs(tok[n:], target)
	for t := range tok[n:] {
		tok[n+t] = pad
	}
	for t := len(prompt); t < n; t++ {
		mask[t] = 1
	}
	in := b.Inputs[i*(T-1) : (i+1)*(T-1)]
	tgt := b.Targets[i*(T-1) : (i+1)*(T-1)]
	tm := b.TargetMask[i*(T-1) : (i+1)*(T-1)]
	copy(in, tok[:T-1])
	copy(tm, mask[1:])
	for t := range tgt {
		if mask[t+1] == 1 {
			tgt[t] = tok[t+1]
		} else {
			tgt[t] = IgnoreIndex
		}
	}
}

// draw draws one training row.
func (m SFTMix) draw(r *rand.Rand) (Problem, error) {
	task := ModChain
	if r.Float64() < m.HopShare {
		task = HopChain
	}
	k := m.K.draw(r)
	trace := TraceDirect
	switch u := r.Float64() * (m.Full + m.Skip + m.Direct); {
	case u < m.Full:
		trace = TraceFull
	case u < m.Full+m.Skip:
		trace = TraceSkip
	}
	p, err := drawSplit(r, task, k, trace, false)
	if err != nil {
		return Problem{}, err
	}
	if m.TraceNoise > 0 {
		think := p.Target[:len(p.Target)-3]
		for t, id := range think {
			if r.Float64() < m.TraceNoise {
				think[t] = corrupt(r, id)
			}
		}
	}
	return p, nil
}

// corrupt returns a token of the same kind as id (digit or symbol), drawn
// uniformly from the others.
func corrupt(r *rand.Rand, id int32) int32 {
	base, n := Digit0, int32(10)
	if IsSymbol(id) {
		base, n = SymbolA, NumSymbols
	}
	return base + (id-base+1+r.Int32N(n-1))%n
}

func copyIDs(dst []int64, src []int32) int {
	for i, id := range src {
		dst[i] = int64(id)
	}
	return len(src)
}
