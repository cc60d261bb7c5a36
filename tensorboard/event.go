package tensorboard

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Field numbers, from TensorFlow's event.proto, summary.proto, tensor.proto
// and types.proto (as kept in tensorboard/compat/proto).
const (
	// Event
	eventWallTime    = 1 // double, seconds since the Unix epoch
	eventStep        = 2 // int64
	eventFileVersion = 3 // string
	eventSummary     = 5 // Summary

	// Summary
	summaryValue = 1 // repeated Summary.Value

	// Summary.Value
	valueTag         = 1 // string
	valueSimpleValue = 2 // float
	valueHisto       = 5 // HistogramProto
	valueTensor      = 8 // TensorProto
	valueMetadata    = 9 // SummaryMetadata

	// SummaryMetadata
	metadataPluginData = 1 // SummaryMetadata.PluginData
	metadataDataClass  = 4 // DataClass enum
	// SummaryMetadata.PluginData
	pluginName = 1 // string

	// TensorProto
	tensorDtype     = 1 // DataType enum
	tensorStringVal = 8 // repeated bytes

	// HistogramProto
	histoMin         = 1 // double
	histoMax         = 2 // double
	histoNum         = 3 // double
	histoSum         = 4 // double
	histoSumSquares  = 5 // double
	histoBucketLimit = 6 // repeated double, packed
	histoBucket      = 7 // repeated double, packed
)

const (
	dtString        = 7 // DataType DT_STRING
	dataClassTensor = 2 // DataClass DATA_CLASS_TENSOR
	// fileVersion is the content of every event file's first event.
	fileVersion = "brain.Event:2"
	// textPlugin is the plugin name TensorBoard's text dashboard reads.
	textPlugin = "text"
)

// event encodes an Event. Exactly one of fileVer and summary is set.
func event(wall time.Time, step int64, fileVer string, summary []byte) []byte {
	var b []byte
	if t := wallSeconds(wall); t != 0 {
		b = appendDouble(b, eventWallTime, t)
	}
	if step != 0 {
		b = appendInt64(b, eventStep, step)
	}
	if fileVer != "" {
		b = appendString(b, eventFileVersion, fileVer)
	}
	if summary != nil {
		b = appendBytes(b, eventSummary, summary)
	}
	return b
}

// wallSeconds is t as seconds since the Unix epoch, with sub-second digits.
func wallSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// scalarValue encodes a Summary.Value holding v as simple_value (a float32;
// NaN and ±Inf are kept). The value is written even when it is zero: it is
// a member of a oneof, so its presence is what marks the value a scalar.
func scalarValue(tag string, v float64) []byte {
	b := appendString(nil, valueTag, tag)
	return appendFloat(b, valueSimpleValue, float32(v))
}

// textValue encodes a Summary.Value the way TensorBoard's text plugin reads
// it: metadata naming the "text" plugin (its content, a TextPluginData of
// version 0, encodes to nothing) with data class TENSOR, and a rank-0
// DT_STRING tensor holding the text, which the plugin renders as Markdown.
func textValue(tag, text string) []byte {
	plugin := appendString(nil, pluginName, textPlugin)
	meta := appendBytes(nil, metadataPluginData, plugin)
	meta = appendInt64(meta, metadataDataClass, dataClassTensor)
	tensor := appendInt64(nil, tensorDtype, dtString)
	tensor = appendString(tensor, tensorStringVal, text)

	b := appendString(nil, valueTag, tag)
	b = appendBytes(b, valueTensor, tensor)
	return appendBytes(b, valueMetadata, meta)
}

// Histogram is a TensorFlow HistogramProto: bucket i counts the values
// between BucketLimit[i-1] (Min for i = 0) and BucketLimit[i]. TensorBoard
// draws each non-empty bucket from its left to its right edge, taking Min as
// the left edge of the first non-empty bucket and Max as the right edge of
// the last one.
type Histogram struct {
	Min, Max, Num, Sum, SumSquares float64
	BucketLimit, Bucket            []float64
}

func (h Histogram) value(tag string) []byte {
	var p []byte
	p = appendDouble(p, histoMin, h.Min)
	p = appendDouble(p, histoMax, h.Max)
	p = appendDouble(p, histoNum, h.Num)
	p = appendDouble(p, histoSum, h.Sum)
	p = appendDouble(p, histoSumSquares, h.SumSquares)
	p = appendPackedDoubles(p, histoBucketLimit, h.BucketLimit)
	p = appendPackedDoubles(p, histoBucket, h.Bucket)
	b := appendString(nil, valueTag, tag)
	return appendBytes(b, valueHisto, p)
}

// DefaultBuckets is the number of buckets [HistogramOf] uses when asked
// for zero, as TensorBoard's own histogram summary does.
const DefaultBuckets = 30

var errNoFinite = errors.New("no finite values")

// HistogramOf bins the finite values of values into buckets buckets of
// equal width spanning their range (zero means [DefaultBuckets]); NaN and
// ±Inf values are left out. When all values are equal there is one bucket.
// It is an error if no value is finite or buckets is negative.
func HistogramOf(values []float64, buckets int) (Histogram, error) {
	if buckets < 0 {
		return Histogram{}, fmt.Errorf("histogram: %d buckets", buckets)
	}
	if buckets == 0 {
		buckets = DefaultBuckets
	}
	h := Histogram{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, v := range values {
		if isFinite(v) {
			h.Min, h.Max = math.Min(h.Min, v), math.Max(h.Max, v)
			h.Num++
			h.Sum += v
			h.SumSquares += v * v
		}
	}
	if h.Num == 0 {
		return Histogram{}, fmt.Errorf("histogram of %d values: %w", len(values), errNoFinite)
	}
	if h.Min == h.Max {
		h.BucketLimit, h.Bucket = []float64{h.Max}, []float64{h.Num}
		return h, nil
	}
	width := (h.Max - h.Min) / float64(buckets)
	h.BucketLimit = make([]float64, buckets)
	h.Bucket = make([]float64, buckets)
	for i := range h.BucketLimit {
		h.BucketLimit[i] = h.Min + float64(i+1)*width
	}
	h.BucketLimit[buckets-1] = h.Max
	for _, v := range values {
		if !isFinite(v) {
			continue
		}
		// The quotient can round across an edge; settle on the bucket
		// whose [left, right) holds v (the last one also holds Max).
		i := min(max(int((v-h.Min)/width), 0), buckets-1)
		if i > 0 && v < h.BucketLimit[i-1] {
			i--
		} else if i < buckets-1 && v >= h.BucketLimit[i] {
			i++
		}
		h.Bucket[i]++
	}
	return h, nil
}

// HistogramOfCounts makes a histogram from counts already binned: counts[i]
// values lie between edges[i] and edges[i+1], e.g. how often each code of a
// codebook was used, with edges 0, 1, …, K. Sum and SumSquares take each
// value at its bucket's middle. Min and Max are the outer edges of the
// non-empty buckets (of all buckets when every count is zero). It is an
// error if len(edges) != len(counts)+1, there are no counts, the edges are
// not finite and increasing, or a count is negative or not finite.
func HistogramOfCounts(edges, counts []float64) (Histogram, error) {
	switch {
	case len(counts) == 0:
		return Histogram{}, errors.New("histogram: no buckets")
	case len(edges) != len(counts)+1:
		return Histogram{}, fmt.Errorf("histogram: %d edges for %d buckets, want %d", len(edges), len(counts), len(counts)+1)
	}
	for i, e := range edges {
		if !isFinite(e) || i > 0 && !(e > edges[i-1]) {
			return Histogram{}, fmt.Errorf("histogram: edges must be finite and increasing, edge %d is %g", i, e)
		}
	}
	first, last := -1, -1
	h := Histogram{}
	for i, c := range counts {
		if !isFinite(c) || c < 0 {
			return Histogram{}, fmt.Errorf("histogram: bucket %d has count %g", i, c)
		}
		if c == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
		mid := (edges[i] + edges[i+1]) / 2
		h.Num += c
		h.Sum += c * mid
		h.SumSquares += c * mid * mid
	}
	if first < 0 {
		first, last = 0, len(counts)-1
	}
	h.Min, h.Max = edges[first], edges[last+1]
	h.BucketLimit = append([]float64(nil), edges[1:]...)
	h.Bucket = append([]float64(nil), counts...)
	return h, nil
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
