package text

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokensRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		ids   []int32
		vocab int
		width int
	}{
		{"empty", []int32{}, 257, 2},
		{"byte", []int32{0, 1, 255, 256, 97}, 257, 2},
		{"uint16 max", []int32{0, 65535, 4095}, 65536, 2},
		{"just over uint16", []int32{65536, 0}, 65537, 4},
		{"uint32", []int32{0, 65536, 99999, 70000}, 100000, 4},
		{"uint32 max", []int32{2147483647, 0}, MaxVocabSize, 4},
		{"long", seq(200_000, 4096), 4096, 2}, // more than one read buffer
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".tok")
			require.NoError(t, WriteTokens(path, tc.ids, tc.vocab))
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, int64(24+len(tc.ids)*tc.width), st.Size())
			ids, vocab, err := ReadTokens(path)
			require.NoError(t, err)
			require.Equal(t, tc.vocab, vocab)
			require.Equal(t, tc.ids, ids)
		})
	}
}

// seq returns n ids cycling through [0, vocab).
func seq(n, vocab int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i*7919) % int32(vocab)
	}
	return ids
}

func TestTokensFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tok")
	require.NoError(t, WriteTokens(path, []int32{1, 258}, 300))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	want := []byte{
		'H', 'L', 'T', 'O', 'K', '1', 2, 0,
		2, 0, 0, 0, 0, 0, 0, 0, // count
		44, 1, 0, 0, 0, 0, 0, 0, // vocab 300, reserved
		1, 0, 2, 1, // 1, 258
	}
	require.Equal(t, want, b)
}

func TestWriteTokensErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tok")
	require.EqualError(t, WriteTokens(path, []int32{1, 2, 300}, 300),
		"tokens "+path+": ids[2] = 300, outside the vocabulary [0, 300)")
	require.EqualError(t, WriteTokens(path, []int32{-1}, 300),
		"tokens "+path+": ids[0] = -1, outside the vocabulary [0, 300)")
	require.ErrorContains(t, WriteTokens(path, nil, 0), "vocab size 0, want 1..2147483648")
	_, err := os.Stat(path)
	require.True(t, os.IsNotExist(err), "a failed write leaves no file")
}

func TestReadTokensErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tok")
	require.NoError(t, WriteTokens(good, []int32{1, 2, 3}, 257))
	valid, err := os.ReadFile(good)
	require.NoError(t, err)

	// edit returns a copy of the valid file changed by f.
	edit := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), valid...))
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header: 0 bytes, want 24"},
		{"short header", valid[:10], "header: 10 bytes, want 24"},
		{"magic", edit(func(b []byte) []byte { b[5] = '2'; return b }), `magic "HLTOK2", want "HLTOK1" (not a token file)`},
		{"text file", []byte("First Citizen:\nBefore we proceed any further"), `magic "First ", want "HLTOK1"`},
		{"width", edit(func(b []byte) []byte { b[6] = 3; return b }), "id width 3 bytes, want 2 or 4"},
		{"width for vocab", edit(func(b []byte) []byte { b[6] = 4; return b }), "id width 4 bytes for vocab size 257, want 2"},
		{"reserved", edit(func(b []byte) []byte { b[21] = 1; return b }), "reserved header bytes are not zero"},
		{"vocab zero", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], 0); return b }), "vocab size 0, want 1.."},
		{"truncated", valid[:len(valid)-1], "5 bytes of ids, want 3 ids x 2 bytes (truncated or trailing data)"},
		{"trailing", append(append([]byte(nil), valid...), 0, 0), "8 bytes of ids, want 3 ids x 2 bytes"},
		{"huge count", edit(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:], 1<<62); return b }), "want 4611686018427387904 ids x 2 bytes"},
		{"id out of range", edit(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[26:], 257); return b }), "ids[1] = 257, outside the vocabulary [0, 257)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".tok")
			require.NoError(t, os.WriteFile(path, tc.data, 0o644))
			_, _, err := ReadTokens(path)
			require.ErrorContains(t, err, "tokens "+path+": ")
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, _, err = ReadTokens(filepath.Join(dir, "missing.tok"))
	require.ErrorContains(t, err, "missing.tok: open: no such file or directory")
}
