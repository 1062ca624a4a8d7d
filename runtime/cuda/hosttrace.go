package cuda

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Host-side trace of the driver and cuBLASLt calls (for finding where a step's wall time exceeds
// its device time): while on, every call's count and host time are summed by function name.

var (
	traceOn atomic.Bool
	traceMu sync.Mutex
	traceBy map[string]*HostCall
)

// HostCall is one driver or cuBLASLt function's calls during a host trace: how many, and the host
// time spent inside them (a cuStreamSynchronize's time is mostly the wait for the device).
type HostCall struct {
	Name  string
	Calls int
	Ms    float64
}

// StartHostTrace begins summing the host time of every driver and cuBLASLt call by name (all
// devices of the process). Off by default; costs two clock reads a call while on.
func StartHostTrace() {
	traceMu.Lock()
	traceBy = map[string]*HostCall{}
	traceMu.Unlock()
	traceOn.Store(true)
}

// StopHostTrace ends the trace and returns the calls, most host time first.
func StopHostTrace() []HostCall {
	traceOn.Store(false)
	traceMu.Lock()
	defer traceMu.Unlock()
	out := make([]HostCall, 0, len(traceBy))
	for _, c := range traceBy {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ms > out[j].Ms })
	return out
}

// traced returns the function that records a call of name begun now (nil while the trace is off).
func traced(name string) func() {
	if !traceOn.Load() {
		return nil
	}
	t0 := time.Now()
	return func() {
		d := time.Since(t0)
		traceMu.Lock()
		defer traceMu.Unlock()
		if traceBy == nil {
			return
		}
		c := traceBy[name]
		if c == nil {
			c = &HostCall{Name: name}
			traceBy[name] = c
		}
		c.Calls++
		c.Ms += float64(d) / 1e6
	}
}
