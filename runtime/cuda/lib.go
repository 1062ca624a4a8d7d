package cuda

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrNoCUDA is wrapped by every error that means "no usable CUDA here": a library that is not
// found, a driver that does not start, or no GPU. Callers (tensor.Default, finlora doctor) test it
// with errors.Is and fall back to the CPU backend.
var ErrNoCUDA = errors.New("cuda: not available")

// Lib is one dynamically loaded shared library.
type Lib struct {
	Name string  // the soname that was opened ("libcuda.so.1")
	Path string  // the file it resolved to, read back from /proc/self/maps (or the path opened)
	How  string  // where it was found: "FINLORA_CUDA_PATH", "loader default", "CUDA_HOME", ...
	h    uintptr // dlopen handle
}

// sym returns the address of symbol name, or an error naming the library.
func (l *Lib) sym(name string) (uintptr, error) {
	p, err := purego.Dlsym(l.h, name)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("cuda: symbol %s not found in %s (%s): %v", name, l.Name, l.Path, err)
	}
	return p, nil
}

// searchDir is one directory of the library search with the reason it is searched.
type searchDir struct {
	dir, how string
}

// SearchPath lists the directories searched for the CUDA libraries after the env override and
// before/after the loader's default, in order (see openLib): $FINLORA_CUDA_PATH (a directory or a
// list separated by ':'), then the dynamic loader's own search (LD_LIBRARY_PATH, ldconfig), then
// $CUDA_HOME/lib64, /usr/local/cuda/lib64, and Python site-packages nvidia/*/lib and nvidia/cu13/lib.
func searchDirs() (override, rest []searchDir) {
	if v := os.Getenv("FINLORA_CUDA_PATH"); v != "" {
		for _, d := range filepath.SplitList(v) {
			if d != "" {
				override = append(override, searchDir{d, "FINLORA_CUDA_PATH"})
			}
		}
	}
	for _, env := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if v := os.Getenv(env); v != "" {
			rest = append(rest, searchDir{filepath.Join(v, "lib64"), env}, searchDir{filepath.Join(v, "lib"), env})
		}
	}
	rest = append(rest, searchDir{"/usr/local/cuda/lib64", "/usr/local/cuda"})
	for _, sp := range sitePackages() {
		for _, pat := range []string{"nvidia/cu13/lib", "nvidia/cu12/lib", "nvidia/*/lib"} {
			ms, _ := filepath.Glob(filepath.Join(sp, pat))
			sort.Strings(ms)
			for _, m := range ms {
				rest = append(rest, searchDir{m, "python site-packages"})
			}
		}
	}
	return override, dedupe(rest)
}

func dedupe(ds []searchDir) []searchDir {
	seen := map[string]bool{}
	var out []searchDir
	for _, d := range ds {
		if !seen[d.dir] {
			seen[d.dir] = true
			out = append(out, d)
		}
	}
	return out
}

// sitePackages returns the Python package directories that may hold pip's CUDA wheels.
func sitePackages() []string {
	var pats []string
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		pats = append(pats, filepath.Join(v, "lib/python3*/site-packages"))
	}
	if v := os.Getenv("CONDA_PREFIX"); v != "" {
		pats = append(pats, filepath.Join(v, "lib/python3*/site-packages"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		pats = append(pats, filepath.Join(h, ".local/lib/python3*/site-packages"))
	}
	pats = append(pats, "/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages")
	var out []string
	for _, p := range pats {
		ms, _ := filepath.Glob(p)
		out = append(out, ms...)
	}
	return out
}

// openLib opens the first of names (sonames, most preferred first) found along the search: the
// override directories, the loader's default, then the fixed directories. The error lists every
// place tried.
func openLib(names ...string) (*Lib, error) {
	override, rest := searchDirs()
	var tried []string
	var lastErr error
	try := func(path, name, how string) *Lib {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			lastErr = err
			return nil
		}
		l := &Lib{Name: name, Path: path, How: how, h: h}
		if p := mappedPath(name); p != "" {
			l.Path = p
		}
		return l
	}
	inDirs := func(dirs []searchDir) *Lib {
		for _, d := range dirs {
			for _, n := range names {
				p := filepath.Join(d.dir, n)
				if _, err := os.Stat(p); err != nil {
					continue
				}
				tried = append(tried, p)
				if l := try(p, n, d.how); l != nil {
					return l
				}
			}
		}
		return nil
	}
	if l := inDirs(override); l != nil {
		return l, nil
	}
	for _, n := range names {
		if l := try(n, n, "loader default"); l != nil {
			return l, nil
		}
	}
	tried = append(tried, "loader default (LD_LIBRARY_PATH, ldconfig)")
	if l := inDirs(rest); l != nil {
		return l, nil
	}
	var dirs []string
	for _, d := range append(override, rest...) {
		dirs = append(dirs, d.dir)
	}
	msg := fmt.Sprintf("%s not found (searched FINLORA_CUDA_PATH, the loader default (LD_LIBRARY_PATH, ldconfig), %s)",
		strings.Join(names, " / "), strings.Join(dirs, ", "))
	if lastErr != nil && len(tried) > 1 {
		msg += fmt.Sprintf("; last dlopen error: %v", lastErr)
	}
	return nil, fmt.Errorf("cuda: %s: %w", msg, ErrNoCUDA)
}

// mappedPath finds the file a loaded library came from in /proc/self/maps ("" if unknown).
func mappedPath(soname string) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	base := soname
	if i := strings.Index(base, ".so"); i > 0 {
		base = base[:i+3]
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		p := line[i:]
		if strings.HasPrefix(filepath.Base(p), base) {
			return p
		}
	}
	return ""
}

// cstr returns a NUL-terminated copy of s for C.
func cstr(s string) *byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0]
}

// gostr reads a NUL-terminated C string.
func gostr(p uintptr) string {
	if p == 0 {
		return ""
	}
	var b []byte
	for i := uintptr(0); i < 4096; i++ {
		c := *(*byte)(ptrAdd(p, i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// ptrAdd returns C memory address p+off as a pointer (the address is not Go memory, so the
// conversion through a variable is safe).
func ptrAdd(p, off uintptr) unsafe.Pointer {
	q := p + off
	return *(*unsafe.Pointer)(unsafe.Pointer(&q))
}
