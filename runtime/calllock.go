package runtime

import (
	"context"
	"fmt"
	"sync"
)

// Long calls on a model (Finetune, Evaluate, Adapter.Generate, Adapter.Save) hold the model's call
// lock. The reason is the kernel's interrupt: the interpreter ends an interrupted cell at once,
// while the compiled call it made runs on until it next checks the context (the end of the current
// optimizer step or generation batch). Without the lock the next cell could evaluate or save an
// adapter whose weights that last step is still writing, or attach an adapter to a model another
// call is generating with. With it, the next cell's call waits for the interrupted one to return.

var callLocks sync.Map // *LoadedModel → chan struct{} (capacity 1: full while held)

// lockModel waits until no other long call runs on m, or ctx is done, and returns the unlock
// function.
func lockModel(ctx context.Context, m *LoadedModel) (unlock func(), err error) {
	v, _ := callLocks.LoadOrStore(m, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	default:
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the previous call on model %q to stop: %w", m.Name, ctx.Err())
	}
}
