package interp

import (
	"context"

	"github.com/finlora/finlora/kernel"
)

// Compile-time checks against the kernel's contract (kernel/evaluator.go).
var (
	// Every kernel.Output is an Output: Execute accepts what the kernel passes.
	_ Output = kernel.Output(nil)
	// Cell errors carry the kernel's CellError methods.
	_ kernel.CellError = (*Error)(nil)
	// All methods match; Execute differs only in naming its Output parameter type: while
	// kernel.Output is a defined type (not an alias of an interface literal), the join in
	// cmd/finlora is this one-method adapter.
	_ kernel.Evaluator = kernelEvaluator{}
)

type kernelEvaluator struct{ *Evaluator }

func (k kernelEvaluator) Execute(ctx context.Context, code string, out kernel.Output) (map[string]any, error) {
	return k.Evaluator.Execute(ctx, code, out)
}
