package torch

import (
	"errors"
	"fmt"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// ErrorKind classifies a libtorch failure.
type ErrorKind int

// Kinds, as the shim's hl_error_kind.
const (
	KindOther          ErrorKind = 1
	KindShape          ErrorKind = 2
	KindDType          ErrorKind = 3
	KindDevice         ErrorKind = 4
	KindOutOfMemory    ErrorKind = 5
	KindNoCUDA         ErrorKind = 6
	KindIndex          ErrorKind = 7
	KindValue          ErrorKind = 8
	KindNotImplemented ErrorKind = 9
	KindAutograd       ErrorKind = 10
)

var kindNames = map[ErrorKind]string{
	KindOther: "other", KindShape: "shape", KindDType: "dtype", KindDevice: "device",
	KindOutOfMemory: "out of memory", KindNoCUDA: "not built with CUDA", KindIndex: "index",
	KindValue: "value", KindNotImplemented: "not implemented", KindAutograd: "autograd",
}

func (k ErrorKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a failed tensor operation.
type Error struct {
	Op   string    // the Go-side operation, e.g. "matmul"
	Kind ErrorKind // what went wrong
	Msg  string    // libtorch's message, without its C++ backtrace
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg + " [" + e.Kind.String() + "]" }

// Is matches the kind sentinels: errors.Is(err, torch.ErrShape).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Msg == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrShape       = &Error{Kind: KindShape}
	ErrDType       = &Error{Kind: KindDType}
	ErrDevice      = &Error{Kind: KindDevice}
	ErrOutOfMemory = &Error{Kind: KindOutOfMemory}
	ErrNoCUDA      = &Error{Kind: KindNoCUDA}
	ErrIndex       = &Error{Kind: KindIndex}
	ErrValue       = &Error{Kind: KindValue}
	ErrAutograd    = &Error{Kind: KindAutograd}
)

// newError converts a shim status.
func newError(op string, err error) *Error {
	var s *capi.Status
	if errors.As(err, &s) {
		return &Error{Op: op, Kind: ErrorKind(s.Kind), Msg: s.Message}
	}
	return &Error{Op: op, Kind: KindOther, Msg: err.Error()}
}

// fail panics with a *Error unless err is nil.
func fail(op string, err error) {
	if err != nil {
		panic(newError(op, err))
	}
}

// Try runs f and returns the *Error it panicked with, if any. Other panics
// propagate.
func Try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	f()
	return nil
}
