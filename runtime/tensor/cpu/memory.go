package cpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// FromHost copies little-endian element bytes into a new tensor owned by the caller.
func (b *Backend) FromHost(dtype tensor.DType, shape []int, raw []byte) (*tensor.Tensor, error) {
	n := tensor.Numel(shape)
	if dtype.Size() == 0 {
		return nil, fmt.Errorf("cpu: from host %s%v: %w", dtype, shape, tensor.ErrDType)
	}
	if len(raw) != n*dtype.Size() {
		return nil, fmt.Errorf("cpu: from host %s%v: got %d bytes, want %d: %w", dtype, shape, len(raw), n*dtype.Size(), tensor.ErrShape)
	}
	t, err := b.Alloc(dtype, shape...)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch s := t.Data().(type) {
	case []float32:
		for i := range s {
			s[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case []uint16:
		for i := range s {
			s[i] = le.Uint16(raw[2*i:])
		}
	case []int32:
		for i := range s {
			s[i] = int32(le.Uint32(raw[4*i:]))
		}
	case []int64:
		for i := range s {
			s[i] = int64(le.Uint64(raw[8*i:]))
		}
	case []uint8:
		copy(s, raw)
	case []int8:
		for i := range s {
			s[i] = int8(raw[i])
		}
	}
	return t, nil
}

// FromFloat32 makes an F32, F16 or BF16 tensor from float32 values (copied).
func (b *Backend) FromFloat32(dtype tensor.DType, shape []int, data []float32) (*tensor.Tensor, error) {
	if !dtype.IsFloat() {
		return nil, fmt.Errorf("cpu: from float32 to %s: %w", dtype, tensor.ErrDType)
	}
	if len(data) != tensor.Numel(shape) {
		return nil, fmt.Errorf("cpu: from float32 %v: got %d values: %w", shape, len(data), tensor.ErrShape)
	}
	t, err := b.Alloc(dtype, shape...)
	if err != nil {
		return nil, err
	}
	narrow(t, data)
	return t, nil
}

// narrow stores float32 values into float tensor t (rounding to nearest even).
func narrow(t *tensor.Tensor, data []float32) {
	switch s := t.Data().(type) {
	case []float32:
		copy(s, data)
	case []uint16:
		if t.DType() == tensor.BF16 {
			for i, v := range data {
				s[i] = tensor.Float32ToBF16(v)
			}
		} else {
			for i, v := range data {
				s[i] = tensor.Float32ToF16(v)
			}
		}
	}
}

// FromInt32 makes an I32 tensor (values copied).
func (b *Backend) FromInt32(shape []int, data []int32) (*tensor.Tensor, error) {
	if len(data) != tensor.Numel(shape) {
		return nil, fmt.Errorf("cpu: from int32 %v: got %d values: %w", shape, len(data), tensor.ErrShape)
	}
	t, err := b.Alloc(tensor.I32, shape...)
	if err != nil {
		return nil, err
	}
	copy(t.Data().([]int32), data)
	return t, nil
}

// ToHost returns a fresh copy of the little-endian element bytes.
func (b *Backend) ToHost(t *tensor.Tensor) ([]byte, error) {
	if err := b.check("to host", "t", t, tensor.Invalid); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	out := make([]byte, t.Bytes())
	switch s := t.Data().(type) {
	case []float32:
		for i, v := range s {
			le.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case []uint16:
		for i, v := range s {
			le.PutUint16(out[2*i:], v)
		}
	case []int32:
		for i, v := range s {
			le.PutUint32(out[4*i:], uint32(v))
		}
	case []int64:
		for i, v := range s {
			le.PutUint64(out[8*i:], uint64(v))
		}
	case []uint8:
		copy(out, s)
	case []int8:
		for i, v := range s {
			out[i] = byte(v)
		}
	}
	return out, nil
}

// ToFloat32 returns a fresh float32 copy of a float tensor.
func (b *Backend) ToFloat32(t *tensor.Tensor) ([]float32, error) {
	if err := b.weight("to float32", "t", t); err != nil {
		return nil, err
	}
	out := make([]float32, t.Numel())
	widen(t, 0, out)
	return out, nil
}

// ToInt32 returns a fresh copy of an I32 tensor.
func (b *Backend) ToInt32(t *tensor.Tensor) ([]int32, error) {
	if err := b.check("to int32", "t", t, tensor.I32); err != nil {
		return nil, err
	}
	return append([]int32(nil), t.Data().([]int32)...), nil
}

// Copy copies src into dst (equal element counts), converting between float dtypes.
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	if err := b.check("copy", "dst", dst, tensor.Invalid); err != nil {
		return err
	}
	if err := b.check("copy", "src", src, tensor.Invalid); err != nil {
		return err
	}
	if dst.Numel() != src.Numel() {
		return fmt.Errorf("cpu: copy %v into %v: element counts differ: %w", src, dst, tensor.ErrShape)
	}
	if dst.DType() == src.DType() {
		switch d := dst.Data().(type) {
		case []float32:
			copy(d, src.Data().([]float32))
		case []uint16:
			copy(d, src.Data().([]uint16))
		case []int32:
			copy(d, src.Data().([]int32))
		case []int64:
			copy(d, src.Data().([]int64))
		case []uint8:
			copy(d, src.Data().([]uint8))
		case []int8:
			copy(d, src.Data().([]int8))
		}
		return nil
	}
	if !dst.DType().IsFloat() || !src.DType().IsFloat() {
		return fmt.Errorf("cpu: copy %v into %v: only float dtypes convert: %w", src, dst, tensor.ErrDType)
	}
	if d, ok := dst.Data().([]float32); ok {
		widen(src, 0, d)
		return nil
	}
	narrow(dst, asF32(src))
	return nil
}

// Fill sets every element of a float tensor to v.
func (b *Backend) Fill(t *tensor.Tensor, v float32) error {
	if err := b.weight("fill", "t", t); err != nil {
		return err
	}
	switch s := t.Data().(type) {
	case []float32:
		for i := range s {
			s[i] = v
		}
	case []uint16:
		h := tensor.Float32ToBF16(v)
		if t.DType() == tensor.F16 {
			h = tensor.Float32ToF16(v)
		}
		for i := range s {
			s[i] = h
		}
	}
	return nil
}
