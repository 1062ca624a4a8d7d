// Package cpu is the pure-Go reference Backend: float32 compute over F32/F16/BF16 storage,
// parallel over rows with goroutines. Importing it registers the backend as "cpu":
//
//	import _ "github.com/finlora/finlora/runtime/tensor/cpu"
//	b, err := tensor.Get("cpu")
//
// Storage is an ordinary Go slice ([]float32 for F32, []uint16 for F16/BF16, []int32, []int64,
// []uint8, []int8); Free drops the reference so the garbage collector can reclaim it, and keeps the
// memory statistics honest. Ops run synchronously: when a method returns, its output is written.
package cpu

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/finlora/finlora/runtime/tensor"
)

func init() {
	tensor.Register("cpu", func(name string) (tensor.Backend, error) {
		if name != "cpu" {
			return nil, fmt.Errorf("cpu backend has no device %q (use \"cpu\")", name)
		}
		return New(0), nil
	})
}

// Backend is the CPU backend. Its methods are safe for concurrent use on distinct tensors.
type Backend struct {
	workers int

	mu    sync.Mutex
	stats tensor.MemStats
}

// New returns a CPU backend using workers goroutines per op (0 means GOMAXPROCS). Tests use New
// directly; programs use tensor.Get("cpu"), which shares one instance.
func New(workers int) *Backend {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Backend{workers: workers}
}

var _ tensor.Backend = (*Backend)(nil)

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Capabilities reports float32 activations and F32/F16/BF16 weights.
func (b *Backend) Capabilities() tensor.Capabilities {
	return tensor.Capabilities{
		Device:           fmt.Sprintf("CPU %s/%s (%d goroutines)", runtime.GOOS, runtime.GOARCH, b.workers),
		WeightDTypes:     []tensor.DType{tensor.F32, tensor.F16, tensor.BF16},
		ActivationDTypes: []tensor.DType{tensor.F32},
		Parallelism:      b.workers,
		Extensions:       []string{"backward", "quantized"}, // tensor.Backward (backward.go), tensor.Quantized (quantized.go)
	}
}

// MemStats reports live and peak bytes of tensors made by this backend.
func (b *Backend) MemStats() tensor.MemStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

func (b *Backend) track(delta int64, count int) {
	b.mu.Lock()
	b.stats.Current += delta
	b.stats.Tensors += count
	if b.stats.Current > b.stats.Peak {
		b.stats.Peak = b.stats.Current
	}
	b.mu.Unlock()
}

// Alloc returns a zero-filled tensor owned by the caller.
func (b *Backend) Alloc(dtype tensor.DType, shape ...int) (*tensor.Tensor, error) {
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("cpu: alloc %s%v: negative dimension: %w", dtype, shape, tensor.ErrShape)
		}
	}
	n := tensor.Numel(shape)
	var data any
	switch dtype {
	case tensor.F32:
		data = make([]float32, n)
	case tensor.F16, tensor.BF16:
		data = make([]uint16, n)
	case tensor.I32:
		data = make([]int32, n)
	case tensor.I64:
		data = make([]int64, n)
	case tensor.U8:
		data = make([]uint8, n)
	case tensor.I8:
		data = make([]int8, n)
	default:
		return nil, fmt.Errorf("cpu: alloc %s%v: %w", dtype, shape, tensor.ErrDType)
	}
	t := tensor.NewTensor(b, dtype, shape, data)
	b.track(t.Bytes(), 1)
	return t, nil
}

// Free releases t's storage (the slice becomes garbage). Views are handled by Tensor.Free.
func (b *Backend) Free(t *tensor.Tensor) error {
	if t == nil || t.Data() == nil {
		return nil
	}
	if t.Backend() != tensor.Backend(b) {
		return fmt.Errorf("cpu: free %v: %w", t, tensor.ErrBackend)
	}
	if t.IsView() {
		return fmt.Errorf("cpu: free %v: a view does not own its storage (call Tensor.Free): %w", t, tensor.ErrShape)
	}
	b.track(-t.Bytes(), -1)
	return nil
}

// check verifies that t is live, belongs to b and has dtype want (Invalid: any).
func (b *Backend) check(op, arg string, t *tensor.Tensor, want tensor.DType) error {
	if t == nil {
		return fmt.Errorf("cpu: %s: %s is nil: %w", op, arg, tensor.ErrShape)
	}
	if t.Backend() != tensor.Backend(b) {
		return fmt.Errorf("cpu: %s: %s %v: %w", op, arg, t, tensor.ErrBackend)
	}
	if t.Data() == nil {
		return fmt.Errorf("cpu: %s: %s %v: %w", op, arg, t, tensor.ErrFreed)
	}
	if want != tensor.Invalid && t.DType() != want {
		return fmt.Errorf("cpu: %s: %s %v must be %s: %w", op, arg, t, want, tensor.ErrDType)
	}
	return nil
}

// f32 returns the []float32 storage of an F32 tensor after checking it.
func (b *Backend) f32(op, arg string, t *tensor.Tensor) ([]float32, error) {
	if err := b.check(op, arg, t, tensor.F32); err != nil {
		return nil, err
	}
	return t.Data().([]float32), nil
}

// weight checks a float tensor of any float dtype (a "weight" operand).
func (b *Backend) weight(op, arg string, t *tensor.Tensor) error {
	if err := b.check(op, arg, t, tensor.Invalid); err != nil {
		return err
	}
	if !t.DType().IsFloat() {
		return fmt.Errorf("cpu: %s: %s %v must be F32, F16 or BF16: %w", op, arg, t, tensor.ErrDType)
	}
	return nil
}

// widen writes elements [off, off+len(dst)) of float tensor t into dst as float32.
func widen(t *tensor.Tensor, off int, dst []float32) {
	switch s := t.Data().(type) {
	case []float32:
		copy(dst, s[off:off+len(dst)])
	case []uint16:
		src := s[off : off+len(dst)]
		if t.DType() == tensor.BF16 {
			for i, h := range src {
				dst[i] = tensor.BF16ToFloat32(h)
			}
		} else {
			for i, h := range src {
				dst[i] = tensor.F16ToFloat32(h)
			}
		}
	default:
		panic(fmt.Sprintf("cpu: widen of non-float storage %T", s))
	}
}

// floatRow returns row data of a float tensor as float32: the storage itself for F32, else a
// widened copy in buf (grown as needed).
func floatView(t *tensor.Tensor, off, n int, buf []float32) []float32 {
	if s, ok := t.Data().([]float32); ok {
		return s[off : off+n]
	}
	buf = buf[:n]
	widen(t, off, buf)
	return buf
}

// asF32 returns all of a float tensor as float32 (the storage itself for F32, a copy otherwise).
func asF32(t *tensor.Tensor) []float32 {
	if s, ok := t.Data().([]float32); ok {
		return s
	}
	out := make([]float32, t.Numel())
	widen(t, 0, out)
	return out
}
