package cuda

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"unsafe"
)

// Purpose labels device memory for the allocator's statistics.
type Purpose int

// Purposes of device memory.
const (
	Activations Purpose = iota // the default for Alloc
	Weights                    // frozen model weights
	Adapters                   // LoRA/DoRA parameters and their gradients
	Optimizer                  // optimizer state
	Workspace                  // scratch of ops (cuBLASLt workspace, converted operands)
	numPurposes
)

var purposeNames = [...]string{"activations", "weights", "adapters", "optimizer", "workspace"}

func (p Purpose) String() string {
	if p >= 0 && int(p) < len(purposeNames) {
		return purposeNames[p]
	}
	return fmt.Sprintf("Purpose(%d)", int(p))
}

// ParsePurpose accepts the names printed by Purpose.String.
func ParsePurpose(s string) (Purpose, error) {
	for i, n := range purposeNames {
		if strings.EqualFold(s, n) {
			return Purpose(i), nil
		}
	}
	return 0, fmt.Errorf("cuda: unknown memory purpose %q (want one of %s)", s, strings.Join(purposeNames[:], ", "))
}

// Block is one device allocation handed out by the Allocator. The caller owns it until Put.
type Block struct {
	Ptr     uintptr // device address
	Bytes   int64   // bytes asked for
	size    int64   // bytes reserved (rounded size class)
	Purpose Purpose
	c       *chunk // the range of a large segment it occupies (nil for a small block)
}

// AllocStats are the allocator's byte counts. Requested bytes (what callers asked for) are
// counted per purpose; Reserved counts what is held from the driver, cached free blocks included.
type AllocStats struct {
	Current  [numPurposes]int64 // live requested bytes by purpose
	Peak     [numPurposes]int64 // the highest Current of each purpose
	Total    int64              // live requested bytes, all purposes
	PeakAll  int64              // the highest Total
	Reserved int64              // bytes obtained from cuMemAlloc and not returned (live + cached)
	PeakRes  int64              // the highest Reserved
	Cached   int64              // bytes of free blocks kept for reuse
	Blocks   int                // live blocks
	Allocs   int                // cuMemAlloc calls
	Frees    int                // cuMemFree calls
	Hits     int                // allocations served from the cache
	Trims    int                // stream waits to return idle segments before growing past PeakRes
}

// String is a one-line summary in MiB.
func (s AllocStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "in use %.1f MiB (peak %.1f), reserved %.1f MiB (peak %.1f, cached %.1f)",
		mib(s.Total), mib(s.PeakAll), mib(s.Reserved), mib(s.PeakRes), mib(s.Cached))
	for p := Purpose(0); p < numPurposes; p++ {
		if s.Peak[p] > 0 {
			fmt.Fprintf(&b, "; %s %.1f (peak %.1f)", p, mib(s.Current[p]), mib(s.Peak[p]))
		}
	}
	return b.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// OOMError is an allocation the device could not satisfy even after returning the cache to the
// driver. The allocator's other blocks stay valid.
type OOMError struct {
	Requested int64 // bytes asked for
	InUse     int64 // live bytes of this process's allocator
	Reserved  int64 // bytes held from the driver
	Free      int64 // the device's free bytes (cuMemGetInfo) after the cache was released
	Total     int64 // the device's memory
	Purpose   Purpose
	Err       error // the driver's error
}

func (e *OOMError) Error() string {
	return fmt.Sprintf("cuda: out of memory allocating %.1f MiB for %s: %.1f MiB in use by this session (%.1f reserved), %.1f MiB free of %.1f MiB on the device",
		mib(e.Requested), e.Purpose, mib(e.InUse), mib(e.Reserved), mib(e.Free), mib(e.Total))
}

func (e *OOMError) Unwrap() error { return e.Err }

// deviceMemory is what the Allocator needs of the driver: device allocations of a byte count and
// their release (pointers are device addresses), the device's free and total bytes, and a wait for
// the stream, so that a block freed behind queued kernels goes back to the driver only once they
// have finished. driverMemory is the device's; the allocator's tests use a fake.
type deviceMemory interface {
	alloc(bytes int64) (uintptr, error) // cuMemAlloc
	free(ptr uintptr) error             // cuMemFree
	sync() error                        // cuStreamSynchronize of the device's stream
	info() (free, total int64, err error)
}

// driverMemory is the deviceMemory of a Device (its context and stream).
type driverMemory struct{ d *Device }

func (m driverMemory) alloc(bytes int64) (uintptr, error) {
	defer m.d.enter()()
	var ptr uintptr
	err := m.d.drv.call("cuMemAlloc_v2", uintptr(unsafe.Pointer(&ptr)), uintptr(bytes))
	return ptr, err
}

func (m driverMemory) free(ptr uintptr) error {
	defer m.d.enter()()
	return m.d.drv.call("cuMemFree_v2", ptr)
}

func (m driverMemory) sync() error {
	defer m.d.enter()()
	return m.d.drv.call("cuStreamSynchronize", m.d.stream)
}

func (m driverMemory) info() (free, total int64, err error) { return m.d.MemInfo() }

// Allocator is a caching device allocator: freed blocks are kept in per-size free lists and reused
// (all work is ordered on one stream, so a block freed after queued kernels may be handed out to
// later ones). Sizes are rounded to 512 bytes up to 1 MiB and to 2 MiB above. Safe for concurrent use.
type Allocator struct {
	mem   deviceMemory
	mu    sync.Mutex
	free  map[int64][]uintptr
	stats AllocStats
	// Limit, when > 0, caps Reserved (for tests of the out-of-memory path).
	Limit int64
}

type chunk struct{}

func newAllocator(d *Device) *Allocator { return newAllocatorOn(driverMemory{d}) }

func newAllocatorOn(m deviceMemory) *Allocator {
	return &Allocator{mem: m, free: map[int64][]uintptr{}}
}

func sizeClass(n int64) int64 {
	if n <= 0 {
		return 512
	}
	if n <= 1<<20 {
		return (n + 511) &^ 511
	}
	return (n + (2<<20 - 1)) &^ (2<<20 - 1)
}

// Get returns a block of at least n bytes (contents undefined). On out-of-memory it releases the
// cache and retries once, then returns an *OOMError.
func (a *Allocator) Get(n int64, p Purpose) (*Block, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sz := sizeClass(n)
	var ptr uintptr
	if l := a.free[sz]; len(l) > 0 {
		ptr = l[len(l)-1]
		a.free[sz] = l[:len(l)-1]
		a.stats.Cached -= sz
		a.stats.Hits++
	} else {
		var err error
		ptr, err = a.driverAlloc(sz)
		if err != nil && isOOM(err) && a.stats.Cached > 0 {
			a.releaseCache()
			ptr, err = a.driverAlloc(sz)
		}
		if err != nil {
			if !isOOM(err) {
				return nil, fmt.Errorf("cuda: allocate %d bytes for %s: %w", n, p, err)
			}
			free, total, _ := a.mem.info()
			return nil, &OOMError{Requested: n, InUse: a.stats.Total, Reserved: a.stats.Reserved, Free: free, Total: total, Purpose: p, Err: err}
		}
	}
	s := &a.stats
	s.Current[p] += n
	s.Peak[p] = max(s.Peak[p], s.Current[p])
	s.Total += n
	s.PeakAll = max(s.PeakAll, s.Total)
	s.Blocks++
	return &Block{Ptr: ptr, Bytes: n, size: sz, Purpose: p}, nil
}

func (a *Allocator) driverAlloc(sz int64) (uintptr, error) {
	if a.Limit > 0 && a.stats.Reserved+sz > a.Limit {
		return 0, &Error{Call: "cuMemAlloc_v2", Code: cudaErrorOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY", Msg: "allocator limit (test)"}
	}
	ptr, err := a.mem.alloc(sz)
	if err != nil {
		return 0, err
	}
	a.stats.Allocs++
	a.stats.Reserved += sz
	a.stats.PeakRes = max(a.stats.PeakRes, a.stats.Reserved)
	return ptr, nil
}

// Put returns a block to the cache. Putting a block twice is a broken invariant (panics).
func (a *Allocator) Put(b *Block) {
	if b == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b.Ptr == 0 {
		panic("cuda: block freed twice")
	}
	a.free[b.size] = append(a.free[b.size], b.Ptr)
	a.stats.Cached += b.size
	a.stats.Current[b.Purpose] -= b.Bytes
	a.stats.Total -= b.Bytes
	a.stats.Blocks--
	b.Ptr = 0
}

// ReleaseCache returns every cached free block to the driver (after the stream has finished).
func (a *Allocator) ReleaseCache() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.releaseCache()
}

func (a *Allocator) releaseCache() error {
	if err := a.mem.sync(); err != nil {
		return err
	}
	sizes := make([]int64, 0, len(a.free))
	for s := range a.free {
		sizes = append(sizes, s)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	var first error
	for _, s := range sizes {
		for _, p := range a.free[s] {
			if err := a.mem.free(p); err != nil && first == nil {
				first = err
			}
			a.stats.Frees++
			a.stats.Reserved -= s
			a.stats.Cached -= s
		}
		delete(a.free, s)
	}
	return first
}

// Stats returns a snapshot of the byte counts.
func (a *Allocator) Stats() AllocStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// ResetPeaks sets every peak to the current value (to measure one phase, e.g. a training step).
func (a *Allocator) ResetPeaks() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Peak = a.stats.Current
	a.stats.PeakAll = a.stats.Total
	a.stats.PeakRes = a.stats.Reserved
}
