package runtime

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

type fakeObj struct {
	name  string
	freed *[]string
	err   error
}

func (f *fakeObj) Free() error { *f.freed = append(*f.freed, f.name); return f.err }

func TestSessionReplaceFreesOld(t *testing.T) {
	var freed []string
	s := NewSession()
	a := &fakeObj{name: "a", freed: &freed}
	b := &fakeObj{name: "b", freed: &freed}
	if err := s.Put("m", a); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("m", a); err != nil || len(freed) != 0 {
		t.Fatalf("re-putting the same object freed it: %v %v", err, freed)
	}
	if err := s.Put("m", b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(freed, []string{"a"}) {
		t.Fatalf("freed %v, want [a]", freed)
	}
	if got, ok := s.Get("m"); !ok || got != b {
		t.Fatalf("Get(m) = %v %v, want b", got, ok)
	}
}

// uncomparable is an Object whose dynamic type cannot be compared with ==.
type uncomparable struct {
	free func() error
}

func (u uncomparable) Free() error { return u.free() }

func TestSessionUncomparableObjects(t *testing.T) {
	s := NewSession()
	n := 0
	o := uncomparable{free: func() error { n++; return nil }}
	if err := s.Put("u", o); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("u", uncomparable{free: func() error { return nil }}); err != nil || n != 1 {
		t.Fatalf("replace uncomparable: %v, old freed %d times", err, n)
	}
}

func TestSessionFreeAndNames(t *testing.T) {
	var freed []string
	s := NewSession()
	boom := errors.New("boom")
	for _, n := range []string{"z", "a", "k"} {
		o := &fakeObj{name: n, freed: &freed}
		if n == "k" {
			o.err = boom
		}
		if err := s.Put(n, o); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Names(); !reflect.DeepEqual(got, []string{"a", "k", "z"}) {
		t.Fatalf("Names = %v", got)
	}
	if err := s.Free("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Free("a"); err == nil {
		t.Fatal("freeing an unknown name: no error")
	}
	err := s.FreeAll()
	if !errors.Is(err, boom) {
		t.Fatalf("FreeAll error %v, want boom", err)
	}
	if !reflect.DeepEqual(freed, []string{"a", "k", "z"}) || len(s.Names()) != 0 {
		t.Fatalf("freed %v names %v", freed, s.Names())
	}
	if err := s.Put("", &fakeObj{freed: &freed}); err == nil {
		t.Fatal("empty name accepted")
	}
	if err := s.Put("x", nil); err == nil {
		t.Fatal("nil object accepted")
	}
}

func TestCellContext(t *testing.T) {
	if Ctx() != context.Background() {
		t.Fatal("outside a cell Ctx is not Background")
	}
	ctx, cancel := context.WithCancel(context.Background())
	restore := SetCellContext(ctx)
	cancel()
	if Ctx().Err() == nil {
		t.Fatal("cell context not visible")
	}
	restore()
	if Ctx() != context.Background() {
		t.Fatal("restore did not reinstate Background")
	}
}
