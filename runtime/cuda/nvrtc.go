package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// This file binds NVRTC (libnvrtc.so.13 or .12), the run-time CUDA C compiler.

type nvrtcAPI struct {
	lib          *Lib
	syms         map[string]uintptr
	Major, Minor int
}

var nvrtcSyms = []string{
	"nvrtcVersion", "nvrtcCreateProgram", "nvrtcCompileProgram", "nvrtcGetProgramLogSize",
	"nvrtcGetProgramLog", "nvrtcGetCUBINSize", "nvrtcGetCUBIN", "nvrtcDestroyProgram", "nvrtcGetErrorString",
}

var (
	nvrtcOnce sync.Once
	nvrtcLib  *nvrtcAPI
	nvrtcErr  error
)

func loadNVRTC() (*nvrtcAPI, error) {
	nvrtcOnce.Do(func() {
		lib, err := openLib("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")
		if err != nil {
			nvrtcErr = err
			return
		}
		preloadBuiltins(lib)
		n := &nvrtcAPI{lib: lib, syms: map[string]uintptr{}}
		for _, s := range nvrtcSyms {
			p, err := lib.sym(s)
			if err != nil {
				nvrtcErr = err
				return
			}
			n.syms[s] = p
		}
		var ma, mi int32
		if err := n.call("nvrtcVersion", uintptr(unsafe.Pointer(&ma)), uintptr(unsafe.Pointer(&mi))); err != nil {
			nvrtcErr = err
			return
		}
		n.Major, n.Minor = int(ma), int(mi)
		nvrtcLib = n
	})
	return nvrtcLib, nvrtcErr
}

// preloadBuiltins opens libnvrtc-builtins from libnvrtc's own directory: NVRTC dlopens it by
// soname at compile time, which fails when that directory is not on the loader's path (pip wheels,
// FINLORA_CUDA_PATH). Once loaded, the soname lookup finds it.
func preloadBuiltins(lib *Lib) {
	ms, _ := filepath.Glob(filepath.Join(filepath.Dir(lib.Path), "libnvrtc-builtins.so.*"))
	for _, m := range ms {
		if strings.Contains(filepath.Base(m), ".alt.") {
			continue
		}
		if _, err := purego.Dlopen(m, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			return
		}
	}
}

//go:uintptrescapes
func (n *nvrtcAPI) call(name string, args ...uintptr) error {
	r, _, _ := purego.SyscallN(n.syms[name], args...)
	if int32(r) == 0 {
		return nil
	}
	s, _, _ := purego.SyscallN(n.syms["nvrtcGetErrorString"], r)
	return &Error{Call: name, Code: int(int32(r)), Name: gostr(s), Msg: "NVRTC"}
}

// compile compiles CUDA C source to a CUBIN for arch ("sm_90"); the error carries the log.
func (n *nvrtcAPI) compile(name, src string, opts []string) ([]byte, error) {
	var prog uintptr
	csrc, cname := cstr(src), cstr(name)
	if err := n.call("nvrtcCreateProgram", uintptr(unsafe.Pointer(&prog)), uintptr(unsafe.Pointer(csrc)),
		uintptr(unsafe.Pointer(cname)), 0, 0, 0); err != nil {
		return nil, err
	}
	defer n.call("nvrtcDestroyProgram", uintptr(unsafe.Pointer(&prog)))
	copts := make([]*byte, len(opts))
	for i, o := range opts {
		copts[i] = cstr(o)
	}
	cerr := n.call("nvrtcCompileProgram", prog, uintptr(len(opts)), uintptr(unsafe.Pointer(&copts[0])))
	var logSize uintptr
	_ = n.call("nvrtcGetProgramLogSize", prog, uintptr(unsafe.Pointer(&logSize)))
	var log string
	if logSize > 1 {
		buf := make([]byte, logSize)
		if n.call("nvrtcGetProgramLog", prog, uintptr(unsafe.Pointer(&buf[0]))) == nil {
			log = string(buf[:logSize-1])
		}
	}
	if cerr != nil {
		return nil, fmt.Errorf("cuda: compile %s: %w\n%s", name, cerr, log)
	}
	if log != "" && os.Getenv("FINLORA_NVRTC_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "nvrtc %s:\n%s\n", name, log)
	}
	var size uintptr
	if err := n.call("nvrtcGetCUBINSize", prog, uintptr(unsafe.Pointer(&size))); err != nil {
		return nil, err
	}
	cubin := make([]byte, size)
	if err := n.call("nvrtcGetCUBIN", prog, uintptr(unsafe.Pointer(&cubin[0]))); err != nil {
		return nil, err
	}
	return cubin, nil
}

// NVRTCVersion returns the loaded NVRTC's version and library.
func NVRTCVersion() (major, minor int, lib *Lib, err error) {
	n, err := loadNVRTC()
	if err != nil {
		return 0, 0, nil, err
	}
	return n.Major, n.Minor, n.lib, nil
}
