package cuda

import (
	"fmt"
	"sort"

	"github.com/finlora/finlora/runtime/tensor"
)

// CopyRate measures the device-memory bandwidth in GB/s (1e9 bytes per second): the median of iters
// device-to-device copies of n bytes, timed with events, counting the bytes read plus the bytes
// written (2n per copy). The source is filled with a non-zero pattern first. For the decode
// benchmark's limit (weight bytes / this rate).
func (b *Backend) CopyRate(n int64, iters int) (float64, error) {
	n &^= 15
	src, err := b.dev.Alloc.Get(n, Workspace)
	if err != nil {
		return 0, fmt.Errorf("cuda: copy rate: %w", err)
	}
	defer b.dev.Alloc.Put(src)
	dst, err := b.dev.Alloc.Get(n, Workspace)
	if err != nil {
		return 0, fmt.Errorf("cuda: copy rate: %w", err)
	}
	defer b.dev.Alloc.Put(dst)
	run := func() error {
		defer b.lock()()
		return b.dev.dtod(dst.Ptr, src.Ptr, int(n))
	}
	if err := func() error {
		defer b.lock()()
		return b.launch1("fill", int(n/4), src.Ptr, dtypeCode(tensor.F32), float32(1.2345), n/4)
	}(); err != nil {
		return 0, err
	}
	for i := 0; i < 3; i++ {
		if err := run(); err != nil {
			return 0, err
		}
	}
	start, err := b.dev.NewEvent()
	if err != nil {
		return 0, err
	}
	defer start.Destroy()
	stop, err := b.dev.NewEvent()
	if err != nil {
		return 0, err
	}
	defer stop.Destroy()
	times := make([]float64, 0, iters)
	for i := 0; i < iters; i++ {
		if err := start.Record(); err != nil {
			return 0, err
		}
		if err := run(); err != nil {
			return 0, err
		}
		if err := stop.Record(); err != nil {
			return 0, err
		}
		ms, err := stop.Since(start)
		if err != nil {
			return 0, err
		}
		times = append(times, float64(ms))
	}
	sort.Float64s(times)
	return 2 * float64(n) / (times[len(times)/2] * 1e-3) / 1e9, nil
}
