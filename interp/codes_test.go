package interp

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCodePrecisionRecall(t *testing.T) {
	ids := [][]int32{
		{0, 1},   // matched
		{0, 2},   // matched
		{1, 3},   //
		{0, 0},   // a code listed twice counts once
		{2, 1},   // matched
		{-1, -1}, // empty
	}
	matched := []bool{true, true, false, false, true, false}
	tests := []struct {
		name     string
		ids      [][]int32
		matched  []bool
		numCodes int
		want     []CodeStat
		err      string
	}{
		{
			name: "mixed", ids: ids, matched: matched, numCodes: 5,
			want: []CodeStat{
				{Code: 0, Precision: 2.0 / 3, Recall: 2.0 / 3, Fires: 3, Hits: 2},
				{Code: 1, Precision: 2.0 / 3, Recall: 2.0 / 3, Fires: 3, Hits: 2},
				{Code: 2, Precision: 1, Recall: 2.0 / 3, Fires: 2, Hits: 2},
				{Code: 3, Precision: 0, Recall: 0, Fires: 1, Hits: 0},
			},
		},
		{
			name: "nothing matched", ids: [][]int32{{4}, {4}}, matched: []bool{false, false}, numCodes: 5,
			want: []CodeStat{{Code: 4, Fires: 2}},
		},
		{name: "empty", numCodes: 5},
		{name: "length mismatch", ids: ids, matched: matched[:5], numCodes: 5, err: "6 positions of code ids but 5 match flags"},
		{name: "id out of range", ids: ids, matched: matched, numCodes: 3, err: "code id 3 at position 2"},
		{name: "negative numCodes", numCodes: -1, err: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CodePrecisionRecall(tt.ids, tt.matched, tt.numCodes)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTopCodes(t *testing.T) {
	stats := []CodeStat{
		{Code: 0, Precision: 0.9, Recall: 0.05},
		{Code: 1, Precision: 0.9, Recall: 0.2},
		{Code: 2, Precision: 0.6, Recall: 0.5},
		{Code: 3, Precision: 0.99, Recall: 0.005}, // recall too low
		{Code: 4, Precision: 0.4, Recall: 0.8},
		{Code: 5, Precision: 0.9, Recall: 0.2}, // ties code 1: lower code first
		{Code: 6, Precision: 0.5, Recall: 0.3}, // precision not above 0.5
	}
	orig := slices.Clone(stats)
	codes := func(s []CodeStat) []int {
		out := []int{}
		for _, c := range s {
			out = append(out, c.Code)
		}
		return out
	}
	tests := []struct {
		name string
		n    int
		want []int
	}{
		{"reference defaults", RegexTopCodes, []int{1, 5, 0, 2}},
		{"top two", 2, []int{1, 5}},
		{"none", 0, []int{}},
		{"negative n", -3, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TopCodes(stats, RegexMinRecall, RegexMinPrecision, tt.n)
			require.Equal(t, tt.want, codes(got))
		})
	}
	// Precision 0.6 is the fourth best but falls below a stricter bar; the
	// top-n cut comes before the precision filter, as in the reference.
	require.Equal(t, []int{1, 5}, codes(TopCodes(stats, 0.01, 0.7, 2)))
	require.Equal(t, []int{3, 1, 5, 0}, codes(TopCodes(stats, 0, 0.7, 5)))
	require.Empty(t, TopCodes(nil, 0, 0, 5))
	require.Equal(t, orig, stats, "input untouched")
}

func TestPartitionPurity(t *testing.T) {
	tests := []struct {
		name         string
		codes        [][]int32
		partition    map[int32][]int
		pure, active int
		purity       float64
	}{
		{
			name:      "mixed",
			codes:     [][]int32{{5}, {5}, {7, 9}, {8, 8}, {-1}},
			partition: map[int32][]int{5: {0, 1}, 7: {2}, 8: {3}, 9: {2}},
			pure:      3, active: 4, purity: 0.75,
		},
		{
			name:      "one code for all",
			codes:     [][]int32{{2}, {2}, {2}},
			partition: map[int32][]int{2: {0, 1, 2}},
			pure:      0, active: 1, purity: 0,
		},
		{
			name:      "all pure",
			codes:     [][]int32{{0, 1}, {2, 3}},
			partition: map[int32][]int{0: {0}, 1: {0}, 2: {1}, 3: {1}},
			pure:      4, active: 4, purity: 1,
		},
		{name: "empty", codes: nil, partition: map[int32][]int{}},
		{name: "no active code", codes: [][]int32{{-1}}, partition: map[int32][]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.partition, Partition(tt.codes))
			pure, active, purity := Purity(tt.codes)
			require.Equal(t, tt.pure, pure)
			require.Equal(t, tt.active, active)
			require.Equal(t, tt.purity, purity)
		})
	}
}

func TestTopicCodes(t *testing.T) {
	ids := [][][]int32{
		{{1, 2}, {1, 3}, {1, -1}, {2, 1}}, // 1 on 4/4, 2 on exactly half, 3 on 1/4
		{},                                // empty sequence
		{{4, 4}, {5, 6}, {5, 6}},          // 4 listed twice at one position: 1/3
	}
	tests := []struct {
		name     string
		fraction float64
		want     [][]int32
	}{
		{"paper threshold", DefaultTopicFraction, [][]int32{{1}, nil, {5, 6}}},
		{"above 0.6", 0.6, [][]int32{{1}, nil, {5, 6}}},
		{"above 0.7", 0.7, [][]int32{{1}, nil, nil}},
		{"any activity", 0, [][]int32{{1, 2, 3}, nil, {4, 5, 6}}},
		{"above a third", 1.0 / 3, [][]int32{{1, 2}, nil, {5, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, TopicCodes(ids, tt.fraction))
		})
	}
	require.Empty(t, TopicCodes(nil, 0.5))
}
