package tensor

import (
	"errors"
	"fmt"
	"slices"
)

// Errors every backend wraps, so callers can test with errors.Is.
var (
	ErrShape       = errors.New("tensor: bad shape")
	ErrDType       = errors.New("tensor: unsupported dtype")
	ErrFreed       = errors.New("tensor: use after free")
	ErrBackend     = errors.New("tensor: tensor belongs to another backend")
	ErrUnsupported = errors.New("tensor: operation not supported by this backend")
)

// Tensor is a dense, row-major (C order) array whose storage lives on a Backend.
//
// A Tensor made by a Backend (Alloc, FromHost*, or an op documented to return a new tensor) owns its
// storage: call Free exactly once when done (a second Free is a no-op). A view made by View shares
// the storage of its base: freeing a view releases nothing, and the base must outlive its views.
// Tensors are not safe for concurrent mutation; ops on one backend may be called from one goroutine
// at a time per tensor.
type Tensor struct {
	shape []int
	dtype DType
	b     Backend
	data  any     // backend-private storage handle; nil once freed
	base  *Tensor // non-nil for a view
}

// NewTensor wraps backend storage in a Tensor. It is for Backend implementations only: model code
// gets tensors from Backend methods. data is the backend's handle (a Go slice on the CPU, a device
// pointer record on CUDA); the shape is copied.
func NewTensor(b Backend, dtype DType, shape []int, data any) *Tensor {
	return &Tensor{shape: append([]int(nil), shape...), dtype: dtype, b: b, data: data}
}

// Data returns the backend-private storage handle, or nil if the tensor (or its base) was freed.
// For Backend implementations only.
func (t *Tensor) Data() any {
	if t == nil || t.data == nil || (t.base != nil && t.base.data == nil) {
		return nil
	}
	return t.data
}

// Shape returns a copy of the dimensions.
func (t *Tensor) Shape() []int { return append([]int(nil), t.shape...) }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Dim returns dimension i; negative i counts from the end (-1 is the last).
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// DType is the element type of the storage.
func (t *Tensor) DType() DType { return t.dtype }

// Backend is the backend that owns the storage.
func (t *Tensor) Backend() Backend { return t.b }

// Numel is the number of elements (1 for a scalar of shape []).
func (t *Tensor) Numel() int { return Numel(t.shape) }

// Bytes is the storage size in bytes.
func (t *Tensor) Bytes() int64 { return int64(t.Numel()) * int64(t.dtype.Size()) }

// Rows is the product of all dimensions but the last: the row count when the tensor is seen as a
// matrix [Rows, Cols]. Most ops flatten leading dimensions this way.
func (t *Tensor) Rows() int {
	if len(t.shape) == 0 {
		return 1
	}
	return Numel(t.shape[:len(t.shape)-1])
}

// Cols is the last dimension (1 for a scalar).
func (t *Tensor) Cols() int {
	if len(t.shape) == 0 {
		return 1
	}
	return t.shape[len(t.shape)-1]
}

// IsView reports whether t shares another tensor's storage.
func (t *Tensor) IsView() bool { return t.base != nil }

// Freed reports whether the storage was released.
func (t *Tensor) Freed() bool { return t.Data() == nil }

// Free releases the storage of an owning tensor through its backend; for a view it only detaches
// the view. Freeing nil or an already freed tensor is a no-op.
func (t *Tensor) Free() error {
	if t == nil || t.data == nil {
		return nil
	}
	if t.base != nil {
		t.data = nil
		return nil
	}
	err := t.b.Free(t)
	t.data = nil
	return err
}

// View returns a tensor with a new shape over the same storage (same element count). The view does
// not own the storage: see Tensor. One dimension may be -1 and is inferred.
func (t *Tensor) View(shape ...int) (*Tensor, error) {
	if t.Freed() {
		return nil, fmt.Errorf("view %v: %w", t, ErrFreed)
	}
	s := append([]int(nil), shape...)
	infer := -1
	n := 1
	for i, d := range s {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			return nil, fmt.Errorf("view %v as %v: %w", t, shape, ErrShape)
		default:
			n *= d
		}
	}
	if infer >= 0 {
		if n == 0 || t.Numel()%n != 0 {
			return nil, fmt.Errorf("view %v as %v: %w", t, shape, ErrShape)
		}
		s[infer] = t.Numel() / n
		n *= s[infer]
	}
	if n != t.Numel() {
		return nil, fmt.Errorf("view %v as %v: element count differs: %w", t, shape, ErrShape)
	}
	base := t
	if t.base != nil {
		base = t.base
	}
	return &Tensor{shape: s, dtype: t.dtype, b: t.b, data: t.data, base: base}, nil
}

// MustView is View for shapes the caller has already checked; it panics on a broken invariant.
func (t *Tensor) MustView(shape ...int) *Tensor {
	v, err := t.View(shape...)
	if err != nil {
		panic(err)
	}
	return v
}

// String describes the tensor (not its contents): "F32[2 3]@cpu".
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	name := "?"
	if t.b != nil {
		name = t.b.Name()
	}
	s := fmt.Sprintf("%s%v@%s", t.dtype, t.shape, name)
	if t.Freed() {
		s += "(freed)"
	}
	return s
}

// Numel is the product of the dimensions.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool { return slices.Equal(a, b) }

// FreeAll frees every tensor given (nil entries are skipped) and returns the first error.
func FreeAll(ts ...*Tensor) error {
	var first error
	for _, t := range ts {
		if err := t.Free(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
