// Package display is the rich-output API of notebook cells and of compiled runtime code:
// HTML, Markdown, PNG, SVG, JSON and text outputs that can be updated in place, and a progress bar.
//
// Inside a notebook the evaluator installs the running cell's Publisher (SetPublisher); every
// function here sends to it, so compiled code (a trainer, an evaluator) called from a cell finds
// the cell's output without being passed anything. Outside a notebook (no Publisher) the same
// calls print to the terminal: text to standard output, progress bars to standard error with
// carriage returns.
//
// The package knows nothing of the interpreter or of Jupyter messages; a Publisher's methods
// match the kernel's Output interface.
package display
