package text

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A mapped token file holds what ReadTokens reads, and its Batcher serves
// the batches of a Batcher over the same ids, for both id widths.
func TestMappedTokens(t *testing.T) {
	for _, c := range []struct {
		name  string
		vocab int
		n     int
		dtype string
	}{
		{"uint16", 4096, 5000, "uint16"},
		{"uint16 full", 65536, 3000, "uint16"},
		{"uint32", 151936, 3000, "uint32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(c.vocab)))
			ids := make([]int32, c.n)
			for i := range ids {
				ids[i] = int32(r.IntN(c.vocab))
			}
			ids[0] = int32(c.vocab - 1)
			path := filepath.Join(t.TempDir(), "c.bin")
			require.NoError(t, WriteTokens(path, ids, c.vocab))
			require.Equal(t, c.dtype, DTypeFor(c.vocab))
			m, err := OpenTokens(path)
			require.NoError(t, err)
			defer m.Close()
			require.Equal(t, c.n, m.Len())
			require.Equal(t, c.vocab, m.VocabSize())
			require.Equal(t, ids, m.Slice(0, m.Len()))
			for _, rng := range [][2]int{{0, c.n}, {100, c.n - 7}} {
				want, err := NewBatcher(ids[rng[0]:rng[1]], 5, 17, 9)
				require.NoError(t, err)
				got, err := NewMappedBatcher(m, rng[0], rng[1], 5, 17, 9)
				require.NoError(t, err)
				for step := range 4 {
					wx, wy := want.Batch(step)
					gx, gy := got.Batch(step)
					require.Equal(t, wx, gx)
					require.Equal(t, wy, gy)
				}
			}
			_, err = NewMappedBatcher(m, 0, c.n+1, 5, 17, 9)
			require.ErrorContains(t, err, "outside the")
			_, err = NewMappedBatcher(m, 0, 10, 5, 17, 9)
			require.ErrorContains(t, err, "want at least context+1")
		})
	}
}

// Damaged token files are refused with the file and what is wrong.
func TestOpenTokensErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.bin")
	require.NoError(t, WriteTokens(good, []int32{1, 2, 3, 4}, 10))
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	outside := append([]byte{}, b...)
	outside[len(outside)-2] = 11 // the last id: 11 ≥ vocab 10
	badMagic := append([]byte{}, b...)
	badMagic[0] = 'X'
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", b[:10], "header: 10 bytes"},
		{"magic", badMagic, "not a token file"},
		{"truncated", b[:len(b)-1], "truncated or trailing data"},
		{"trailing", append(append([]byte{}, b...), 0), "truncated or trailing data"},
		{"id outside", outside, "ids[3] = 11, outside the vocabulary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".bin")
			require.NoError(t, os.WriteFile(p, c.data, 0o644))
			_, err := OpenTokens(p)
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, err, p)
		})
	}
	_, err = OpenTokens(filepath.Join(dir, "missing.bin"))
	require.Error(t, err)
	require.True(t, IsTokenFile("a/b.BIN"))
	require.False(t, IsTokenFile("a/b.txt"))
}
