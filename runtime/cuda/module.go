package cuda

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"
)

// Kernels are CUDA C files in kernels/, embedded in the binary and compiled by NVRTC the first time
// one of their kernels is launched on a device, for that device's arch. The CUBIN is cached on disk
// under $FINLORA_CACHE (or the user cache dir, ~/.cache/finlora/kernels) keyed by a hash of the
// file's source, the options, the arch and the NVRTC version.

//go:embed kernels/*.cu kernels/*.cuh
var kernelFS embed.FS

// nvrtcOptions are the compile options besides the arch.
var nvrtcOptions = []string{"--std=c++17", "-default-device", "-lineinfo"}

var kernelDecl = regexp.MustCompile(`extern\s+"C"\s+__global__\s+(?:__launch_bounds__\([^)]*\)\s+)?void\s+(\w+)\s*\(`)

// kernelIndex maps each kernel name to its file; built once from the embedded sources.
var kernelIndex = sync.OnceValues(func() (map[string]string, error) {
	idx := map[string]string{}
	files, err := fs.Glob(kernelFS, "kernels/*.cu")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		src, err := kernelFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range kernelDecl.FindAllStringSubmatch(string(src), -1) {
			if prev, dup := idx[m[1]]; dup {
				return nil, fmt.Errorf("cuda: kernel %s defined in %s and %s", m[1], prev, f)
			}
			idx[m[1]] = f
		}
	}
	return idx, nil
})

// KernelNames lists the embedded kernels (for doctor and tests).
func KernelNames() []string {
	idx, _ := kernelIndex()
	names := make([]string, 0, len(idx))
	for n := range idx {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// source returns the file's source with its local #include "x.cuh" lines inlined (NVRTC gets one
// self-contained string, so no include paths are needed at run time).
func source(file string) (string, error) {
	raw, err := kernelFS.ReadFile(file)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#include \"") {
			inc := strings.Trim(strings.TrimPrefix(t, "#include"), " \"")
			sub, err := kernelFS.ReadFile("kernels/" + inc)
			if err != nil {
				return "", fmt.Errorf("cuda: %s: include %s: %w", file, inc, err)
			}
			fmt.Fprintf(&b, "// ---- %s\n%s\n// ---- end %s\n", inc, sub, inc)
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// CacheDir is where compiled kernels are kept: $FINLORA_CACHE/kernels, else the user cache dir's
// finlora/kernels.
func CacheDir() string {
	if v := os.Getenv("FINLORA_CACHE"); v != "" {
		return filepath.Join(v, "kernels")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "finlora", "kernels")
}

// module is one loaded kernel file.
type module struct {
	mod   uintptr
	funcs map[string]uintptr
}

// kernels holds a device's loaded modules.
type kernels struct {
	d *Device
	// wrap, when set, brackets each launch (the Backend's profiler).
	wrap    func(name string, f func() error) error
	mu      sync.Mutex
	modules map[string]*module // by file
	// dynShared is, per function, the dynamic shared memory its attribute allows beyond the
	// default (set on the first launch that needs it; guarded by mu).
	dynShared map[uintptr]int
	// CompileLog records, per file, whether it was compiled or read from the cache, and the time.
	CompileLog []string
	// pdl: launchDependent uses programmatic dependent launch (set at Open: the driver has
	// cuLaunchKernelEx, compute capability 9.0 or later, and not FINLORA_PDL=0).
	pdl bool
}

// function returns the CUfunction of kernel name, compiling or loading its file first if needed.
// The caller has entered the context.
func (k *kernels) function(name string) (uintptr, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	idx, err := kernelIndex()
	if err != nil {
		return 0, err
	}
	file, ok := idx[name]
	if !ok {
		return 0, fmt.Errorf("cuda: no kernel %q in kernels/*.cu", name)
	}
	m := k.modules[file]
	if m == nil {
		if m, err = k.load(file); err != nil {
			return 0, err
		}
		k.modules[file] = m
	}
	if f, ok := m.funcs[name]; ok {
		return f, nil
	}
	var f uintptr
	if err := k.d.drv.call("cuModuleGetFunction", uintptr(unsafe.Pointer(&f)), m.mod, uintptr(unsafe.Pointer(cstr(name)))); err != nil {
		return 0, fmt.Errorf("cuda: kernel %s in %s: %w", name, file, err)
	}
	m.funcs[name] = f
	return f, nil
}

func (k *kernels) load(file string) (*module, error) {
	src, err := source(file)
	if err != nil {
		return nil, err
	}
	cubin, how, path, err := compileCached(file, src, k.d.Info.Arch())
	if err != nil {
		return nil, err
	}
	m := &module{funcs: map[string]uintptr{}}
	if err := k.d.drv.call("cuModuleLoadData", uintptr(unsafe.Pointer(&m.mod)), uintptr(unsafe.Pointer(&cubin[0]))); err != nil {
		return nil, fmt.Errorf("cuda: load module %s (%s): %w", file, path, err)
	}
	runtime.KeepAlive(cubin)
	k.CompileLog = append(k.CompileLog, fmt.Sprintf("%s: %s (%s)", file, how, path))
	return m, nil
}

// compileCached returns the CUBIN of a kernel file for arch, from the disk cache when present
// (how = "cache") or compiled by NVRTC and then stored (how = "nvrtc").
func compileCached(file, src, arch string) (cubin []byte, how, path string, err error) {
	nv, err := loadNVRTC()
	if err != nil {
		return nil, "", "", err
	}
	opts := append([]string{"--gpu-architecture=" + arch}, nvrtcOptions...)
	if os.Getenv("FINLORA_NVRTC_VERBOSE") != "" {
		opts = append(opts, "--ptxas-options=-v") // resource report (registers, spills) on stderr
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00nvrtc %d.%d", file, src, strings.Join(opts, " "), arch, nv.Major, nv.Minor)
	key := hex.EncodeToString(h.Sum(nil))[:24]
	path = filepath.Join(CacheDir(), fmt.Sprintf("%s-%s-%s.cubin", strings.TrimSuffix(filepath.Base(file), ".cu"), arch, key))
	if cubin, err = os.ReadFile(path); err == nil && len(cubin) > 0 {
		return cubin, "cache", path, nil
	}
	if cubin, err = nv.compile(file, src, opts); err != nil {
		return nil, "", "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
		if os.WriteFile(tmp, cubin, 0o644) == nil {
			_ = os.Rename(tmp, path)
		}
	}
	return cubin, "nvrtc", path, nil
}

// CompileAll compiles (or finds in the cache) every kernel file for arch ("sm_90") without a GPU:
// NVRTC alone is needed. It returns one line per file.
func CompileAll(arch string) ([]string, error) {
	files, err := fs.Glob(kernelFS, "kernels/*.cu")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, f := range files {
		src, err := source(f)
		if err != nil {
			return lines, err
		}
		cubin, how, _, err := compileCached(f, src, arch)
		if err != nil {
			return lines, err
		}
		lines = append(lines, fmt.Sprintf("%s: %d bytes (%s)", f, len(cubin), how))
	}
	return lines, nil
}

// dim3 is a launch dimension.
type dim3 struct{ x, y, z int }

// launch queues kernel name on the device's stream. args are the kernel's parameters in order:
// uintptr (device pointers), int32/int (int), int64, float32; each is passed by address as
// cuLaunchKernel wants. The caller has entered the context.
func (k *kernels) launch(name string, grid, block dim3, shmem int, args ...any) error {
	return k.launchAs(false, name, grid, block, shmem, args...)
}

// launchDependent is launch with programmatic dependent launch (compute capability 9.0 and later,
// where the driver has cuLaunchKernelEx; elsewhere a plain launch): the kernel's blocks may start
// as the previous kernel's blocks exit, so its prologue (tables, weight loads) overlaps that
// kernel's tail. The kernel must run griddepcontrol.wait (kernels/common.cuh grid_dep_wait) before
// it reads anything the previous kernels wrote or writes anything they read.
func (k *kernels) launchDependent(name string, grid, block dim3, shmem int, args ...any) error {
	return k.launchAs(k.pdl, name, grid, block, shmem, args...)
}

// launchAs launches through the profiler's wrapper when one is set, as a dependent launch or not.
func (k *kernels) launchAs(pdl bool, name string, grid, block dim3, shmem int, args ...any) error {
	if k.wrap != nil {
		return k.wrap(name, func() error { return k.launchNow(name, grid, block, shmem, pdl, args...) })
	}
	return k.launchNow(name, grid, block, shmem, pdl, args...)
}

func (k *kernels) launchNow(name string, grid, block dim3, shmem int, pdl bool, args ...any) error {
	k.d.launched()        // the Gemm conversion cache (conv.go)
	k.d.posDropArgs(args) // Rope's validated positions (posvalid.go)
	f, err := k.function(name)
	if err != nil {
		return err
	}
	if grid.y == 0 {
		grid.y = 1
	}
	if grid.z == 0 {
		grid.z = 1
	}
	if block.y == 0 {
		block.y = 1
	}
	if block.z == 0 {
		block.z = 1
	}
	if grid.x <= 0 || grid.y > 65535 || grid.z > 65535 {
		if grid.x == 0 {
			return nil // nothing to do
		}
		return fmt.Errorf("cuda: launch %s: grid %v out of range", name, grid)
	}
	slots := make([]uint64, len(args)+1)
	ptrs := make([]uintptr, len(args)+1)
	for i, a := range args {
		switch v := a.(type) {
		case uintptr:
			slots[i] = uint64(v)
		case int:
			if v > math.MaxInt32 || v < math.MinInt32 {
				return fmt.Errorf("cuda: launch %s: int argument %d = %d overflows int32", name, i, v)
			}
			slots[i] = uint64(uint32(int32(v)))
		case int32:
			slots[i] = uint64(uint32(v))
		case int64:
			slots[i] = uint64(v)
		case float32:
			slots[i] = uint64(math.Float32bits(v))
		default:
			panic(fmt.Sprintf("cuda: launch %s: unsupported argument type %T", name, a))
		}
		ptrs[i] = uintptr(unsafe.Pointer(&slots[i]))
	}
	// Static plus dynamic shared memory beyond 48 KiB needs the function's opt-in (gemv4t: ~70 KiB,
	// all dynamic), so any dynamic request sets it (once per size).
	if shmem > 0 {
		k.mu.Lock()
		set := k.dynShared[f] >= shmem
		k.mu.Unlock()
		if !set {
			if err := k.d.drv.call("cuFuncSetAttribute", f, funcAttrMaxDynamicSharedSize, uintptr(shmem)); err != nil {
				return fmt.Errorf("cuda: launch %s with %d bytes of shared memory: %w", name, shmem, err)
			}
			k.mu.Lock()
			if k.dynShared == nil {
				k.dynShared = map[uintptr]int{}
			}
			k.dynShared[f] = shmem
			k.mu.Unlock()
		}
	}
	if pdl {
		// programmatic dependent launch: the kernel may start while the previous one on the
		// stream finishes; it runs griddepcontrol.wait before it reads that kernel's results
		attr := launchAttr{id: launchAttrProgrammaticSerialization}
		attr.val[0] = 1
		cfg := launchConfig{gridX: uint32(grid.x), gridY: uint32(grid.y), gridZ: uint32(grid.z), blockX: uint32(block.x),
			blockY: uint32(block.y), blockZ: uint32(block.z), sharedMem: uint32(shmem), stream: k.d.stream, attrs: &attr, numAttrs: 1}
		err = k.d.drv.call("cuLaunchKernelEx", uintptr(unsafe.Pointer(&cfg)), f, uintptr(unsafe.Pointer(&ptrs[0])), 0)
		runtime.KeepAlive(&attr)
		runtime.KeepAlive(&cfg)
	} else {
		err = k.d.drv.call("cuLaunchKernel", f, uintptr(grid.x), uintptr(grid.y), uintptr(grid.z),
			uintptr(block.x), uintptr(block.y), uintptr(block.z), uintptr(shmem), k.d.stream,
			uintptr(unsafe.Pointer(&ptrs[0])), 0)
	}
	runtime.KeepAlive(slots)
	runtime.KeepAlive(ptrs)
	if err != nil {
		return fmt.Errorf("cuda: launch %s grid %v block %v shared %d: %w", name, grid, block, shmem, err)
	}
	return nil
}
