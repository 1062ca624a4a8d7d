package quant

import (
	"runtime"
	"sync"
)

// parallelFor runs body over [0, n) split into contiguous chunks of at least grain items, on up
// to GOMAXPROCS goroutines, and returns when all are done.
func parallelFor(n, grain int, body func(lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	workers := min(runtime.GOMAXPROCS(0), ceilDiv(n, grain))
	if workers <= 1 {
		body(0, n)
		return
	}
	chunk := ceilDiv(n, workers)
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
}
