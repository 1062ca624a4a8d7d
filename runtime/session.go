package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// Object is a value the Session owns. Free releases what the object holds outside the Go heap
// (device memory, files, worker processes); it is called exactly once by the Session, after which
// the object must not be used. Free of an already released object should return nil.
type Object interface {
	Free() error
}

// Session is a registry of named objects that outlive a cell. It is safe for concurrent use.
// The zero value is not usable; call NewSession or use Default.
type Session struct {
	mu   sync.Mutex
	objs map[string]Object
}

// NewSession returns an empty Session.
func NewSession() *Session { return &Session{objs: map[string]Object{}} }

var defaultSession = NewSession()

// Default returns the process-wide Session that notebook cells and the kernel's %who and %reset use.
func Default() *Session { return defaultSession }

// Put stores obj under name; the Session owns it from now on. If name already held a different
// object, that object is freed first (its Free error, if any, is returned wrapped, and obj is
// stored anyway). Putting the object a name already holds is a no-op. name must not be empty and
// obj must not be nil.
func (s *Session) Put(name string, obj Object) error {
	if name == "" {
		return errors.New("session put: empty name")
	}
	if obj == nil {
		return fmt.Errorf("session put %q: nil object (use Free to drop a name)", name)
	}
	s.mu.Lock()
	old, had := s.objs[name]
	s.objs[name] = obj
	s.mu.Unlock()
	if had && !sameObject(old, obj) {
		if err := old.Free(); err != nil {
			return fmt.Errorf("session put %q: free the object it replaced: %w", name, err)
		}
	}
	return nil
}

// sameObject reports whether a and b are the same object. Objects of uncomparable dynamic types
// (structs with func fields, such as the interpreter's wrappers of cell-defined types) are never
// the same, where == would panic.
func sameObject(a, b Object) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

// Get returns the object stored under name; ok is false when there is none. The Session keeps
// ownership: the caller must not Free it (use Session.Free).
func (s *Session) Get(name string) (obj Object, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok = s.objs[name]
	return obj, ok
}

// Names returns the names held, sorted.
func (s *Session) Names() []string {
	s.mu.Lock()
	names := make([]string, 0, len(s.objs))
	for n := range s.objs {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	return names
}

// Free frees the object stored under name and forgets the name. It is an error if name holds
// nothing. The name is forgotten even when the object's Free fails.
func (s *Session) Free(name string) error {
	s.mu.Lock()
	obj, ok := s.objs[name]
	delete(s.objs, name)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("session free %q: no such name (have %v)", name, s.Names())
	}
	if err := obj.Free(); err != nil {
		return fmt.Errorf("session free %q: %w", name, err)
	}
	return nil
}

// FreeAll frees every object, in name order, and empties the Session. It returns the errors of
// the objects that failed to free, joined.
func (s *Session) FreeAll() error {
	var errs []error
	for _, n := range s.Names() {
		if _, ok := s.Get(n); !ok {
			continue
		}
		if err := s.Free(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Put stores obj under name in the Default session (see Session.Put).
func Put(name string, obj Object) error { return defaultSession.Put(name, obj) }

// Get returns the object stored under name in the Default session (see Session.Get).
func Get(name string) (Object, bool) { return defaultSession.Get(name) }

// Names returns the sorted names held by the Default session.
func Names() []string { return defaultSession.Names() }

// Free frees and forgets name in the Default session (see Session.Free).
func Free(name string) error { return defaultSession.Free(name) }
