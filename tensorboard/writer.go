// Package tensorboard writes TensorBoard event files: scalars, Markdown text
// and histograms that `tensorboard --logdir` shows next to a run's own
// metrics.jsonl and plots.
//
// A [Writer] appends to one file, events.out.tfevents.<unix time>.<host>, in
// a directory. The file is a sequence of TFRecords (a little-endian uint64
// length, the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C
// of the data), each holding one Event protocol buffer; the first event
// gives the file version, "brain.Event:2". The messages are encoded by hand:
// no generated code and no protobuf dependency.
//
// Events are buffered and written with a sync to disk every
// [DefaultFlushEvents] events, after [DefaultFlushInterval], on Flush and
// on Close. The file is only ever appended to, one whole record at a time,
// so a crash loses at most the events since the last flush: what is on disk
// is a run of complete records, possibly followed by one cut short, which
// TensorBoard's reader stops at.
package tensorboard

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for how often buffered events reach the disk.
const (
	DefaultFlushEvents   = 100
	DefaultFlushInterval = 10 * time.Second
)

// ErrClosed is returned by a Writer's methods after Close.
var ErrClosed = errors.New("tensorboard: writer is closed")

// Writer appends events to one event file. Its methods are safe for
// concurrent use. After a write to the file fails, every later call returns
// that error.
type Writer struct {
	mu            sync.Mutex
	f             *os.File
	buf           *bufio.Writer
	path          string
	pending       int // events buffered since the last flush
	lastFlush     time.Time
	flushEvents   int
	flushInterval time.Duration
	err           error // sticky write error
	closed        bool
}

// Option configures a Writer.
type Option func(*Writer)

// FlushEvery makes the writer flush once n events are buffered (n <= 1
// flushes after every event).
func FlushEvery(n int) Option { return func(w *Writer) { w.flushEvents = max(n, 1) } }

// FlushInterval makes the writer flush on the first event written d or
// more after the last flush (d <= 0: never on time alone). There is no
// background timer: an idle writer holds its buffer until the next event,
// Flush or Close.
func FlushInterval(d time.Duration) Option { return func(w *Writer) { w.flushInterval = d } }

// NewWriter creates dir if needed and a new event file in it, named
// events.out.tfevents.<unix seconds>.<host name>, with ".<pid>.<n>" added if
// that name is taken, and writes the file-version event to disk.
func NewWriter(dir string, opts ...Option) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	now := time.Now()
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r < ' ' {
			return '_'
		}
		return r
	}, host)
	base := fmt.Sprintf("events.out.tfevents.%010d.%s", now.Unix(), host)
	name := base
	var f *os.File
	for n := 0; ; n++ {
		if n > 0 {
			name = fmt.Sprintf("%s.%d.%d", base, os.Getpid(), n)
		}
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || n >= 1000 {
			return nil, fmt.Errorf("tensorboard: %w", err)
		}
	}
	w := &Writer{
		f:             f,
		buf:           bufio.NewWriterSize(f, 64<<10),
		path:          f.Name(),
		lastFlush:     now,
		flushEvents:   DefaultFlushEvents,
		flushInterval: DefaultFlushInterval,
	}
	for _, o := range opts {
		o(w)
	}
	w.buf.Write(appendRecord(nil, event(now, 0, fileVersion, nil)))
	if err := w.flushLocked(); err != nil {
		f.Close()
		os.Remove(w.path)
		return nil, err
	}
	// Make the new directory entry durable too.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return w, nil
}

// Path returns the event file's path.
func (w *Writer) Path() string { return w.path }

// Scalar writes one scalar. NaN and ±Inf are written as they are
// (TensorBoard shows them); the value is stored as a float32, as
// TensorBoard's scalars are. A zero wall time means now.
func (w *Writer) Scalar(tag string, step int64, v float64, wall time.Time) error {
	if tag == "" {
		return errors.New("tensorboard: scalar with an empty tag")
	}
	return w.write(wall, step, scalarValue(tag, v))
}

// Scalars writes the named scalars of one step as one event, in order of
// their names, e.g. a step's logs under tags "train/loss", "train/lr". A
// zero wall time means now. Empty maps write nothing.
func (w *Writer) Scalars(step int64, values map[string]float64, wall time.Time) error {
	if len(values) == 0 {
		return w.check()
	}
	tags := slices.Sorted(maps.Keys(values))
	vals := make([][]byte, len(tags))
	for i, tag := range tags {
		if tag == "" {
			return errors.New("tensorboard: scalar with an empty tag")
		}
		vals[i] = scalarValue(tag, values[tag])
	}
	return w.write(wall, step, vals...)
}

// Text writes text for TensorBoard's Text dashboard, which renders it as
// Markdown; put a resolved recipe inside a ``` fence to keep its layout. A
// zero wall time means now.
func (w *Writer) Text(tag string, step int64, text string, wall time.Time) error {
	if tag == "" {
		return errors.New("tensorboard: text with an empty tag")
	}
	return w.write(wall, step, textValue(tag, text))
}

// Histogram writes a histogram of values for TensorBoard's Histograms and
// Distributions dashboards, in [DefaultBuckets] buckets of equal width
// (see [HistogramOf]; NaN and ±Inf values are left out). A zero wall time
// means now.
func (w *Writer) Histogram(tag string, step int64, values []float64, wall time.Time) error {
	h, err := HistogramOf(values, DefaultBuckets)
	if err != nil {
		return fmt.Errorf("tensorboard: %s: %w", tag, err)
	}
	return w.HistogramProto(tag, step, h, wall)
}

// HistogramCounts writes a histogram of values already counted into
// buckets: counts[i] lie between edges[i] and edges[i+1] (see
// [HistogramOfCounts]). A zero wall time means now.
func (w *Writer) HistogramCounts(tag string, step int64, edges, counts []float64, wall time.Time) error {
	h, err := HistogramOfCounts(edges, counts)
	if err != nil {
		return fmt.Errorf("tensorboard: %s: %w", tag, err)
	}
	return w.HistogramProto(tag, step, h, wall)
}

// HistogramProto writes h as it is. A zero wall time means now. It is an
// error if h has no buckets or len(h.BucketLimit) != len(h.Bucket).
func (w *Writer) HistogramProto(tag string, step int64, h Histogram, wall time.Time) error {
	switch {
	case tag == "":
		return errors.New("tensorboard: histogram with an empty tag")
	case len(h.Bucket) == 0 || len(h.Bucket) != len(h.BucketLimit):
		return fmt.Errorf("tensorboard: %s: histogram with %d buckets and %d limits", tag, len(h.Bucket), len(h.BucketLimit))
	}
	return w.write(wall, step, h.value(tag))
}

// Flush writes the buffered events to the file and syncs it to disk.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkLocked(); err != nil {
		return err
	}
	return w.flushLocked()
}

// Close flushes, syncs and closes the file. Closing twice returns
// ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.flushLocked()
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard: %w", cerr)
	}
	return err
}

func (w *Writer) check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checkLocked()
}

func (w *Writer) checkLocked() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// write buffers one event holding a summary of the given values, and
// flushes if it is time to.
func (w *Writer) write(wall time.Time, step int64, values ...[]byte) error {
	now := time.Now()
	if wall.IsZero() {
		wall = now
	}
	var summary []byte
	for _, v := range values {
		summary = appendBytes(summary, summaryValue, v)
	}
	rec := appendRecord(nil, event(wall, step, "", summary))

	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkLocked(); err != nil {
		return err
	}
	// A whole record goes to the buffer; if the buffer must spill first,
	// bufio writes its earlier (whole) records before this one.
	if _, err := w.buf.Write(rec); err != nil {
		w.err = fmt.Errorf("tensorboard: write %s: %w", w.path, err)
		return w.err
	}
	w.pending++
	if w.pending >= w.flushEvents || w.flushInterval > 0 && now.Sub(w.lastFlush) >= w.flushInterval {
		return w.flushLocked()
	}
	return nil
}

func (w *Writer) flushLocked() error {
	if err := w.buf.Flush(); err != nil {
		w.err = fmt.Errorf("tensorboard: write %s: %w", w.path, err)
		return w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("tensorboard: sync %s: %w", w.path, err)
		return w.err
	}
	w.pending = 0
	w.lastFlush = time.Now()
	return nil
}
