package cuda

import (
	"fmt"
	"os"
	"sort"
	"strconv"
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
	Workspace                  // scratch of ops (cuBLASLt workspace, converted operands, dequantized copies): short-lived, so the Allocator may carve it out of a larger free chunk
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
	Trims    int                // stream waits to return idle segments before growing past PeakRes (Allocator.trim)
}

// String is a one-line summary in MiB.
func (s AllocStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "in use %.1f MiB (peak %.1f), reserved %.1f MiB (peak %.1f, cached %.1f; %d cuMemAlloc, %d cuMemFree, %d trims, %d cache hits)",
		mib(s.Total), mib(s.PeakAll), mib(s.Reserved), mib(s.PeakRes), mib(s.Cached), s.Allocs, s.Frees, s.Trims, s.Hits)
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

// Allocator is a caching device allocator. All work is ordered on one stream, so a block freed
// after queued kernels may be handed out to later ones; memory goes back to the driver only after a
// stream wait. Safe for concurrent use.
//
// Small requests (≤ 1 MiB) are rounded to 512 bytes and cached in free lists per size. Larger ones
// are rounded to 2 MiB and live in segments (cuMemAlloc ranges) split into chunks: a request takes
// a free chunk of its exact size, or, for Workspace (the short-lived scratch of ops), the smallest
// free chunk that fits, split; a block Put merges with its free neighbours. Only Workspace carves,
// because a long-lived block carved out of a range that its usual size is asked for again (an
// activation kept for the backward inside a freed dequantization copy) pins the rest of it as a
// fragment that nothing fits, layer after layer.
//
// When no free chunk serves a request and a new segment would take Reserved (less the small
// cache) above the allocated peak (PeakAll, this request included) plus Headroom, the segments
// entirely free are first returned to the driver, longest idle first, after a stream wait (trim).
// So the cache holds about Headroom at most beyond the blocks in use at the peak (exact-size free
// lists alone held 0.51 GiB over for the bench's NF4 QLoRA step: 8.37 GiB reserved, 7.86
// allocated), and a repeating workload (training steps) settles into a few driver calls a step or
// none (alloc_test.go's qloraStep: ≤ 2 stream waits and 14 cuMemAlloc + cuMemFree a step).
type Allocator struct {
	mem   deviceMemory
	mu    sync.Mutex
	small map[int64][]uintptr // free small blocks by size class (bytes)
	free  []*chunk            // free chunks of the large segments, in no order
	stats AllocStats
	// smallCached is the bytes of the small free lists (part of stats.Cached).
	smallCached int64
	tick        int64 // counts chunks made free (their idle order)
	// Headroom is the bytes the cache may hold beyond the allocated peak before a new segment
	// first returns idle segments to the driver; < 0 never does (only out-of-memory does).
	// 128 MiB unless FINLORA_ALLOC_HEADROOM_MIB says otherwise at Open.
	Headroom int64
	// Limit, when > 0, caps Reserved (for tests of the out-of-memory path).
	Limit int64
}

// DefaultHeadroom is Allocator.Headroom's default (bytes).
const DefaultHeadroom = 128 << 20

// smallMax is the largest size class (bytes) of the small free lists; larger blocks live in
// segments.
const smallMax = 1 << 20

// chunk is a range of a large segment, free or held by one Block. A segment is the list of its
// chunks linked by address; a chunk with neither neighbour is a whole segment.
type chunk struct {
	ptr        uintptr // device address
	size       int64   // bytes, a multiple of 2 MiB
	prev, next *chunk  // the chunks of the same segment just below and above (nil at its ends)
	idx        int     // index in Allocator.free while free, -1 while held
	freed      int64   // Allocator.tick when it was made free
}

func (c *chunk) whole() bool { return c.prev == nil && c.next == nil }

func newAllocator(d *Device) *Allocator {
	a := newAllocatorOn(driverMemory{d})
	if v := os.Getenv("FINLORA_ALLOC_HEADROOM_MIB"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			a.Headroom = n << 20
		}
	}
	return a
}

func newAllocatorOn(m deviceMemory) *Allocator {
	return &Allocator{mem: m, small: map[int64][]uintptr{}, Headroom: DefaultHeadroom}
}

// sizeClass is the bytes reserved for a request of n bytes.
func sizeClass(n int64) int64 {
	if n <= 0 {
		return 512
	}
	if n <= smallMax {
		return (n + 511) &^ 511
	}
	return (n + (2<<20 - 1)) &^ (2<<20 - 1)
}

// Get returns a block of at least n bytes (contents undefined), owned by the caller until Put. On
// out-of-memory it releases the cache and retries once, then returns an *OOMError.
func (a *Allocator) Get(n int64, p Purpose) (*Block, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sz := sizeClass(n)
	blk := &Block{Bytes: n, size: sz, Purpose: p}
	if sz <= smallMax {
		if l := a.small[sz]; len(l) > 0 {
			blk.Ptr = l[len(l)-1]
			a.small[sz] = l[:len(l)-1]
			a.stats.Cached -= sz
			a.smallCached -= sz
			a.stats.Hits++
		} else {
			ptr, err := a.grow(n, sz, p)
			if err != nil {
				return nil, err
			}
			blk.Ptr = ptr
		}
	} else {
		c := a.bestFit(sz, p == Workspace)
		if c != nil {
			a.stats.Hits++
		} else {
			if err := a.trim(n, sz); err != nil {
				return nil, fmt.Errorf("cuda: allocate %d bytes for %s: %w", n, p, err)
			}
			ptr, err := a.grow(n, sz, p)
			if err != nil {
				return nil, err
			}
			c = &chunk{ptr: ptr, size: sz, idx: -1}
			a.addFree(c)
		}
		a.take(c, sz)
		blk.Ptr, blk.c = c.ptr, c
	}
	s := &a.stats
	s.Current[p] += n
	s.Peak[p] = max(s.Peak[p], s.Current[p])
	s.Total += n
	s.PeakAll = max(s.PeakAll, s.Total)
	s.Blocks++
	return blk, nil
}

// grow obtains sz bytes from the driver for a request of n bytes of purpose p; on out-of-memory it
// returns the cache to the driver and tries once more, then returns an *OOMError.
func (a *Allocator) grow(n, sz int64, p Purpose) (uintptr, error) {
	ptr, err := a.driverAlloc(sz)
	if err != nil && isOOM(err) && a.stats.Cached > 0 {
		if rerr := a.releaseCache(); rerr != nil {
			return 0, fmt.Errorf("cuda: allocate %d bytes for %s: release the cache after %v: %w", n, p, err, rerr)
		}
		ptr, err = a.driverAlloc(sz)
	}
	if err != nil {
		if !isOOM(err) {
			return 0, fmt.Errorf("cuda: allocate %d bytes for %s: %w", n, p, err)
		}
		free, total, _ := a.mem.info()
		return 0, &OOMError{Requested: n, InUse: a.stats.Total, Reserved: a.stats.Reserved, Free: free, Total: total, Purpose: p, Err: err}
	}
	return ptr, nil
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

// driverFree returns the sz bytes at ptr (a whole segment or a small block, already off the cache's
// lists and counts) to the driver. The caller has waited for the stream since the block's last Put.
func (a *Allocator) driverFree(ptr uintptr, sz int64) error {
	err := a.mem.free(ptr)
	a.stats.Frees++
	a.stats.Reserved -= sz
	return err
}

// bestFit returns the free chunk of exactly sz bytes, or with split set the smallest one of at
// least sz bytes; the lowest address among equals; nil if none.
func (a *Allocator) bestFit(sz int64, split bool) *chunk {
	var best *chunk
	for _, c := range a.free {
		if (c.size == sz || split && c.size > sz) && (best == nil || c.size < best.size || c.size == best.size && c.ptr < best.ptr) {
			best = c
		}
	}
	return best
}

func (a *Allocator) addFree(c *chunk) {
	c.idx = len(a.free)
	a.free = append(a.free, c)
	a.tick++
	c.freed = a.tick
	a.stats.Cached += c.size
}

func (a *Allocator) removeFree(c *chunk) {
	last := a.free[len(a.free)-1]
	a.free[c.idx] = last
	last.idx = c.idx
	a.free = a.free[:len(a.free)-1]
	c.idx = -1
	a.stats.Cached -= c.size
}

// take marks the free chunk c held, splitting off what is beyond sz bytes as a free chunk.
func (a *Allocator) take(c *chunk, sz int64) {
	a.removeFree(c)
	if c.size > sz {
		rest := &chunk{ptr: c.ptr + uintptr(sz), size: c.size - sz, prev: c, next: c.next}
		if c.next != nil {
			c.next.prev = rest
		}
		c.next = rest
		c.size = sz
		a.addFree(rest)
	}
}

// trim makes room for a new segment of sz bytes for a request of n bytes that no free chunk
// serves: when the segment would take Reserved, less the small cache, above the allocated peak
// (n included) plus Headroom, it returns segments that are entirely free to the driver, the longest
// idle first, until it would not or none is left. It waits for the stream first, since queued
// kernels may still read the blocks last Put in them.
func (a *Allocator) trim(n, sz int64) error {
	if a.Headroom < 0 {
		return nil
	}
	excess := a.stats.Reserved - a.smallCached + sz - (max(a.stats.PeakAll, a.stats.Total+n) + a.Headroom)
	if excess <= 0 {
		return nil
	}
	var idle []*chunk
	for _, c := range a.free {
		if c.whole() {
			idle = append(idle, c)
		}
	}
	if len(idle) == 0 {
		return nil
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].freed < idle[j].freed })
	if err := a.mem.sync(); err != nil {
		return fmt.Errorf("wait for the stream before returning idle segments: %w", err)
	}
	a.stats.Trims++
	for _, c := range idle {
		if excess <= 0 {
			break
		}
		a.removeFree(c)
		if err := a.driverFree(c.ptr, c.size); err != nil {
			return fmt.Errorf("return an idle segment of %d bytes: %w", c.size, err)
		}
		excess -= c.size
	}
	return nil
}

// Put returns a block to the cache; the caller must not use it afterwards (queued kernels may, the
// stream orders them before the block's next user). Putting a block twice is a broken invariant
// (panics).
func (a *Allocator) Put(b *Block) {
	if b == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b.Ptr == 0 {
		panic("cuda: block freed twice")
	}
	if c := b.c; c != nil {
		if p := c.prev; p != nil && p.idx >= 0 { // merge into the free chunk below
			a.removeFree(p)
			p.size += c.size
			p.next = c.next
			if c.next != nil {
				c.next.prev = p
			}
			c = p
		}
		if nx := c.next; nx != nil && nx.idx >= 0 { // absorb the free chunk above
			a.removeFree(nx)
			c.size += nx.size
			c.next = nx.next
			if nx.next != nil {
				nx.next.prev = c
			}
		}
		a.addFree(c)
		b.c = nil
	} else {
		a.small[b.size] = append(a.small[b.size], b.Ptr)
		a.stats.Cached += b.size
		a.smallCached += b.size
	}
	a.stats.Current[b.Purpose] -= b.Bytes
	a.stats.Total -= b.Bytes
	a.stats.Blocks--
	b.Ptr = 0
}

// ReleaseCache returns the cached small blocks and the segments entirely free to the driver, after
// waiting for the stream. Free ranges of segments that also hold live blocks stay cached.
func (a *Allocator) ReleaseCache() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.releaseCache()
}

func (a *Allocator) releaseCache() error {
	if err := a.mem.sync(); err != nil {
		return fmt.Errorf("cuda: release the cache: wait for the stream: %w", err)
	}
	var first error
	note := func(err error, what string, n int64) {
		if err != nil && first == nil {
			first = fmt.Errorf("cuda: release the cache: free %s of %d bytes: %w", what, n, err)
		}
	}
	sizes := make([]int64, 0, len(a.small))
	for s := range a.small {
		sizes = append(sizes, s)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, s := range sizes {
		for _, p := range a.small[s] {
			a.stats.Cached -= s
			a.smallCached -= s
			note(a.driverFree(p, s), "a block", s)
		}
		delete(a.small, s)
	}
	for i := 0; i < len(a.free); {
		c := a.free[i]
		if !c.whole() {
			i++
			continue
		}
		a.removeFree(c) // moves the last one to i
		note(a.driverFree(c.ptr, c.size), "a segment", c.size)
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
