package cuda

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// This file binds the CUDA driver API (libcuda.so.1). Every call goes through drv.call, which turns
// a non-zero CUresult into an *Error naming the call (cuGetErrorName/cuGetErrorString).

// Error is a failed CUDA, NVRTC or cuBLASLt call.
type Error struct {
	Call string // the C function, e.g. "cuMemAlloc_v2"
	Code int    // its status code
	Name string // the status name, e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Msg  string // the library's description
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s failed: %s (%d): %s", e.Call, e.Name, e.Code, e.Msg)
}

// CUDA_ERROR_OUT_OF_MEMORY.
const cudaErrorOutOfMemory = 2

// driverSyms are the driver entry points used, by C name.
var driverSyms = []string{
	"cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName",
	"cuDeviceTotalMem_v2", "cuDeviceGetAttribute", "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRelease_v2",
	"cuCtxSetCurrent", "cuCtxSynchronize", "cuMemAlloc_v2", "cuMemFree_v2", "cuMemGetInfo_v2",
	"cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoDAsync_v2", "cuMemsetD8Async", "cuMemsetD32Async",
	"cuStreamCreate", "cuStreamSynchronize", "cuStreamDestroy_v2", "cuEventCreate", "cuEventRecord",
	"cuEventSynchronize", "cuEventElapsedTime", "cuEventDestroy_v2", "cuModuleLoadData", "cuModuleGetFunction",
	"cuModuleUnload", "cuLaunchKernel", "cuFuncSetAttribute", "cuGetErrorName", "cuGetErrorString",
}

// optionalDriverSyms are entry points used when the driver has them: cuLaunchKernelEx (CUDA 12:
// launch attributes such as programmatic dependent launch; without it kernels launch plainly).
var optionalDriverSyms = []string{"cuLaunchKernelEx"}

// driverAPI is the loaded libcuda with its symbol table.
type driverAPI struct {
	lib  *Lib
	syms map[string]uintptr
}

var (
	drvOnce sync.Once
	drv     *driverAPI
	drvErr  error
)

// loadDriver opens libcuda.so.1, resolves the symbols and runs cuInit(0), once per process.
func loadDriver() (*driverAPI, error) {
	drvOnce.Do(func() {
		lib, err := openLib("libcuda.so.1", "libcuda.so")
		if err != nil {
			drvErr = fmt.Errorf("%w (is an NVIDIA driver installed?)", err)
			return
		}
		d := &driverAPI{lib: lib, syms: map[string]uintptr{}}
		for _, s := range driverSyms {
			p, err := lib.sym(s)
			if err != nil {
				drvErr = err
				return
			}
			d.syms[s] = p
		}
		for _, s := range optionalDriverSyms {
			if p, err := lib.sym(s); err == nil {
				d.syms[s] = p
			}
		}
		if err := d.call("cuInit", 0); err != nil {
			drvErr = fmt.Errorf("%w: %w", err, ErrNoCUDA)
			return
		}
		drv = d
	})
	return drv, drvErr
}

// call invokes a driver function and checks its CUresult.
//
//go:uintptrescapes
func (d *driverAPI) call(name string, args ...uintptr) error {
	p, ok := d.syms[name]
	if !ok {
		panic("cuda: driver symbol not bound: " + name)
	}
	if done := traced(name); done != nil {
		defer done()
	}
	r, _, _ := purego.SyscallN(p, args...)
	if int32(r) == 0 {
		return nil
	}
	return d.errorOf(name, int(int32(r)))
}

func (d *driverAPI) errorOf(call string, code int) error {
	var pn, ps uintptr
	purego.SyscallN(d.syms["cuGetErrorName"], uintptr(code), uintptr(unsafe.Pointer(&pn)))
	purego.SyscallN(d.syms["cuGetErrorString"], uintptr(code), uintptr(unsafe.Pointer(&ps)))
	name, msg := gostr(pn), gostr(ps)
	if name == "" {
		name = "CUDA_ERROR_UNKNOWN"
	}
	return &Error{Call: call, Code: code, Name: name, Msg: msg}
}

// isOOM reports whether err is a CUDA out-of-memory status.
func isOOM(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == cudaErrorOutOfMemory && e.Call == "cuMemAlloc_v2"
}

// Device attributes used (CUdevice_attribute).
const (
	attrMultiprocessorCount      = 16
	attrComputeCapabilityMajor   = 75
	attrComputeCapabilityMinor   = 76
	attrMaxSharedMemoryPerBlockO = 97 // opt-in maximum
	attrL2CacheSize              = 38
	attrClockRate                = 13 // kHz
)

// funcAttrMaxDynamicSharedSize is CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
const funcAttrMaxDynamicSharedSize = 8

// launchAttrProgrammaticSerialization is CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
const launchAttrProgrammaticSerialization = 6

// launchAttr is CUlaunchAttribute: an attribute id and its value (a 64-byte union).
type launchAttr struct {
	id  uint32
	_   uint32
	val [64]byte
}

// launchConfig is CUlaunchConfig (cuLaunchKernelEx's first argument), C layout.
type launchConfig struct {
	gridX, gridY, gridZ    uint32
	blockX, blockY, blockZ uint32
	sharedMem              uint32
	_                      uint32
	stream                 uintptr
	attrs                  *launchAttr
	numAttrs               uint32
	_                      uint32
}

// DriverVersion returns the CUDA driver API version as major, minor (e.g. 13, 0).
func DriverVersion() (major, minor int, err error) {
	d, err := loadDriver()
	if err != nil {
		return 0, 0, err
	}
	var v int32
	if err := d.call("cuDriverGetVersion", uintptr(unsafe.Pointer(&v))); err != nil {
		return 0, 0, err
	}
	return int(v) / 1000, int(v) % 1000 / 10, nil
}

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	Index        int
	Name         string // "NVIDIA H100 80GB HBM3"
	TotalMemory  int64  // bytes
	Major, Minor int    // compute capability
	SMs          int    // streaming multiprocessors
	L2Bytes      int
	ClockKHz     int
}

// Arch is the NVRTC architecture name, "sm_90" for compute capability 9.0.
func (i DeviceInfo) Arch() string { return fmt.Sprintf("sm_%d%d", i.Major, i.Minor) }

// Devices lists the GPUs the driver sees. With no driver it returns an error wrapping ErrNoCUDA;
// with a driver and no GPU, an empty list.
func Devices() ([]DeviceInfo, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	var n int32
	if err := d.call("cuDeviceGetCount", uintptr(unsafe.Pointer(&n))); err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, n)
	for i := 0; i < int(n); i++ {
		info, err := d.deviceInfo(i)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (d *driverAPI) deviceInfo(i int) (DeviceInfo, error) {
	var dev int32
	if err := d.call("cuDeviceGet", uintptr(unsafe.Pointer(&dev)), uintptr(i)); err != nil {
		return DeviceInfo{}, err
	}
	name := make([]byte, 256)
	if err := d.call("cuDeviceGetName", uintptr(unsafe.Pointer(&name[0])), 256, uintptr(dev)); err != nil {
		return DeviceInfo{}, err
	}
	var total uint64
	if err := d.call("cuDeviceTotalMem_v2", uintptr(unsafe.Pointer(&total)), uintptr(dev)); err != nil {
		return DeviceInfo{}, err
	}
	attr := func(a int) (int, error) {
		var v int32
		err := d.call("cuDeviceGetAttribute", uintptr(unsafe.Pointer(&v)), uintptr(a), uintptr(dev))
		return int(v), err
	}
	info := DeviceInfo{Index: i, Name: gostr(uintptr(unsafe.Pointer(&name[0]))), TotalMemory: int64(total)}
	var err error
	if info.Major, err = attr(attrComputeCapabilityMajor); err != nil {
		return info, err
	}
	if info.Minor, err = attr(attrComputeCapabilityMinor); err != nil {
		return info, err
	}
	if info.SMs, err = attr(attrMultiprocessorCount); err != nil {
		return info, err
	}
	if info.L2Bytes, err = attr(attrL2CacheSize); err != nil {
		return info, err
	}
	info.ClockKHz, _ = attr(attrClockRate)
	return info, nil
}

// DriverLib returns the loaded libcuda (nil and the error if it could not be loaded).
func DriverLib() (*Lib, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	return d.lib, nil
}
