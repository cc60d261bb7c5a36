package tensorboard

// An event-file reader written from the format's description, for the
// tests: it shares no code with the writer (its CRC-32C is computed bit by
// bit, its protobuf parser is its own).

import (
	"errors"
	"fmt"
	"math"
	"os"
)

// crc32cBitwise is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78,
// initial value and final XOR 0xFFFFFFFF), one bit at a time.
func crc32cBitwise(data []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range data {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func maskCRC(c uint32) uint32 { return (c>>15 | c<<17) + 0xa282ead8 }

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

var errCRC = errors.New("CRC mismatch")

// readRecords splits an event file into its records' data, checking both
// CRCs of every record.
func readRecords(file []byte) ([][]byte, error) {
	var recs [][]byte
	for off := 0; off < len(file); {
		if len(file)-off < 12 {
			return recs, fmt.Errorf("record at %d: truncated header", off)
		}
		header := file[off : off+8]
		if got, want := le32(file[off+8:]), maskCRC(crc32cBitwise(header)); got != want {
			return recs, fmt.Errorf("record at %d: length: %w", off, errCRC)
		}
		n := le64(header)
		if n > uint64(len(file)-off-16) {
			return recs, fmt.Errorf("record at %d: truncated data", off)
		}
		data := file[off+12 : off+12+int(n)]
		if got, want := le32(file[off+12+int(n):]), maskCRC(crc32cBitwise(data)); got != want {
			return recs, fmt.Errorf("record at %d: data: %w", off, errCRC)
		}
		recs = append(recs, data)
		off += 16 + int(n)
	}
	return recs, nil
}

// field is one protobuf field: its number, wire type and payload (the
// varint, the fixed bits, or the bytes).
type field struct {
	num, wire int
	u         uint64
	b         []byte
}

func parseVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad varint")
}

// parseMessage splits an encoded message into its fields.
func parseMessage(b []byte) ([]field, error) {
	var fs []field
	for len(b) > 0 {
		key, n, err := parseVarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			f.u, n, err = parseVarint(b)
			if err != nil {
				return nil, err
			}
		case 1:
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			f.u, n = le64(b), 8
		case 5:
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			f.u, n = uint64(le32(b)), 4
		case 2:
			l, m, err := parseVarint(b)
			if err != nil {
				return nil, err
			}
			if l > uint64(len(b)-m) {
				return nil, errors.New("short bytes")
			}
			f.b, n = b[m:m+int(l)], m+int(l)
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		fs = append(fs, f)
		b = b[n:]
	}
	return fs, nil
}

// decodedValue is a Summary.Value as the tests compare it.
type decodedValue struct {
	Tag        string
	Kind       string // "scalar", "text", "histo"
	Scalar     float32
	Plugin     string
	DataClass  int
	Dtype      int
	Dims       int
	Text       []string
	Histo      Histogram
	HistoCount int // fields seen in the HistogramProto
}

type decodedEvent struct {
	Wall        float64
	Step        int64
	FileVersion string
	Values      []decodedValue
}

func doubles(packed []byte) []float64 {
	var vs []float64
	for i := 0; i+8 <= len(packed); i += 8 {
		vs = append(vs, math.Float64frombits(le64(packed[i:])))
	}
	return vs
}

func decodeValue(b []byte) (decodedValue, error) {
	var v decodedValue
	fs, err := parseMessage(b)
	if err != nil {
		return v, err
	}
	for _, f := range fs {
		switch f.num {
		case 1:
			v.Tag = string(f.b)
		case 2:
			v.Kind, v.Scalar = "scalar", math.Float32frombits(uint32(f.u))
		case 5:
			v.Kind = "histo"
			hf, err := parseMessage(f.b)
			if err != nil {
				return v, err
			}
			for _, h := range hf {
				v.HistoCount++
				x := math.Float64frombits(h.u)
				switch h.num {
				case 1:
					v.Histo.Min = x
				case 2:
					v.Histo.Max = x
				case 3:
					v.Histo.Num = x
				case 4:
					v.Histo.Sum = x
				case 5:
					v.Histo.SumSquares = x
				case 6:
					v.Histo.BucketLimit = append(v.Histo.BucketLimit, doubles(h.b)...)
				case 7:
					v.Histo.Bucket = append(v.Histo.Bucket, doubles(h.b)...)
				}
			}
		case 8:
			v.Kind = "text"
			tf, err := parseMessage(f.b)
			if err != nil {
				return v, err
			}
			for _, t := range tf {
				switch t.num {
				case 1:
					v.Dtype = int(t.u)
				case 2:
					shape, err := parseMessage(t.b)
					if err != nil {
						return v, err
					}
					for _, d := range shape {
						if d.num == 2 {
							v.Dims++
						}
					}
				case 8:
					v.Text = append(v.Text, string(t.b))
				}
			}
		case 9:
			mf, err := parseMessage(f.b)
			if err != nil {
				return v, err
			}
			for _, m := range mf {
				switch m.num {
				case 1:
					pf, err := parseMessage(m.b)
					if err != nil {
						return v, err
					}
					for _, p := range pf {
						if p.num == 1 {
							v.Plugin = string(p.b)
						}
					}
				case 4:
					v.DataClass = int(m.u)
				}
			}
		}
	}
	return v, nil
}

func decodeEvent(b []byte) (decodedEvent, error) {
	var e decodedEvent
	fs, err := parseMessage(b)
	if err != nil {
		return e, err
	}
	for _, f := range fs {
		switch f.num {
		case 1:
			e.Wall = math.Float64frombits(f.u)
		case 2:
			e.Step = int64(f.u)
		case 3:
			e.FileVersion = string(f.b)
		case 5:
			sf, err := parseMessage(f.b)
			if err != nil {
				return e, err
			}
			for _, s := range sf {
				if s.num != 1 {
					continue
				}
				v, err := decodeValue(s.b)
				if err != nil {
					return e, err
				}
				e.Values = append(e.Values, v)
			}
		}
	}
	return e, nil
}

// readEventFile decodes every event of the file at path.
func readEventFile(path string) ([]decodedEvent, error) {
	file, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := readRecords(file)
	if err != nil {
		return nil, err
	}
	var evs []decodedEvent
	for i, r := range recs {
		e, err := decodeEvent(r)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		evs = append(evs, e)
	}
	return evs, nil
}
