package cuda

import (
	"fmt"
	"sort"
	"unsafe"
)

// ProfEntry is the device time of one kernel (or matmul shape) summed over its launches.
type ProfEntry struct {
	Name  string
	Calls int
	Ms    float64 // total milliseconds on the device
}

// profiler brackets every kernel launch and matmul with a pair of events while a profile runs.
type profiler struct {
	pool    []uintptr // free events
	pending []profPending
	totals  map[string]*ProfEntry
}

type profPending struct {
	name        string
	start, stop uintptr
}

// StartProfile begins timing every kernel launch and matmul by name (events around each; expect
// some slowdown). StopProfile ends it and returns the totals, largest first.
func (b *Backend) StartProfile() {
	defer b.lock()()
	b.prof = &profiler{totals: map[string]*ProfEntry{}}
}

// StopProfile waits for the device, resolves the timings and returns them, largest first.
func (b *Backend) StopProfile() ([]ProfEntry, error) {
	defer b.lock()()
	p := b.prof
	if p == nil {
		return nil, fmt.Errorf("cuda: StopProfile without StartProfile")
	}
	b.prof = nil
	err := b.resolveProfile(p)
	for _, e := range p.pool {
		b.dev.drv.call("cuEventDestroy_v2", e)
	}
	var out []ProfEntry
	for _, e := range p.totals {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ms > out[j].Ms })
	return out, err
}

func (b *Backend) resolveProfile(p *profiler) error {
	if err := b.dev.drv.call("cuStreamSynchronize", b.dev.stream); err != nil {
		return err
	}
	for _, x := range p.pending {
		var ms float32
		if err := b.dev.drv.call("cuEventElapsedTime", uintptr(unsafe.Pointer(&ms)), x.start, x.stop); err != nil {
			return err
		}
		e := p.totals[x.name]
		if e == nil {
			e = &ProfEntry{Name: x.name}
			p.totals[x.name] = e
		}
		e.Calls++
		e.Ms += float64(ms)
		p.pool = append(p.pool, x.start, x.stop)
	}
	p.pending = p.pending[:0]
	return nil
}

// profiled runs f (which queues device work) between two events recorded under name when a
// profile is running. The caller has entered the context.
func (b *Backend) profiled(name string, f func() error) error {
	p := b.prof
	if p == nil {
		return f()
	}
	ev := func() (uintptr, error) {
		if n := len(p.pool); n > 0 {
			e := p.pool[n-1]
			p.pool = p.pool[:n-1]
			return e, nil
		}
		var e uintptr
		err := b.dev.drv.call("cuEventCreate", uintptr(unsafe.Pointer(&e)), 0)
		return e, err
	}
	start, err := ev()
	if err != nil {
		return err
	}
	stop, err := ev()
	if err != nil {
		return err
	}
	if err := b.dev.drv.call("cuEventRecord", start, b.dev.stream); err != nil {
		return err
	}
	ferr := f()
	if err := b.dev.drv.call("cuEventRecord", stop, b.dev.stream); err != nil {
		return err
	}
	p.pending = append(p.pending, profPending{name, start, stop})
	if len(p.pending) >= 8192 {
		if err := b.resolveProfile(p); err != nil {
			return err
		}
	}
	return ferr
}
