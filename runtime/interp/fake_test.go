package interp

import (
	"os"
	"strings"
	"sync"
	"testing"

	finlora "github.com/finlora/finlora/runtime"
)

// fakeOutput records what a cell publishes.
type fakeOutput struct {
	mu       sync.Mutex
	streams  map[string]*strings.Builder
	displays []displayMsg
	inputs   []string // answers to Input, in order
	prompts  []string
}

type displayMsg struct {
	data   map[string]any
	id     string
	update bool
}

func newFake() *fakeOutput {
	return &fakeOutput{streams: map[string]*strings.Builder{"stdout": {}, "stderr": {}}}
}

func (f *fakeOutput) Stream(name, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams[name].WriteString(text)
}

func (f *fakeOutput) Display(data, _ map[string]any, id string, update bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.displays = append(f.displays, displayMsg{data, id, update})
}

func (f *fakeOutput) ClearOutput(bool) {}

func (f *fakeOutput) Input(prompt string, _ bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prompts = append(f.prompts, prompt)
	if len(f.inputs) == 0 {
		return "", nil
	}
	s := f.inputs[0]
	f.inputs = f.inputs[1:]
	return s, nil
}

func (f *fakeOutput) stdout() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams["stdout"].String()
}
func (f *fakeOutput) stderr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams["stderr"].String()
}

func newEval(t *testing.T) *Evaluator {
	t.Helper()
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// freeCounter is a session object that counts its Free calls.
type freeCounter struct{ n int }

func (f *freeCounter) Free() error { f.n++; return nil }

func runtimePut(name string, o *freeCounter) error { return finlora.Put(name, o) }

func unsetenv(k string) error { return os.Unsetenv(k) }
