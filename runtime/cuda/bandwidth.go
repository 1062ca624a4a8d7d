package cuda

import (
	"fmt"

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
	med, err := b.medianMillis(run, iters)
	if err != nil {
		return 0, err
	}
	return 2 * float64(n) / (med * 1e-3) / 1e9, nil
}
