package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
	"github.com/hiddenlab/hiddenlab/torch"
)

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	Name  string
	DType torch.DType
	Shape []int
	// Begin and End delimit the tensor's bytes in the data section.
	Begin, End int64
}

// Numel is the number of elements.
func (ti TensorInfo) Numel() int64 {
	n := int64(1)
	for _, s := range ti.Shape {
		n *= int64(s)
	}
	return n
}

// maxHeader bounds the JSON header (the format's own limit is 100 MB).
const maxHeader = 100 << 20

// parseHeader validates a safetensors header against a data section of
// dataLen bytes and returns its tensors (sorted by name) and metadata.
func parseHeader(path string, header []byte, dataLen int64) ([]TensorInfo, map[string]string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(header))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, bad("header: %v", err)
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	meta := map[string]string{}
	var infos []TensorInfo
	for _, name := range names {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw[name], &meta); err != nil {
				return nil, nil, bad("__metadata__: %v", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, nil, bad("tensor %s: %v", name, err)
		}
		dt, ok := parseDType(e.DType)
		if !ok {
			return nil, nil, bad("tensor %s: unsupported dtype %q", name, e.DType)
		}
		numel := int64(1)
		for _, s := range e.Shape {
			if s < 0 {
				return nil, nil, bad("tensor %s: negative size in shape %v", name, e.Shape)
			}
			numel *= int64(s)
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > dataLen {
			return nil, nil, bad("tensor %s: data offsets [%d, %d) outside the %d data bytes (truncated?)", name, begin, end, dataLen)
		}
		if want := numel * int64(dt.Size()); end-begin != want {
			return nil, nil, bad("tensor %s: %d data bytes, shape %v of %s needs %d", name, end-begin, e.Shape, e.DType, want)
		}
		infos = append(infos, TensorInfo{Name: name, DType: dt, Shape: append([]int{}, e.Shape...), Begin: begin, End: end})
	}
	return infos, meta, nil
}

// Reader reads the tensors of a safetensors file one at a time, so that a
// model loads without the whole file in memory: only the header is read on
// open, and CopyTo streams a tensor through a bounded buffer.
type Reader struct {
	Path     string
	Metadata map[string]string
	f        *os.File
	data     int64 // file offset of the data section
	infos    map[string]TensorInfo
	names    []string
	buf      []byte
}

// readChunk is the most bytes CopyTo reads at once (a variable for tests).
var readChunk int64 = 16 << 20

// OpenSafetensors opens path and validates its header against the file's
// size: a truncated file or header is an error naming the file and, where one
// is to blame, the tensor.
func OpenSafetensors(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := openReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func openReader(path string, f *os.File) (*Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: file too short (%d bytes) for the 8-byte header length", path, size)
	}
	var n [8]byte
	if _, err := f.ReadAt(n[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen > uint64(size-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the file (%d bytes): truncated or not safetensors", path, hlen, size)
	}
	if hlen > maxHeader {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the format's limit of %d bytes", path, hlen, maxHeader)
	}
	header := make([]byte, hlen)
	if _, err := f.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("safetensors %s: header: %w", path, err)
	}
	infos, meta, err := parseHeader(path, header, size-8-int64(hlen))
	if err != nil {
		return nil, err
	}
	r := &Reader{Path: path, Metadata: meta, f: f, data: 8 + int64(hlen), infos: map[string]TensorInfo{}}
	for _, ti := range infos {
		r.infos[ti.Name] = ti
		r.names = append(r.names, ti.Name)
	}
	return r, nil
}

// Names lists the tensors, sorted.
func (r *Reader) Names() []string { return r.names }

// Info describes the tensor name.
func (r *Reader) Info(name string) (TensorInfo, bool) {
	ti, ok := r.infos[name]
	return ti, ok
}

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }

func (r *Reader) info(name string) (TensorInfo, error) {
	ti, ok := r.infos[name]
	if !ok {
		return ti, fmt.Errorf("safetensors %s: no tensor %s", r.Path, name)
	}
	return ti, nil
}

// Read loads the tensor name onto the CPU in the file's dtype (the caller
// owns it, as with any new tensor).
func (r *Reader) Read(name string) (*torch.Tensor, error) {
	ti, err := r.info(name)
	if err != nil {
		return nil, err
	}
	data := make([]byte, ti.End-ti.Begin)
	if err := r.readAt(data, ti.Begin, name); err != nil {
		return nil, err
	}
	var t *torch.Tensor
	err = torch.Try(func() { t = torch.FromBytes(data, ti.DType, ti.Shape) })
	return t, err
}

// CopyTo copies the tensor name into dst, converting the dtype (and device)
// as needed. dst may be any view with the tensor's number of elements: the
// file's row-major data is taken in dst's shape, which lets a caller read
// into a transposed or permuted view of a parameter. The data streams through
// a buffer of at most 16 MiB; dst must not record gradients (use a
// detached view, or NoGrad).
func (r *Reader) CopyTo(name string, dst *torch.Tensor) error {
	ti, err := r.info(name)
	if err != nil {
		return err
	}
	var numel int64
	if err := torch.Try(func() { numel = int64(dst.Numel()) }); err != nil {
		return fmt.Errorf("safetensors %s: tensor %s: %w", r.Path, name, err)
	}
	if numel != ti.Numel() {
		return fmt.Errorf("safetensors %s: tensor %s has %d elements %v, the destination %d", r.Path, name, ti.Numel(), ti.Shape, numel)
	}
	var ioErr error
	terr := torch.Try(func() { ioErr = r.copyInto(dst, ti, ti.Begin) })
	if ioErr != nil {
		return ioErr
	}
	if terr != nil {
		return fmt.Errorf("safetensors %s: tensor %s: %w", r.Path, ti.Name, terr)
	}
	return nil
}

// copyInto fills dst from the data at off, in pieces of at most readChunk
// bytes: whole dst, runs of rows along dim 0, or row by row recursively.
func (r *Reader) copyInto(dst *torch.Tensor, ti TensorInfo, off int64) error {
	shape := dst.Shape()
	size := int64(ti.DType.Size())
	for _, s := range shape {
		size *= int64(s)
	}
	if size <= readChunk || len(shape) == 0 || shape[0] == 0 {
		return r.copyChunk(dst, ti, off, size)
	}
	rowBytes := size / int64(shape[0])
	if rowBytes > readChunk && len(shape) > 1 {
		for i := 0; i < shape[0]; i++ {
			var err error
			torch.WithScope(func() { err = r.copyInto(dst.Select(0, i), ti, off+int64(i)*rowBytes) })
			if err != nil {
				return err
			}
		}
		return nil
	}
	per := max(1, int(readChunk/rowBytes))
	for i := 0; i < shape[0]; i += per {
		n := min(per, shape[0]-i)
		var err error
		torch.WithScope(func() { err = r.copyChunk(dst.Narrow(0, i, n), ti, off+int64(i)*rowBytes, int64(n)*rowBytes) })
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) copyChunk(dst *torch.Tensor, ti TensorInfo, off, n int64) error {
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	buf := r.buf[:n]
	if err := r.readAt(buf, off, ti.Name); err != nil {
		return err
	}
	torch.WithScope(func() { dst.CopyFrom(torch.FromBytes(buf, ti.DType, dst.Shape())) })
	return nil
}

func (r *Reader) readAt(buf []byte, off int64, name string) error {
	_, err := r.f.ReadAt(buf, r.data+off)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("safetensors %s: tensor %s: file ends inside its data (truncated)", r.Path, name)
	}
	if err != nil {
		return fmt.Errorf("safetensors %s: tensor %s: %w", r.Path, name, err)
	}
	return nil
}

// StreamTensor is one tensor for WriteSafetensorsStream: its name, dtype and
// shape, and a function that writes exactly its bytes (little-endian,
// row-major).
type StreamTensor struct {
	Name  string
	DType torch.DType
	Shape []int
	Write func(w io.Writer) error
}

// WriteSafetensorsStream writes tensors to path in the safetensors format
// (names sorted), asking each for its bytes only when its turn comes, so that
// at most one tensor's bytes need be in memory. The write is atomic; a tensor
// that writes the wrong number of bytes is an error naming it.
func WriteSafetensorsStream(path string, tensors []StreamTensor, metadata map[string]string) error {
	ts := append([]StreamTensor{}, tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var offset int64
	sizes := make([]int64, len(ts))
	for i, t := range ts {
		if i > 0 && ts[i-1].Name == t.Name {
			return fmt.Errorf("write %s: tensor %s given twice", path, t.Name)
		}
		dt, ok := dtypeNames[t.DType]
		if !ok {
			return fmt.Errorf("write %s: tensor %s: unsupported dtype %v", path, t.Name, t.DType)
		}
		n := int64(t.DType.Size())
		for _, s := range t.Shape {
			n *= int64(s)
		}
		sizes[i] = n
		header[t.Name] = entry{DType: dt, Shape: append([]int{}, t.Shape...), Offsets: [2]int64{offset, offset + n}}
		offset += n
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
		for i, t := range ts {
			cw := &countWriter{w: w}
			if err := t.Write(cw); err != nil {
				return fmt.Errorf("tensor %s: %w", t.Name, err)
			}
			if cw.n != sizes[i] {
				return fmt.Errorf("tensor %s: wrote %d bytes, shape %v of %v needs %d", t.Name, cw.n, t.Shape, t.DType, sizes[i])
			}
		}
		return nil
	})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
