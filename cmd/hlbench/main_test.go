package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInRoundOrder(t *testing.T) {
	cases := []string{"codebook", "vanilla", "codebook-ref"}
	for _, tc := range []struct {
		round int
		want  []string
	}{
		{0, []string{"codebook", "vanilla", "codebook-ref"}},
		{1, []string{"codebook-ref", "vanilla", "codebook"}},
		{2, []string{"codebook", "vanilla", "codebook-ref"}},
		{3, []string{"codebook-ref", "vanilla", "codebook"}},
	} {
		require.Equal(t, tc.want, inRoundOrder(cases, tc.round), "round %d", tc.round)
	}
	require.Equal(t, []string{"codebook", "vanilla", "codebook-ref"}, cases, "the list itself is left alone")
	require.Empty(t, inRoundOrder([]int{}, 1))
}
