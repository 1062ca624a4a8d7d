// Package runtime is what notebook cells talk to: the Session that keeps named objects (models,
// adapters, datasets, workers) alive from cell to cell, and the context of the running cell.
//
// Cells see this package pre-imported under the name runtime (the Go standard library's runtime
// package must be imported with an alias in a cell: import goruntime "runtime").
//
// Ownership: an object put in a Session belongs to it. Replacing a name, Free(name), FreeAll and a
// kernel %reset call the object's Free method; GPU memory and other non-Go resources are released
// there, never by garbage-collector finalizers (the interpreter never frees memory of old cell values).
//
// Long-running compiled calls (load, train, eval, generate) take the cell's context, Ctx(), and
// check it between steps so an interrupt stops them.
package runtime
