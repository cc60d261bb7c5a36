package interp

import (
	"cmp"
	"fmt"
	"slices"
)

// Ranked is a feature (code Code of book Book, an index into the books the
// ranking was given) scored against a set of matched sequences or
// positions: it fires Fires times, Hits of them matched.
type Ranked struct {
	Book, Code int
	Fires      int
	Hits       int
	Precision  float64 // Hits / Fires
	Recall     float64 // Hits / matched sequences or positions
}

// RankSequenceCodes scores every (book, code) that is a topic code of at
// least one sequence (perSeq[book][seq] lists the topic codes of seq, as
// TopicCodes returns them) against the sequences matched: it keeps the codes
// with at least minHits matched sequences and precision ≥ minPrecision,
// sorted by precision, then hits, then book order and code, and returns at
// most limit of them (0: all).
func RankSequenceCodes(perSeq [][][]int32, matched []bool, minHits int, minPrecision float64, limit int) []Ranked {
	on := 0
	for _, m := range matched {
		if m {
			on++
		}
	}
	var out []Ranked
	for bi, book := range perSeq {
		seqs, hits := map[int32]int{}, map[int32]int{}
		for s, codes := range book {
			for _, c := range codes {
				seqs[c]++
				if s < len(matched) && matched[s] {
					hits[c]++
				}
			}
		}
		for c, n := range seqs {
			h := hits[c]
			if h < max(minHits, 1) {
				continue
			}
			r := Ranked{Book: bi, Code: int(c), Fires: n, Hits: h, Precision: float64(h) / float64(n)}
			if on > 0 {
				r.Recall = float64(h) / float64(on)
			}
			if r.Precision >= minPrecision {
				out = append(out, r)
			}
		}
	}
	return sortRanked(out, limit)
}

// PositionCodes are one book's codes at every position, [positions][K],
// with the book's size.
type PositionCodes struct {
	Codes    [][]int32
	NumCodes int
}

// RankPositionCodes scores every code of the books against the positions
// matched (CodePrecisionRecall): it keeps the codes with at least minHits
// matched positions, recall above minRecall and precision ≥ minPrecision,
// sorted as RankSequenceCodes sorts, at most limit (0: all).
func RankPositionCodes(books []PositionCodes, matched []bool, minHits int, minRecall, minPrecision float64, limit int) ([]Ranked, error) {
	var out []Ranked
	for bi, b := range books {
		stats, err := CodePrecisionRecall(b.Codes, matched, b.NumCodes)
		if err != nil {
			return nil, &BookError{Book: bi, Err: err}
		}
		for _, st := range stats {
			if st.Hits < max(minHits, 1) || st.Recall <= minRecall || st.Precision < minPrecision {
				continue
			}
			out = append(out, Ranked{Book: bi, Code: st.Code, Fires: st.Fires, Hits: st.Hits, Precision: st.Precision, Recall: st.Recall})
		}
	}
	return sortRanked(out, limit), nil
}

// BookError is a failure scoring one book (an index into the books given).
type BookError struct {
	Book int
	Err  error
}

func (e *BookError) Error() string { return fmt.Sprintf("book %d: %v", e.Book, e.Err) }
func (e *BookError) Unwrap() error { return e.Err }

// sortRanked sorts by precision, then hits, then book order and code, and
// keeps at most limit (0: all).
func sortRanked(out []Ranked, limit int) []Ranked {
	slices.SortFunc(out, func(a, b Ranked) int {
		return cmp.Or(cmp.Compare(b.Precision, a.Precision), cmp.Compare(b.Hits, a.Hits),
			cmp.Compare(a.Book, b.Book), cmp.Compare(a.Code, b.Code))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// BestCodeF1 is the code, over all books, with the highest F1 (2PR/(P+R))
// for the matched positions: the TokFSM state-code analysis's choice. Ties
// keep the first book, then the lowest code. It returns the book's index,
// the code's statistics and its F1, or f1 = −1 when no code fires; books
// whose ids do not fit matched are passed over.
func BestCodeF1(books []PositionCodes, matched []bool) (book int, best CodeStat, f1 float64) {
	f1 = -1
	for bi, b := range books {
		stats, err := CodePrecisionRecall(b.Codes, matched, b.NumCodes)
		if err != nil {
			continue
		}
		for _, cs := range stats {
			if cs.Fires == 0 {
				continue
			}
			if f := 2 * cs.Precision * cs.Recall / (cs.Precision + cs.Recall + 1e-12); f > f1 {
				book, best, f1 = bi, cs, f
			}
		}
	}
	return book, best, f1
}
