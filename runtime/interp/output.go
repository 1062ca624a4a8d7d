package interp

// Output is where a running cell sends what it produces; it is the kernel's Output interface
// (kernel/evaluator.go) written as a type alias of an interface literal, so that this package
// does not import kernel. Every kernel.Output value is an Output. Implementations are safe for
// concurrent use.
type Output = interface {
	// Stream publishes text on the named stream, "stdout" or "stderr".
	Stream(name, text string)
	// Display publishes display_data (update false) or update_display_data (update true).
	Display(data, metadata map[string]any, displayID string, update bool)
	// ClearOutput publishes clear_output.
	ClearOutput(wait bool)
	// Input asks the front end for one line.
	Input(prompt string, password bool) (string, error)
}
