package cuda

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// This file binds cuBLASLt (libcublasLt.so.13 or .12) for the matrix products.

type cublasLtAPI struct {
	lib     *Lib
	syms    map[string]uintptr
	Version int
}

var ltSyms = []string{
	"cublasLtCreate", "cublasLtDestroy", "cublasLtGetVersion",
	"cublasLtMatmulDescCreate", "cublasLtMatmulDescDestroy", "cublasLtMatmulDescSetAttribute",
	"cublasLtMatrixLayoutCreate", "cublasLtMatrixLayoutDestroy", "cublasLtMatmulPreferenceCreate",
	"cublasLtMatmulPreferenceDestroy", "cublasLtMatmulPreferenceSetAttribute", "cublasLtMatmulAlgoGetHeuristic",
	"cublasLtMatmul",
}

var (
	ltOnce sync.Once
	ltLib  *cublasLtAPI
	ltErr  error
)

func loadCublasLt() (*cublasLtAPI, error) {
	ltOnce.Do(func() {
		lib, err := openLib("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so")
		if err != nil {
			ltErr = err
			return
		}
		l := &cublasLtAPI{lib: lib, syms: map[string]uintptr{}}
		for _, s := range ltSyms {
			p, err := lib.sym(s)
			if err != nil {
				ltErr = err
				return
			}
			l.syms[s] = p
		}
		for _, s := range []string{"cublasLtGetStatusName", "cublasLtGetStatusString"} { // optional
			if p, err := lib.sym(s); err == nil {
				l.syms[s] = p
			}
		}
		v, _, _ := purego.SyscallN(l.syms["cublasLtGetVersion"])
		l.Version = int(v)
		ltLib = l
	})
	return ltLib, ltErr
}

//go:uintptrescapes
func (l *cublasLtAPI) call(name string, args ...uintptr) error {
	if done := traced(name); done != nil {
		defer done()
	}
	r, _, _ := purego.SyscallN(l.syms[name], args...)
	if int32(r) == 0 {
		return nil
	}
	e := &Error{Call: name, Code: int(int32(r)), Name: "CUBLAS_STATUS", Msg: "cuBLASLt"}
	if p := l.syms["cublasLtGetStatusName"]; p != 0 {
		n, _, _ := purego.SyscallN(p, r)
		e.Name = gostr(n)
	}
	if p := l.syms["cublasLtGetStatusString"]; p != 0 {
		s, _, _ := purego.SyscallN(p, r)
		e.Msg = gostr(s)
	}
	return e
}

// CublasLtVersion returns the loaded cuBLASLt version (e.g. 130000 for 13.0.0) and library.
func CublasLtVersion() (int, *Lib, error) {
	l, err := loadCublasLt()
	if err != nil {
		return 0, nil, err
	}
	return l.Version, l.lib, nil
}

// cuBLAS / CUDA enums used.
const (
	cudaR32F  = 0
	cudaR16F  = 2
	cudaR16BF = 14

	computeType32F         = 68 // CUBLAS_COMPUTE_32F
	computeType32FFastTF32 = 77 // CUBLAS_COMPUTE_32F_FAST_TF32: float32 operands rounded to TF32 on the tensor cores

	opN = 0
	opT = 1

	descComputeType = 0 // CUBLASLT_MATMUL_DESC_COMPUTE_TYPE
	descScaleType   = 1
	descTransA      = 3
	descTransB      = 4

	prefMaxWorkspace = 1 // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES

	heuristicResultSize = 96 // sizeof(cublasLtMatmulHeuristicResult_t)
)

// gemmKey identifies a cached matmul plan.
type gemmKey struct {
	m, n, k    int
	opA, opB   int
	lda, ldb   int
	ldc        int
	typeAB     int
	workspaceB int64
	tf32       bool // F32 operands: compute CUBLAS_COMPUTE_32F_FAST_TF32 instead of CUBLAS_COMPUTE_32F
}

// gemmPlan is a matmul descriptor, its layouts and the chosen algorithm.
type gemmPlan struct {
	desc, a, b, c uintptr
	algo          [heuristicResultSize]byte // the heuristic result; algo is its first 64 bytes
	wsNeeded      int64
}

// blas is a device's cuBLASLt handle with its plans.
type blas struct {
	lt     *cublasLtAPI
	handle uintptr
	plans  map[gemmKey]*gemmPlan
}

func newBlas(d *Device) (*blas, error) {
	lt, err := loadCublasLt()
	if err != nil {
		return nil, err
	}
	defer d.enter()()
	b := &blas{lt: lt, plans: map[gemmKey]*gemmPlan{}}
	if err := lt.call("cublasLtCreate", uintptr(unsafe.Pointer(&b.handle))); err != nil {
		return nil, err
	}
	return b, nil
}

// plan returns (making once) the plan for a column-major D[m,n] = op(A)·op(B) with A, B of typeAB
// and C = D F32, compute F32 (TF32 tensor cores when key.tf32).
func (b *blas) plan(key gemmKey) (*gemmPlan, error) {
	if p, ok := b.plans[key]; ok {
		return p, nil
	}
	lt := b.lt
	p := &gemmPlan{}
	compute := uintptr(computeType32F)
	if key.tf32 {
		compute = computeType32FFastTF32
	}
	if err := lt.call("cublasLtMatmulDescCreate", uintptr(unsafe.Pointer(&p.desc)), compute, cudaR32F); err != nil {
		return nil, err
	}
	opA, opB := int32(key.opA), int32(key.opB)
	if err := lt.call("cublasLtMatmulDescSetAttribute", p.desc, descTransA, uintptr(unsafe.Pointer(&opA)), 4); err != nil {
		return nil, err
	}
	if err := lt.call("cublasLtMatmulDescSetAttribute", p.desc, descTransB, uintptr(unsafe.Pointer(&opB)), 4); err != nil {
		return nil, err
	}
	// Stored shapes (column-major): A is m×k (opN) or k×m (opT); B is k×n or n×k.
	ar, ac := key.m, key.k
	if key.opA == opT {
		ar, ac = key.k, key.m
	}
	br, bc := key.k, key.n
	if key.opB == opT {
		br, bc = key.n, key.k
	}
	if err := lt.call("cublasLtMatrixLayoutCreate", uintptr(unsafe.Pointer(&p.a)), uintptr(key.typeAB), uintptr(ar), uintptr(ac), uintptr(key.lda)); err != nil {
		return nil, err
	}
	if err := lt.call("cublasLtMatrixLayoutCreate", uintptr(unsafe.Pointer(&p.b)), uintptr(key.typeAB), uintptr(br), uintptr(bc), uintptr(key.ldb)); err != nil {
		return nil, err
	}
	if err := lt.call("cublasLtMatrixLayoutCreate", uintptr(unsafe.Pointer(&p.c)), cudaR32F, uintptr(key.m), uintptr(key.n), uintptr(key.ldc)); err != nil {
		return nil, err
	}
	var pref uintptr
	if err := lt.call("cublasLtMatmulPreferenceCreate", uintptr(unsafe.Pointer(&pref))); err != nil {
		return nil, err
	}
	defer lt.call("cublasLtMatmulPreferenceDestroy", pref)
	ws := uint64(key.workspaceB)
	if err := lt.call("cublasLtMatmulPreferenceSetAttribute", pref, prefMaxWorkspace, uintptr(unsafe.Pointer(&ws)), 8); err != nil {
		return nil, err
	}
	var got int32
	if err := lt.call("cublasLtMatmulAlgoGetHeuristic", b.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1,
		uintptr(unsafe.Pointer(&p.algo[0])), uintptr(unsafe.Pointer(&got))); err != nil {
		return nil, fmt.Errorf("cuda: no cuBLASLt algorithm for %+v: %w", key, err)
	}
	if got == 0 {
		return nil, fmt.Errorf("cuda: no cuBLASLt algorithm for %+v", key)
	}
	p.wsNeeded = int64(*(*uint64)(unsafe.Pointer(&p.algo[64])))
	b.plans[key] = p
	return p, nil
}

// matmul runs D = alpha·op(A)·op(B) + beta·C with C = D (column-major, see plan). The caller has
// entered the context.
func (b *blas) matmul(d *Device, key gemmKey, A, B, C uintptr, alpha, beta float32, ws uintptr) error {
	p, err := b.plan(key)
	if err != nil {
		return err
	}
	return b.lt.call("cublasLtMatmul", b.handle, p.desc, uintptr(unsafe.Pointer(&alpha)), A, p.a, B, p.b,
		uintptr(unsafe.Pointer(&beta)), C, p.c, C, p.c, uintptr(unsafe.Pointer(&p.algo[0])), ws, uintptr(key.workspaceB), d.stream)
}
