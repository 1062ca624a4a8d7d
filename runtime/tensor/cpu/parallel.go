package cpu

import (
	"sync"
	"sync/atomic"
)

// parallel runs fn(i) for i in [0, n) on up to b.workers goroutines (the caller's included),
// handing out indices dynamically so uneven work balances. fn must be safe to run concurrently
// for distinct i. worker is the goroutine's index in [0, workers), for per-worker scratch buffers.
func (b *Backend) parallel(n int, fn func(worker, i int)) {
	w := b.workers
	if w > n {
		w = n
	}
	if w <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	run := func(worker int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(worker, i)
		}
	}
	wg.Add(w - 1)
	for k := 1; k < w; k++ {
		go func(k int) { defer wg.Done(); run(k) }(k)
	}
	run(0)
	wg.Wait()
}

// chunks splits [0, n) into pieces of at least minSize and runs fn(lo, hi) on them in parallel.
func (b *Backend) chunks(n, minSize int, fn func(lo, hi int)) {
	if n == 0 {
		return
	}
	if minSize < 1 {
		minSize = 1
	}
	pieces := b.workers * 4
	size := (n + pieces - 1) / pieces
	if size < minSize {
		size = minSize
	}
	count := (n + size - 1) / size
	b.parallel(count, func(_, i int) {
		lo := i * size
		hi := min(lo+size, n)
		fn(lo, hi)
	})
}
