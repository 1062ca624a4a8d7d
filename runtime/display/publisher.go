package display

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Publisher is where rich output goes: the running cell's output in a notebook. Its methods
// have the signatures of the kernel's Output interface, so a kernel Output is a Publisher.
// Implementations must be safe for concurrent use.
type Publisher interface {
	// Display publishes a MIME bundle (display_data), or replaces the output with displayID
	// when update is true (update_display_data).
	Display(data, metadata map[string]any, displayID string, update bool)
	// ClearOutput clears the cell's output (wait: when the next output arrives).
	ClearOutput(wait bool)
	// Input asks the user for one line.
	Input(prompt string, password bool) (string, error)
}

var (
	pubMu   sync.RWMutex
	current Publisher

	// terminal output; variables so tests can capture them.
	termOut io.Writer = os.Stdout
	termErr io.Writer = os.Stderr
	termIn  io.Reader = os.Stdin
)

// SetPublisher makes p the current publisher (nil: the terminal) until restore is called, which
// reinstates the previous one. The evaluator calls it around each cell.
func SetPublisher(p Publisher) (restore func()) {
	pubMu.Lock()
	prev := current
	current = p
	pubMu.Unlock()
	return func() {
		pubMu.Lock()
		current = prev
		pubMu.Unlock()
	}
}

// Current returns the current publisher, or nil outside a notebook cell.
func Current() Publisher {
	pubMu.RLock()
	defer pubMu.RUnlock()
	return current
}

// InNotebook reports whether output goes to a notebook cell (a Publisher is set).
func InNotebook() bool { return Current() != nil }

// ClearOutput clears the running cell's output; outside a notebook it does nothing.
// wait defers the clearing until the next output arrives (no flicker).
func ClearOutput(wait bool) {
	if p := Current(); p != nil {
		p.ClearOutput(wait)
	}
}

// Input asks the user for one line and returns it without its line end. In a notebook the
// front end shows prompt and an input box; in a terminal prompt is printed to standard error and
// the line read from standard input. It fails when the front end does not allow input.
func Input(prompt string) (string, error) { return input(prompt, false) }

// Password is Input with the typed text hidden in the front end.
func Password(prompt string) (string, error) { return input(prompt, true) }

var termReader *bufio.Reader

func input(prompt string, password bool) (string, error) {
	if p := Current(); p != nil {
		s, err := p.Input(prompt, password)
		if err != nil {
			return "", fmt.Errorf("display input %q: %w", prompt, err)
		}
		return s, nil
	}
	fmt.Fprint(termErr, prompt)
	pubMu.Lock()
	if termReader == nil {
		termReader = bufio.NewReader(termIn)
	}
	r := termReader
	pubMu.Unlock()
	line, err := r.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("display input %q: %w", prompt, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
