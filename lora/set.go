package lora

import (
	"fmt"
	"sort"
	"sync"
)

// Set holds several named adapters for one base model, with one of them active. A forward pass takes
// the adapter to apply as an argument (Get or Active), so two calls may use different adapters; the
// active name is only the default. Safe for concurrent use; the adapters themselves are not copied.
type Set struct {
	mu       sync.Mutex
	adapters map[string]*Adapter
	active   string
}

// NewSet returns an empty set with no active adapter.
func NewSet() *Set { return &Set{adapters: map[string]*Adapter{}} }

// Add stores a under name; the first adapter added becomes active. A name already present is an error.
func (s *Set) Add(name string, a *Adapter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		return fmt.Errorf("lora: adapter name is empty")
	}
	if _, dup := s.adapters[name]; dup {
		return fmt.Errorf("lora: adapter %q already exists", name)
	}
	s.adapters[name] = a
	if s.active == "" {
		s.active = name
	}
	return nil
}

// Remove deletes the adapter name (the active one becomes none if it was name).
func (s *Set) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.adapters, name)
	if s.active == name {
		s.active = ""
	}
}

// Get returns the adapter stored under name.
func (s *Set) Get(name string) (*Adapter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.adapters[name]
	return a, ok
}

// SetActive makes name the active adapter; "" means none (the bare base model).
func (s *Set) SetActive(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.adapters[name]; name != "" && !ok {
		return fmt.Errorf("lora: no adapter %q (have %v)", name, s.namesLocked())
	}
	s.active = name
	return nil
}

// Active returns the active adapter's name and the adapter (nil when none is active).
func (s *Set) Active() (string, *Adapter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, s.adapters[s.active]
}

// Names returns the adapter names in sorted order.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.namesLocked()
}

func (s *Set) namesLocked() []string {
	ns := make([]string, 0, len(s.adapters))
	for n := range s.adapters {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
