package tokfsm

// Parse returns the states spelled by a token sequence, as the reference's
// seq_to_traj does for generated text: every BOS/EOS/PAD token (id Base) is
// dropped, the remaining tokens are cut into chunks of Digits tokens, and a
// trailing partial chunk is ignored. A chunk that spells no state (a token
// that is not a digit, or a number ≥ States) is reported as Invalid.
func (f *FSM) Parse(tokens []int32) []int {
	bos := f.BOS()
	states := make([]int, 0, len(tokens)/f.digits)
	chunk := make([]int32, 0, f.digits)
	for _, t := range tokens {
		if t == bos {
			continue
		}
		chunk = append(chunk, t)
		if len(chunk) == f.digits {
			states = append(states, f.stateOf(chunk))
			chunk = chunk[:0]
		}
	}
	return states
}

// TransitionAccuracy parses each sequence (see Parse) and returns acc, the
// share of consecutive state pairs that are edges of the machine over all
// pairs, and firstAcc, the share of sequences whose first pair is an edge. A
// pair with an Invalid state is not an edge. Sequences with fewer than two
// states add no pairs but count as a failed first transition. Both results
// are 0 when there is nothing to count.
//
// This is the reference's transition_accuracy (the "State Acc" of the
// paper's Table 1), computed there on 100 sequences sampled from BOS.
func (f *FSM) TransitionAccuracy(seqs [][]int32) (acc, firstAcc float64) {
	var valid, pairs, first int
	for _, seq := range seqs {
		states := f.Parse(seq)
		for i := 1; i < len(states); i++ {
			pairs++
			if f.HasEdge(states[i-1], states[i]) {
				valid++
				if i == 1 {
					first++
				}
			}
		}
	}
	if pairs > 0 {
		acc = float64(valid) / float64(pairs)
	}
	if len(seqs) > 0 {
		firstAcc = float64(first) / float64(len(seqs))
	}
	return acc, firstAcc
}
