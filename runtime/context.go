package runtime

import (
	"context"
	"sync"
)

var (
	ctxMu   sync.Mutex
	cellCtx context.Context
)

// Ctx returns the context of the running cell: it is cancelled when the user interrupts the
// cell (or the kernel shuts down). Outside a cell it returns context.Background(). Long compiled
// calls take it and return ctx.Err() soon after it is cancelled.
//
// Goroutines a cell started that keep running after the cell ends see the context of whatever
// cell runs when they call Ctx; capture it once (ctx := runtime.Ctx()) to keep the starting cell's.
func Ctx() context.Context {
	ctxMu.Lock()
	defer ctxMu.Unlock()
	if cellCtx == nil {
		return context.Background()
	}
	return cellCtx
}

// SetCellContext makes ctx what Ctx returns, until the returned restore function is called
// (which reinstates the previous context). The evaluator calls it around each cell; cell code
// should not.
func SetCellContext(ctx context.Context) (restore func()) {
	ctxMu.Lock()
	prev := cellCtx
	cellCtx = ctx
	ctxMu.Unlock()
	return func() {
		ctxMu.Lock()
		cellCtx = prev
		ctxMu.Unlock()
	}
}
