// Package checkpoint saves and restores training state: model weights in the
// safetensors format (readable by PyTorch and Hugging Face tools), optimizer
// state beside them, and the step and RNG state as JSON. Every file is written
// atomically, and a checkpoint becomes visible only once complete.
package checkpoint

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/hiddenlab/hiddenlab/torch"
)

// safetensors dtype names.
var dtypeNames = map[torch.DType]string{
	torch.Float64: "F64", torch.Float32: "F32", torch.Float16: "F16", torch.BFloat16: "BF16",
	torch.Int64: "I64", torch.Int32: "I32", torch.Int16: "I16", torch.Int8: "I8",
	torch.Uint8: "U8", torch.Bool: "BOOL",
}

func parseDType(s string) (torch.DType, bool) {
	for d, n := range dtypeNames {
		if n == s {
			return d, true
		}
	}
	return 0, false
}

type entry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors to path in the safetensors format: an
// 8-byte little-endian header length, a JSON header (names sorted, padded to
// 8 bytes), then the raw little-endian data. The write is atomic.
func WriteSafetensors(path string, tensors map[string]*torch.Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	stream := make([]StreamTensor, len(names))
	for i, n := range names {
		t := tensors[n]
		var blob []byte
		if err := torch.Try(func() {
			if _, ok := dtypeNames[t.DType()]; !ok {
				panic(&torch.Error{Op: "safetensors", Kind: torch.KindDType, Msg: "unsupported dtype " + t.DType().String()})
			}
			blob = t.Bytes()
			stream[i] = StreamTensor{Name: n, DType: t.DType(), Shape: append([]int{}, t.Shape()...)}
		}); err != nil {
			return fmt.Errorf("write %s: tensor %s: %w", path, n, err)
		}
		stream[i].Write = func(w io.Writer) error {
			_, err := w.Write(blob)
			return err
		}
	}
	return WriteSafetensorsStream(path, stream, metadata)
}

// File is a loaded safetensors file. Its tensors are owned by the caller
// (Close frees them).
type File struct {
	Tensors  map[string]*torch.Tensor
	Metadata map[string]string
}

// Close frees the tensors.
func (f *File) Close() {
	for _, t := range f.Tensors {
		t.Free()
	}
}

// ReadSafetensors loads every tensor of a safetensors file onto the CPU,
// validating the header against the file: a truncated or inconsistent file is
// an error naming the file and the tensor.
func ReadSafetensors(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, bad("file too short (%d bytes) for the 8-byte header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > uint64(len(data)-8) {
		return nil, bad("header length %d exceeds the file (%d bytes): truncated or not safetensors", hlen, len(data))
	}
	infos, meta, err := parseHeader(path, data[8:8+hlen], int64(len(data))-8-int64(hlen))
	if err != nil {
		return nil, err
	}
	body := data[8+hlen:]
	f := &File{Tensors: map[string]*torch.Tensor{}, Metadata: meta}
	for _, ti := range infos {
		var t *torch.Tensor
		torch.WithScope(func() {
			t = torch.FromBytes(body[ti.Begin:ti.End], ti.DType, ti.Shape).Retain()
		})
		f.Tensors[ti.Name] = t
	}
	return f, nil
}
