// Package checkpoint saves and restores training state: model weights in the
// safetensors format (readable by PyTorch and Hugging Face tools), optimizer
// state beside them, and the step and RNG state as JSON. Every file is written
// atomically, and a checkpoint becomes visible only once complete.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"hiddenlab/internal/atomicio"
	"hiddenlab/torch"
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
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var offset int64
	blobs := make([][]byte, len(names))
	for i, n := range names {
		t := tensors[n]
		var e entry
		if err := torch.Try(func() {
			dt, ok := dtypeNames[t.DType()]
			if !ok {
				panic(&torch.Error{Op: "safetensors", Kind: torch.KindDType, Msg: "unsupported dtype " + t.DType().String()})
			}
			blobs[i] = t.Bytes()
			e = entry{DType: dt, Shape: append([]int{}, t.Shape()...)}
		}); err != nil {
			return fmt.Errorf("write %s: tensor %s: %w", path, n, err)
		}
		e.Offsets = [2]int64{offset, offset + int64(len(blobs[i]))}
		header[n] = e
		offset += int64(len(blobs[i]))
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	return atomicio.Write(path, 0o644, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(js); err != nil {
			return err
		}
		for _, b := range blobs {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
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
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+hlen]))
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("header: %v", err)
	}
	body := data[8+hlen:]
	f := &File{Tensors: map[string]*torch.Tensor{}, Metadata: map[string]string{}}
	fail := func(err error) (*File, error) {
		f.Close()
		return nil, err
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw[name], &f.Metadata); err != nil {
				return fail(bad("__metadata__: %v", err))
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return fail(bad("tensor %s: %v", name, err))
		}
		dt, ok := parseDType(e.DType)
		if !ok {
			return fail(bad("tensor %s: unsupported dtype %q", name, e.DType))
		}
		numel := int64(1)
		for _, s := range e.Shape {
			if s < 0 {
				return fail(bad("tensor %s: negative size in shape %v", name, e.Shape))
			}
			numel *= int64(s)
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > int64(len(body)) {
			return fail(bad("tensor %s: data offsets [%d, %d) outside the %d data bytes (truncated?)", name, begin, end, len(body)))
		}
		if want := numel * int64(dt.Size()); end-begin != want {
			return fail(bad("tensor %s: %d data bytes, shape %v of %s needs %d", name, end-begin, e.Shape, e.DType, want))
		}
		var t *torch.Tensor
		torch.WithScope(func() {
			t = torch.FromBytes(body[begin:end], dt, e.Shape).Retain()
		})
		f.Tensors[name] = t
	}
	return f, nil
}
