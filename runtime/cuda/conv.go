package cuda

import "github.com/finlora/finlora/runtime/tensor"

// Gemm rounds its F32 operand to the weight's 16-bit dtype into a workspace before the tensor-core
// product. Several products in a row often read the same operand (q, k, v projections of one
// normed input; gate and up; the LoRA branch between them runs float32 products that convert
// nothing), so the device keeps the last conversion until anything may have written its source:
//
//   - every kernel launch drops it, except those that declare the only range they write
//     (Device.nextWrites: the conversion itself, dequantization into a workspace), which drop it
//     only when that range overlaps the source;
//   - memset, host-to-device and device-to-device copies drop it when their destination overlaps;
//   - a Gemm drops it when its output overlaps.
//
// A freed source block that is reused is written before it is read (by one of the above), so a hit
// always finds the bytes the conversion read. The cached block is held outside the allocator's free
// cache until dropped.

// convCache is the last conversion: source range and dtype code, and the block holding the result.
type convCache struct {
	src   uintptr
	bytes int64
	dt    int
	blk   *Block
}

// span is a device address range.
type span struct {
	p uintptr
	n int64
}

// convDrop forgets the cached conversion and returns its block to the allocator (stream-ordered).
func (d *Device) convDrop() {
	if d.conv.blk != nil {
		d.Alloc.Put(d.conv.blk)
	}
	d.conv = convCache{}
}

// wrote drops the cached conversion when [p, p+n) overlaps its source.
func (d *Device) wrote(p uintptr, n int64) {
	d.posDropWrite(p, n)
	c := &d.conv
	if c.blk != nil && p < c.src+uintptr(c.bytes) && p+uintptr(n) > c.src {
		d.convDrop()
	}
}

// launched is called for every kernel launch: the declared write range (nextWrites) when set,
// else everything may have been written.
func (d *Device) launched() {
	if w := d.nextWrites; w != nil {
		d.nextWrites = nil
		d.wrote(w.p, w.n)
		return
	}
	d.convDrop()
}

// convertF32 rounds n float32 values at src to dtype code dt at dst: the vectorized kernel
// convert_bf16v (8 a thread, 16-byte loads and stores; the same bits) for BF16 where both
// addresses are 16-byte aligned, unless ScalarConvert, else convert (one element a thread). The
// caller holds the lock and sets nextWrites if it declares the write.
func (b *Backend) convertF32(dst uintptr, dt int, src uintptr, n int) error {
	if dt == dtypeCode(tensor.BF16) && !b.ScalarConvert && dst%16 == 0 && src%16 == 0 {
		return b.launch1("convert_bf16v", (n+7)/8, dst, src, int64(n))
	}
	return b.launch1("convert", n, dst, dt, src, 0, int64(n))
}
