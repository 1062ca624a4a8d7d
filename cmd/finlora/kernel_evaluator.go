package main

import (
	"context"
	"io"

	"github.com/finlora/finlora/kernel"
	"github.com/finlora/finlora/runtime/interp"
)

// newEvaluator returns the kernel's Evaluator (runtime/interp: yaegi over the FinLoRA runtime) and
// the writer the kernel must log to: the process's original stderr, since the evaluator captures
// file descriptors 1 and 2 into the running cell.
func newEvaluator() (kernel.Evaluator, io.Writer, error) {
	ev, err := interp.New()
	if err != nil {
		return nil, nil, err
	}
	return interpEvaluator{ev}, interp.LogWriter(), nil
}

// interpEvaluator joins runtime/interp to the kernel. Only Execute needs restating: its Output
// parameter is interp.Output (an alias of an interface literal, so that interp does not import
// kernel), which has the same method set as the defined type kernel.Output but is not the same
// type, so the method sets differ for Go's interface satisfaction.
type interpEvaluator struct{ *interp.Evaluator }

func (e interpEvaluator) Execute(ctx context.Context, code string, out kernel.Output) (map[string]any, error) {
	return e.Evaluator.Execute(ctx, code, out)
}
