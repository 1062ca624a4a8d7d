package train

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// arena allocates F32 backend tensors and frees them all at once: the activations of one
// micro-batch (or of one layer under recomputation) live in one arena.
type arena struct {
	b    tensor.Backend
	ts   []*tensor.Tensor
	live *liveBytes // when set, counts the arena's bytes (activation accounting, memory.go)
}

// f32 allocates a zeroed F32 tensor owned by the arena.
func (a *arena) f32(shape ...int) (*tensor.Tensor, error) {
	t, err := a.b.Alloc(tensor.F32, shape...)
	if err != nil {
		return nil, fmt.Errorf("train: alloc %v: %w", shape, err)
	}
	a.ts = append(a.ts, t)
	a.live.add(t.Bytes())
	return t, nil
}

// uninitAllocator is implemented by backends that can skip Alloc's zero fill (runtime/cuda's
// AllocUninit): the fill is a full write of every activation, ~1/10 of a training step's device time
// at the 8B bench shape.
type uninitAllocator interface {
	AllocUninit(dtype tensor.DType, shape ...int) (*tensor.Tensor, error)
}

// out allocates an F32 tensor owned by the arena whose contents are undefined (not zeroed where
// the backend allows): only for tensors the next op overwrites entirely.
func (a *arena) out(shape ...int) (*tensor.Tensor, error) {
	return a.alloc(tensor.F32, shape...)
}

// alloc is out for any dtype.
func (a *arena) alloc(dt tensor.DType, shape ...int) (*tensor.Tensor, error) {
	u, ok := a.b.(uninitAllocator)
	if !ok {
		if dt == tensor.F32 {
			return a.f32(shape...)
		}
		t, err := a.b.Alloc(dt, shape...)
		if err != nil {
			return nil, fmt.Errorf("train: alloc %s%v: %w", dt, shape, err)
		}
		return a.keep(t), nil
	}
	t, err := u.AllocUninit(dt, shape...)
	if err != nil {
		return nil, fmt.Errorf("train: alloc %s%v: %w", dt, shape, err)
	}
	return a.keep(t), nil
}

// keep registers a tensor made elsewhere so the arena frees it.
func (a *arena) keep(t *tensor.Tensor) *tensor.Tensor {
	a.ts = append(a.ts, t)
	a.live.add(t.Bytes())
	return t
}

// owns reports whether t was allocated by (or kept in) the arena.
func (a *arena) owns(t *tensor.Tensor) bool {
	for _, x := range a.ts {
		if x == t {
			return true
		}
	}
	return false
}

// free releases every tensor of the arena.
func (a *arena) free() {
	for _, t := range a.ts {
		a.live.add(-t.Bytes())
	}
	tensor.FreeAll(a.ts...)
	a.ts = a.ts[:0]
}
