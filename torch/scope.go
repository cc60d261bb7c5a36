package torch

import "github.com/hiddenlab/hiddenlab/torch/internal/capi"

// Scope owns the tensors created while it is the innermost open scope and
// frees them together when it closes.
type Scope struct {
	parent  *Scope
	tensors []*Tensor
	closed  bool
}

// current is the innermost open scope (nil: created tensors are unowned).
var current *Scope

// NewScope opens a scope nested in the current one.
func NewScope() *Scope {
	s := &Scope{parent: current}
	current = s
	return s
}

// WithScope runs f inside a new scope and closes it, even if f panics.
func WithScope(f func()) {
	s := NewScope()
	defer s.Close()
	f()
}

func (s *Scope) add(t *Tensor) {
	t.scope = s
	t.slot = len(s.tensors)
	s.tensors = append(s.tensors, t)
}

func (s *Scope) remove(t *Tensor) {
	s.tensors[t.slot] = nil
	t.scope = nil
	// Trim freed slots at the end, so create-then-free loops stay flat.
	n := len(s.tensors)
	for n > 0 && s.tensors[n-1] == nil {
		n--
	}
	s.tensors = s.tensors[:n]
}

// Keep moves tensors owned by s to s's parent scope, or makes them unowned
// (the caller frees them) when s is outermost.
func (s *Scope) Keep(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil || t.scope != s {
			continue
		}
		s.remove(t)
		if s.parent != nil {
			s.parent.add(t)
		}
	}
}

// Len reports how many tensors s still owns.
func (s *Scope) Len() int {
	n := 0
	for _, t := range s.tensors {
		if t != nil {
			n++
		}
	}
	return n
}

// Close frees every tensor s still owns and makes s's parent current again.
// Scopes close innermost first; closing twice is a no-op.
func (s *Scope) Close() {
	if s.closed {
		return
	}
	if current != s {
		panic("torch: Scope.Close on a scope that is not the innermost open one (scopes must nest)")
	}
	handles := make([]capi.Tensor, 0, len(s.tensors))
	for _, t := range s.tensors {
		if t != nil {
			handles = append(handles, t.h)
			t.h, t.scope = nil, nil
		}
	}
	capi.FreeMany(handles)
	s.tensors = nil
	s.closed = true
	current = s.parent
}
