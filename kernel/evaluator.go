package kernel

import "context"

// Evaluator is everything the kernel needs from the language runtime. The kernel owns the wire
// protocol; the evaluator owns the interpreter and the state that lives across cells.
//
// The signatures use only built-in types so that an implementation (runtime/interp) satisfies this
// interface structurally without importing package kernel: kernel knows nothing of the runtime, and
// the runtime knows nothing of Jupyter. cmd/finlora joins the two.
//
// Positions (cursor, start, end) are offsets in Unicode code points into code, as Jupyter 5.3 counts them.
type Evaluator interface {
	// Execute runs one cell. ctx is cancelled by an interrupt_request or a shutdown; a long call must
	// return soon after. Everything the cell prints or displays goes to out while it runs, and only
	// to out. result is the MIME bundle of the cell's final expression ("text/plain" at least), or nil
	// when the cell ends in a statement or a declaration. A non-nil err is reported as an error reply;
	// if it implements CellError its name and traceback are used.
	Execute(ctx context.Context, code string, out Output) (result map[string]any, err error)

	// Complete returns the candidates for the token that ends at cursor, and the range [start, end)
	// of code they replace. metadata may be nil.
	Complete(code string, cursor int) (matches []string, start, end int, metadata map[string]any)

	// Inspect returns the MIME bundle (signature and doc comment) of the identifier under cursor;
	// found is false when there is nothing to say. detailLevel is 0 or 1 as in inspect_request.
	Inspect(code string, cursor int, detailLevel int) (data map[string]any, found bool)

	// IsComplete answers is_complete_request: status is "complete", "incomplete" (then indent is
	// the indentation to continue with), "invalid" or "unknown".
	IsComplete(code string) (status string, indent string)

	// Reset drops all interpreter state (as after a restart), keeping nothing from earlier cells.
	Reset() error
}

// Output is where a running cell sends what it produces. Implementations are safe for concurrent
// use: goroutines started by a cell may write while the cell runs.
type Output interface {
	// Stream publishes text on the named stream, "stdout" or "stderr".
	Stream(name, text string)
	// Display publishes a display_data message (update false) or an update_display_data message
	// (update true). data is a MIME bundle; displayID may be empty when update is false.
	Display(data, metadata map[string]any, displayID string, update bool)
	// ClearOutput publishes clear_output; wait as in the protocol.
	ClearOutput(wait bool)
	// Input asks the front end for one line on the stdin channel and blocks until it answers.
	// It returns an error when the front end does not allow stdin or the cell is interrupted.
	Input(prompt string, password bool) (string, error)
}

// CellError is an error with a Jupyter error name and a traceback (lines of the cell, already
// formatted). Evaluators return it to control what the front end shows.
type CellError interface {
	error
	EName() string
	Traceback() []string
}
