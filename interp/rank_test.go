package interp

import "testing"

// BestCodeF1 picks the code with the highest F1 over all books, keeps the
// first on ties, and reports −1 when nothing fires.
func TestBestCodeF1(t *testing.T) {
	matched := []bool{true, true, false, false}
	for _, c := range []struct {
		name          string
		books         []PositionCodes
		book, code    int
		f1, prec, rec float64
	}{
		// Book 0: code 1 fires on positions 0, 2 (P 1/2, R 1/2, F1 0.5);
		// book 1: code 3 fires on 0, 1 (P 1, R 1, F1 1).
		{"best in the second book", []PositionCodes{
			{Codes: [][]int32{{1}, {None}, {1}, {None}}, NumCodes: 4},
			{Codes: [][]int32{{3}, {3}, {None}, {None}}, NumCodes: 4}}, 1, 3, 1, 1, 1},
		// Two codes with the same F1: the first book's wins.
		{"tie keeps the first", []PositionCodes{
			{Codes: [][]int32{{2}, {None}, {None}, {None}}, NumCodes: 4},
			{Codes: [][]int32{{None}, {0}, {None}, {None}}, NumCodes: 4}}, 0, 2, 2.0 / 3, 1, 0.5},
		{"nothing fires", []PositionCodes{{Codes: [][]int32{{None}, {None}, {None}, {None}}, NumCodes: 4}}, 0, 0, -1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, cs, f1 := BestCodeF1(c.books, matched)
			if f1 < 0 {
				if c.f1 >= 0 {
					t.Fatalf("f1 = %v, want %v", f1, c.f1)
				}
				return
			}
			if b != c.book || cs.Code != c.code || abs(f1-c.f1) > 1e-9 || cs.Precision != c.prec || cs.Recall != c.rec {
				t.Fatalf("got book %d code %d f1 %v P %v R %v; want %d %d %v %v %v", b, cs.Code, f1, cs.Precision, cs.Recall, c.book, c.code, c.f1, c.prec, c.rec)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
