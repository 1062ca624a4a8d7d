package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/finlora/finlora/runtime/tensor"
)

// This file implements tensor.Memory.

func (b *Backend) newTensor(dtype tensor.DType, shape []int, p Purpose) (*tensor.Tensor, error) {
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("cuda: alloc %s%v: negative dimension: %w", dtype, shape, tensor.ErrShape)
		}
	}
	if dtype.Size() == 0 {
		return nil, fmt.Errorf("cuda: alloc %s%v: %w", dtype, shape, tensor.ErrDType)
	}
	n := int64(tensor.Numel(shape)) * int64(dtype.Size())
	blk, err := b.dev.Alloc.Get(n, p)
	if err != nil {
		return nil, fmt.Errorf("cuda: alloc %s%v: %w", dtype, shape, err)
	}
	t := tensor.NewTensor(b, dtype, shape, blk)
	b.stats.Current += n
	b.stats.Tensors++
	b.stats.Peak = max(b.stats.Peak, b.stats.Current)
	return t, nil
}

// Alloc returns a zero-filled tensor owned by the caller (purpose: SetPurpose's, else Activations).
func (b *Backend) Alloc(dtype tensor.DType, shape ...int) (*tensor.Tensor, error) {
	defer b.lock()()
	t, err := b.newTensor(dtype, shape, b.purpose)
	if err != nil {
		return nil, err
	}
	if err := b.dev.memset0(t.Data().(*Block).Ptr, int(t.Bytes())); err != nil {
		b.freeLocked(t)
		return nil, fmt.Errorf("cuda: alloc %v: %w", t, err)
	}
	return t, nil
}

// AllocUninit is Alloc without the zero fill: the contents are whatever the cached block held (for
// tensors the next op overwrites entirely; train.arena's out). With PoisonUninit set
// (FINLORA_POISON_UNINIT=1 at Open) every byte is 0xFF instead, an F32 NaN, so a read before the
// first write shows up in the results.
func (b *Backend) AllocUninit(dtype tensor.DType, shape ...int) (*tensor.Tensor, error) {
	defer b.lock()()
	t, err := b.newTensor(dtype, shape, b.purpose)
	if err != nil {
		return nil, err
	}
	if b.PoisonUninit && t.Bytes() > 0 {
		b.dev.wrote(t.Data().(*Block).Ptr, t.Bytes())
		if err := b.dev.drv.call("cuMemsetD8Async", t.Data().(*Block).Ptr, 0xff, uintptr(t.Bytes()), b.dev.stream); err != nil {
			b.freeLocked(t)
			return nil, fmt.Errorf("cuda: alloc %v: %w", t, err)
		}
	}
	return t, nil
}

func (b *Backend) hostPurpose() Purpose {
	if b.purpose == Activations {
		return Weights
	}
	return b.purpose
}

// FromHost copies raw little-endian element bytes into a new tensor.
func (b *Backend) FromHost(dtype tensor.DType, shape []int, raw []byte) (*tensor.Tensor, error) {
	defer b.lock()()
	return b.fromRaw(dtype, shape, raw)
}

func (b *Backend) fromRaw(dtype tensor.DType, shape []int, raw []byte) (*tensor.Tensor, error) {
	if want := tensor.Numel(shape) * dtype.Size(); len(raw) != want || dtype.Size() == 0 {
		return nil, fmt.Errorf("cuda: from host %s%v: %d bytes, want %d: %w", dtype, shape, len(raw), want, tensor.ErrShape)
	}
	t, err := b.newTensor(dtype, shape, b.hostPurpose())
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 {
		if err := b.dev.htod(t.Data().(*Block).Ptr, unsafe.Pointer(&raw[0]), len(raw)); err != nil {
			b.freeLocked(t)
			return nil, fmt.Errorf("cuda: copy %v to the device: %w", t, err)
		}
	}
	return t, nil
}

// FromFloat32 makes an F32, F16 or BF16 tensor (narrowing rounds to nearest even, on the host).
func (b *Backend) FromFloat32(dtype tensor.DType, shape []int, data []float32) (*tensor.Tensor, error) {
	if len(data) != tensor.Numel(shape) {
		return nil, fmt.Errorf("cuda: from float32 %s%v: %d values: %w", dtype, shape, len(data), tensor.ErrShape)
	}
	var raw []byte
	switch dtype {
	case tensor.F32:
		raw = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 4*len(data))
	case tensor.BF16, tensor.F16:
		raw = make([]byte, 2*len(data))
		for i, v := range data {
			var h uint16
			if dtype == tensor.BF16 {
				h = tensor.Float32ToBF16(v)
			} else {
				h = tensor.Float32ToF16(v)
			}
			binary.LittleEndian.PutUint16(raw[2*i:], h)
		}
	default:
		return nil, fmt.Errorf("cuda: from float32 into %s: %w", dtype, tensor.ErrDType)
	}
	defer b.lock()()
	return b.fromRaw(dtype, shape, raw)
}

// FromInt32 makes an I32 tensor.
func (b *Backend) FromInt32(shape []int, data []int32) (*tensor.Tensor, error) {
	if len(data) != tensor.Numel(shape) {
		return nil, fmt.Errorf("cuda: from int32 %v: %d values: %w", shape, len(data), tensor.ErrShape)
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 4*len(data))
	defer b.lock()()
	return b.fromRaw(tensor.I32, shape, raw)
}

// ToHost returns the raw element bytes (waits for queued work).
func (b *Backend) ToHost(t *tensor.Tensor) ([]byte, error) {
	defer b.lock()()
	p, err := b.check("to host", "t", t, tensor.Invalid)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, t.Bytes())
	var dst unsafe.Pointer
	if len(raw) > 0 {
		dst = unsafe.Pointer(&raw[0])
	}
	if err := b.dev.dtoh(dst, p, len(raw)); err != nil {
		return nil, fmt.Errorf("cuda: copy %v to the host: %w", t, err)
	}
	return raw, nil
}

// ToFloat32 returns a float tensor's elements widened to float32.
func (b *Backend) ToFloat32(t *tensor.Tensor) ([]float32, error) {
	if t != nil && !t.DType().IsFloat() {
		return nil, fmt.Errorf("cuda: to float32 of %v: %w", t, tensor.ErrDType)
	}
	raw, err := b.ToHost(t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.Numel())
	switch t.DType() {
	case tensor.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case tensor.BF16:
		for i := range out {
			out[i] = tensor.BF16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case tensor.F16:
		for i := range out {
			out[i] = tensor.F16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	}
	return out, nil
}

// ToInt32 returns an I32 tensor's elements.
func (b *Backend) ToInt32(t *tensor.Tensor) ([]int32, error) {
	if t != nil && t.DType() != tensor.I32 {
		return nil, fmt.Errorf("cuda: to int32 of %v: %w", t, tensor.ErrDType)
	}
	raw, err := b.ToHost(t)
	if err != nil {
		return nil, err
	}
	out := make([]int32, t.Numel())
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// Copy copies src into dst (same element count), converting between float dtypes.
func (b *Backend) Copy(dst, src *tensor.Tensor) error {
	defer b.lock()()
	return b.copyLocked(dst, src)
}

func (b *Backend) copyLocked(dst, src *tensor.Tensor) error {
	dp, err := b.check("copy", "dst", dst, tensor.Invalid)
	if err != nil {
		return err
	}
	sp, err := b.check("copy", "src", src, tensor.Invalid)
	if err != nil {
		return err
	}
	if dst.Numel() != src.Numel() {
		return fmt.Errorf("cuda: copy %v into %v: element counts differ: %w", src, dst, tensor.ErrShape)
	}
	if dst.DType() == src.DType() {
		return b.dev.dtod(dp, sp, int(dst.Bytes()))
	}
	if !dst.DType().IsFloat() || !src.DType().IsFloat() {
		return fmt.Errorf("cuda: copy %v into %v: %w", src, dst, tensor.ErrDType)
	}
	if src.DType() == tensor.F32 {
		return b.convertF32(dp, dtypeCode(dst.DType()), sp, dst.Numel())
	}
	return b.launch1("convert", dst.Numel(), dp, dtypeCode(dst.DType()), sp, dtypeCode(src.DType()), int64(dst.Numel()))
}

// Fill sets every element of a float tensor to v.
func (b *Backend) Fill(t *tensor.Tensor, v float32) error {
	defer b.lock()()
	p, err := b.weight("fill", "t", t)
	if err != nil {
		return err
	}
	return b.launch1("fill", t.Numel(), p, dtypeCode(t.DType()), v, int64(t.Numel()))
}

// Free releases t's storage to the caching allocator.
func (b *Backend) Free(t *tensor.Tensor) error {
	if t == nil || t.Data() == nil {
		return nil
	}
	if t.Backend() != tensor.Backend(b) {
		return fmt.Errorf("cuda: free %v: %w", t, tensor.ErrBackend)
	}
	if t.IsView() {
		return fmt.Errorf("cuda: free %v: a view does not own its storage (call Tensor.Free): %w", t, tensor.ErrShape)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.freeLocked(t)
	return nil
}

func (b *Backend) freeLocked(t *tensor.Tensor) {
	blk := t.Data().(*Block)
	b.stats.Current -= blk.Bytes
	b.stats.Tensors--
	b.dev.Alloc.Put(blk)
}

// MemStats reports live and peak bytes of tensors made by this backend.
func (b *Backend) MemStats() tensor.MemStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}
