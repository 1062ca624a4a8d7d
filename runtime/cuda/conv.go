package cuda

import "github.com/finlora/finlora/runtime/tensor"

// Gemm rounds its F32 operand to the weight's 16-bit dtype into a workspace before the tensor-core
// product. Several products in a row often read the same operand (q, k, v projections of one
// normed input; gate and up; the LoRA branch between them runs float32 products that convert
// nothing), so the device keeps the last conversions (convKeep of them) until anything may have
// written their source. Kernels whose float32 output feeds a bf16 Gemm next (SwiGLU, SwiGLU's
// backward) may write the bf16 copy beside it and keep that as a conversion (shadowBF16 /
// keepShadow; FuseConvert), so the Gemm converts nothing. A kept conversion is dropped:
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

// convCache is a kept conversion: source range and dtype code, and the block holding the result.
type convCache struct {
	src   uintptr
	bytes int64
	dt    int
	blk   *Block
}

// convKeep is how many conversions the device keeps (SwiGLU's backward leaves two: dgate, dup).
const convKeep = 2

// span is a device address range.
type span struct {
	p uintptr
	n int64
}

// convDrop forgets every kept conversion and returns their blocks to the allocator
// (stream-ordered).
func (d *Device) convDrop() {
	for i := range d.conv {
		d.convDropAt(i)
	}
}

func (d *Device) convDropAt(i int) {
	if d.conv[i].blk != nil {
		d.Alloc.Put(d.conv[i].blk)
	}
	d.conv[i] = convCache{}
}

// convFind returns the block holding src [bytes] converted to dtype code dt, or nil.
func (d *Device) convFind(src uintptr, bytes int64, dt int) *Block {
	for _, c := range d.conv {
		if c.blk != nil && c.src == src && c.bytes == bytes && c.dt == dt {
			return c.blk
		}
	}
	return nil
}

// convPut keeps c, dropping the oldest kept conversion when all slots are taken, and any of the
// same source.
func (d *Device) convPut(c convCache) {
	for i := range d.conv {
		if d.conv[i].blk != nil && d.conv[i].src == c.src {
			d.convDropAt(i)
		}
	}
	if d.conv[len(d.conv)-1].blk != nil {
		d.convDropAt(len(d.conv) - 1)
	}
	copy(d.conv[1:], d.conv[:len(d.conv)-1])
	d.conv[0] = c
}

// wrote drops the kept conversions whose source overlaps [p, p+n).
func (d *Device) wrote(p uintptr, n int64) {
	d.posDropWrite(p, n)
	for i, c := range d.conv {
		if c.blk != nil && p < c.src+uintptr(c.bytes) && p+uintptr(n) > c.src {
			d.convDropAt(i)
		}
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

// shadowBF16 takes a workspace block for a bf16 copy of n float32 values that the next kernel
// writes beside its float32 output, or nil when such copies are off (FuseConvert false, the
// cache off, or no memory: the Gemm then converts as before). The caller keeps it with
// keepShadow after the launch, or returns it to the allocator.
func (b *Backend) shadowBF16(n int) *Block {
	if !b.FuseConvert || b.NoConvCache || n == 0 {
		return nil
	}
	blk, err := b.dev.Alloc.Get(int64(n)*2, Workspace)
	if err != nil {
		return nil
	}
	return blk
}

// keepShadow records blk as the bf16 conversion of the float32 range [src, src+bytes), just
// written by a kernel launch (after the launch: launching drops the kept conversions).
func (b *Backend) keepShadow(src uintptr, bytes int64, blk *Block) {
	b.dev.convPut(convCache{src: src, bytes: bytes, dt: dtypeCode(tensor.BF16), blk: blk})
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
