package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Device is one GPU opened for use: its primary context, one stream all work is ordered on, and
// the caching allocator. All methods lock the calling goroutine to its OS thread and make the
// context current for the duration of the call, so a Device may be used from any goroutine (one at
// a time: the Backend serializes its ops with a mutex).
type Device struct {
	Info   DeviceInfo
	drv    *driverAPI
	ctx    uintptr // CUcontext (primary)
	stream uintptr // CUstream
	Alloc  *Allocator

	conv       [convKeep]convCache // Gemm operand conversions kept, newest first (conv.go)
	nextWrites *span               // the only range the next kernel launch writes, when declared (conv.go)
	pos        posValid            // the last position tensor Rope found valid (posvalid.go)
}

var (
	devMu   sync.Mutex
	devices = map[int]*Device{}
)

// OpenDevice retains GPU index's primary context and creates its stream, once per process (later
// calls return the same Device). Errors wrap ErrNoCUDA when there is no driver or no such GPU.
func OpenDevice(index int) (*Device, error) {
	devMu.Lock()
	defer devMu.Unlock()
	if d, ok := devices[index]; ok {
		return d, nil
	}
	infos, err := Devices()
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= len(infos) {
		return nil, fmt.Errorf("cuda: no GPU %d (the driver sees %d): %w", index, len(infos), ErrNoCUDA)
	}
	d := &Device{Info: infos[index], drv: drv}
	var dev int32
	if err := drv.call("cuDeviceGet", uintptr(unsafe.Pointer(&dev)), uintptr(index)); err != nil {
		return nil, err
	}
	if err := drv.call("cuDevicePrimaryCtxRetain", uintptr(unsafe.Pointer(&d.ctx)), uintptr(dev)); err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: %w", index, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := drv.call("cuCtxSetCurrent", d.ctx); err != nil {
		return nil, err
	}
	// CU_STREAM_NON_BLOCKING (1): no implicit sync with the legacy default stream.
	if err := drv.call("cuStreamCreate", uintptr(unsafe.Pointer(&d.stream)), 1); err != nil {
		return nil, err
	}
	d.Alloc = newAllocator(d)
	devices[index] = d
	return d, nil
}

// enter locks the goroutine to its thread and makes the context current; the returned function
// undoes the lock. Every entry point that calls the driver brackets its calls with it.
func (d *Device) enter() func() {
	runtime.LockOSThread()
	if err := d.drv.call("cuCtxSetCurrent", d.ctx); err != nil {
		panic(fmt.Sprintf("cuda: cuCtxSetCurrent on a retained primary context failed: %v", err))
	}
	return runtime.UnlockOSThread
}

// Sync waits until all work queued on the device's stream has finished; an error from an earlier
// asynchronous kernel surfaces here.
func (d *Device) Sync() error {
	defer d.enter()()
	return d.drv.call("cuStreamSynchronize", d.stream)
}

// MemInfo returns the device's free and total memory in bytes (cuMemGetInfo).
func (d *Device) MemInfo() (free, total int64, err error) {
	defer d.enter()()
	var f, t uint64
	err = d.drv.call("cuMemGetInfo_v2", uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t)))
	return int64(f), int64(t), err
}

// Event is a CUDA event on the device's stream, for timing.
type Event struct {
	d *Device
	e uintptr
}

// NewEvent creates an event (with timing). Destroy it with Destroy.
func (d *Device) NewEvent() (*Event, error) {
	defer d.enter()()
	ev := &Event{d: d}
	if err := d.drv.call("cuEventCreate", uintptr(unsafe.Pointer(&ev.e)), 0); err != nil {
		return nil, err
	}
	return ev, nil
}

// Record records the event on the device's stream.
func (e *Event) Record() error {
	defer e.d.enter()()
	return e.d.drv.call("cuEventRecord", e.e, e.d.stream)
}

// Since waits for e and returns the milliseconds elapsed from start to e.
func (e *Event) Since(start *Event) (float32, error) {
	defer e.d.enter()()
	if err := e.d.drv.call("cuEventSynchronize", e.e); err != nil {
		return 0, err
	}
	var ms float32
	err := e.d.drv.call("cuEventElapsedTime", uintptr(unsafe.Pointer(&ms)), start.e, e.e)
	return ms, err
}

// Destroy releases the event.
func (e *Event) Destroy() error {
	defer e.d.enter()()
	return e.d.drv.call("cuEventDestroy_v2", e.e)
}

// memcpy helpers; the caller has entered the context.

func (d *Device) htod(dst uintptr, src unsafe.Pointer, n int) error {
	if n == 0 {
		return nil
	}
	d.wrote(dst, int64(n))
	return d.drv.call("cuMemcpyHtoDAsync_v2", dst, uintptr(src), uintptr(n), d.stream)
}

// dtoh copies and waits (pageable destination: the call returns when the copy is done, and the
// stream sync makes earlier kernels' errors visible here).
func (d *Device) dtoh(dst unsafe.Pointer, src uintptr, n int) error {
	if n == 0 {
		return d.drv.call("cuStreamSynchronize", d.stream)
	}
	if err := d.drv.call("cuMemcpyDtoHAsync_v2", uintptr(dst), src, uintptr(n), d.stream); err != nil {
		return err
	}
	return d.drv.call("cuStreamSynchronize", d.stream)
}

func (d *Device) dtod(dst, src uintptr, n int) error {
	if n == 0 || dst == src {
		return nil
	}
	d.wrote(dst, int64(n))
	return d.drv.call("cuMemcpyDtoDAsync_v2", dst, src, uintptr(n), d.stream)
}

func (d *Device) memset0(dst uintptr, n int) error {
	if n == 0 {
		return nil
	}
	d.wrote(dst, int64(n))
	return d.drv.call("cuMemsetD8Async", dst, 0, uintptr(n), d.stream)
}
