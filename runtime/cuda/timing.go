package cuda

import (
	"fmt"
	"sort"
)

// medianMillis runs run three times to warm up, then iters times between two recorded events,
// and returns the median device time of one run in milliseconds. run takes the backend lock
// itself. The measurement helpers (GemmRate, CopyRate) share it.
func (b *Backend) medianMillis(run func() error, iters int) (float64, error) {
	if iters < 1 {
		return 0, fmt.Errorf("cuda: timing needs at least one iteration, got %d", iters)
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
	return times[len(times)/2], nil
}
