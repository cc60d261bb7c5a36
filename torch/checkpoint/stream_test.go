package checkpoint

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
)

// TestReaderCopyTo streams tensors into transposed and permuted views with a
// tiny chunk size, so that every path (whole, runs of rows, row by row) and
// every dtype conversion runs, and compares with a direct conversion.
func TestReaderCopyTo(t *testing.T) {
	defer func(n int64) { readChunk = n }(readChunk)
	s := torch.NewScope()
	defer s.Close()
	path := filepath.Join(t.TempDir(), "w.safetensors")
	src := map[string]*torch.Tensor{
		"vec":  torch.Randn([]int{37}),
		"mat":  torch.Randn([]int{6, 10}).To(torch.BFloat16),
		"cube": torch.Randn([]int{4, 3, 5}).To(torch.Float16),
		"wide": torch.Randn([]int{2, 40}, torch.Float64),
	}
	require.NoError(t, WriteSafetensors(path, src, map[string]string{"format": "pt"}))
	for _, chunk := range []int64{16 << 20, 64, 24, 4} {
		readChunk = chunk
		r, err := OpenSafetensors(path)
		require.NoError(t, err)
		require.Equal(t, []string{"cube", "mat", "vec", "wide"}, r.Names())
		require.Equal(t, "pt", r.Metadata["format"])
		for _, c := range []struct {
			name string
			dst  func() (*torch.Tensor, *torch.Tensor) // destination, and the view written through
		}{
			{"vec", func() (*torch.Tensor, *torch.Tensor) { d := torch.Zeros([]int{37}); return d, d }},
			{"mat", func() (*torch.Tensor, *torch.Tensor) { d := torch.Zeros([]int{10, 6}); return d.T(), d }}, // [6, 10] view
			{"cube", func() (*torch.Tensor, *torch.Tensor) { // [4, 3, 5] view of a [3, 4, 5] tensor
				d := torch.Zeros([]int{3, 4, 5})
				return d.Permute(1, 0, 2), d
			}},
			{"wide", func() (*torch.Tensor, *torch.Tensor) { d := torch.Zeros([]int{80}); return d.View(2, 40), d }},
		} {
			view, _ := c.dst()
			require.NoError(t, r.CopyTo(c.name, view), "chunk %d %s", chunk, c.name)
			want := src[c.name].To(torch.Float32)
			require.Equal(t, 0.0, view.Sub(want).Abs().Amax().Item(), "chunk %d %s", chunk, c.name)
			whole, err := r.Read(c.name)
			require.NoError(t, err)
			require.Equal(t, src[c.name].DType(), whole.DType())
			require.Equal(t, 0.0, whole.To(torch.Float32).Sub(want).Abs().Amax().Item())
		}
		require.ErrorContains(t, r.CopyTo("vec", torch.Zeros([]int{36})), "has 37 elements [37], the destination 36")
		require.ErrorContains(t, r.CopyTo("nope", torch.Zeros([]int{1})), "no tensor nope")
		require.NoError(t, r.Close())
	}
}

// TestWriteStreamChecksSizes: a tensor that writes the wrong number of bytes
// fails the write, naming it.
func TestWriteStreamChecksSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	err := WriteSafetensorsStream(path, []StreamTensor{{Name: "x", DType: torch.Float32, Shape: []int{3},
		Write: func(w io.Writer) error { _, err := w.Write(make([]byte, 8)); return err }}}, nil)
	require.ErrorContains(t, err, "tensor x: wrote 8 bytes, shape [3] of float32 needs 12")
	err = WriteSafetensorsStream(path, []StreamTensor{{Name: "x", DType: torch.Float32, Shape: []int{2},
		Write: func(w io.Writer) error { _, err := io.Copy(w, bytes.NewReader(make([]byte, 8))); return err }}}, nil)
	require.NoError(t, err)
}
