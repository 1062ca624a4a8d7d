package cuda

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

var _ tensor.RopeCacher = (*Backend)(nil)

// RopeQKCache rotates q [B, T, Hq, D] and k [B, T, Hkv, D] in place and writes the rotated k and
// v [B, T, Hkv, D] into the caches ck, cv [B, C, Hkv, D] at slots start..start+T−1, all F32 (see
// tensor.RopeCacher): one launch of rope_qk_cache instead of Rope, Rope and two SetSlices, with
// the same bits (both kernels rotate with rope_pair). Positions are validated as Rope validates
// them (posvalid.go): checked on the device and read back once, then trusted while nothing may
// have written them.
func (b *Backend) RopeQKCache(q, k, v, pos, cos, sin, ck, cv *tensor.Tensor, start int) error {
	defer b.lock()()
	const op = "rope qk cache"
	var ptr [5]uintptr
	for i, a := range []struct {
		name string
		t    *tensor.Tensor
	}{{"q", q}, {"k", k}, {"v", v}, {"ck", ck}, {"cv", cv}} {
		var err error
		if ptr[i], err = b.f32(op, a.name, a.t); err != nil {
			return err
		}
	}
	qp, kp, vp, ckp, cvp := ptr[0], ptr[1], ptr[2], ptr[3], ptr[4]
	cp, sp, pp, err := b.ropeTables(op, pos, cos, sin)
	if err != nil {
		return err
	}
	if q.Rank() != 4 || k.Rank() != 4 || q.Dim(3)%2 != 0 || !tensor.SameShape(k.Shape(), v.Shape()) ||
		q.Dim(0) != k.Dim(0) || q.Dim(1) != k.Dim(1) || q.Dim(3) != k.Dim(3) ||
		ck.Rank() != 4 || !tensor.SameShape(ck.Shape(), cv.Shape()) || ck.Dim(0) != k.Dim(0) ||
		ck.Dim(2) != k.Dim(2) || ck.Dim(3) != k.Dim(3) || start < 0 || start+k.Dim(1) > ck.Dim(1) {
		return fmt.Errorf("cuda: %s: q %v, k %v, v %v (want [B T Hq D] with D even, [B T Hkv D] twice), ck %v, cv %v (want [B C Hkv D]) from slot %d: %w",
			op, q, k, v, ck, cv, start, tensor.ErrShape)
	}
	if pos.Numel() != q.Dim(0)*q.Dim(1) || cos.Rank() != 2 || cos.Dim(1) != q.Dim(3)/2 || !tensor.SameShape(cos.Shape(), sin.Shape()) {
		return fmt.Errorf("cuda: %s: pos %v (want [B T] for q %v), cos %v, sin %v (want [P D/2]): %w", op, pos, q, cos, sin, tensor.ErrShape)
	}
	B, T, hq, hkv, d := q.Dim(0), q.Dim(1), q.Dim(2), k.Dim(2), q.Dim(3)
	rows, P := B*T, cos.Dim(0)
	n := rows * (hq + hkv) * d / 2
	launch := func() error {
		// a dependent launch: the kernel waits for the previous ones before reading
		return b.launch1Dependent("rope_qk_cache", n, qp, kp, vp, ckp, cvp, pp, cp, sp, b.flag.Ptr,
			int64(rows), T, hq, hkv, d, P, int64(ck.Dim(1)), int64(start))
	}
	// The kernel writes q, k, ck and cv only: when none of them overlaps the positions' block, a
	// validation of these positions survives it.
	pblk := pos.Data().(*Block)
	disjoint := true
	for _, t := range []*tensor.Tensor{q, k, ck, cv} {
		blk := t.Data().(*Block)
		if blk.Ptr < pblk.Ptr+uintptr(pblk.Bytes) && pblk.Ptr < blk.Ptr+uintptr(blk.Bytes) {
			disjoint = false
		}
	}
	if disjoint && b.dev.posChecked(pblk, P) { // checked and unwritten since (posvalid.go): no wait
		keep := b.dev.pos
		err := launch()
		b.dev.pos = keep
		return err
	}
	if err := b.clearFlag(); err != nil {
		return err
	}
	if err := launch(); err != nil {
		return err
	}
	if bad, err := b.readFlag(); err != nil {
		return err
	} else if bad {
		return fmt.Errorf("cuda: %s: a position in %v is outside the table of %d: %w", op, pos, P, tensor.ErrShape)
	}
	if disjoint {
		b.dev.pos = posValid{lo: pblk.Ptr, hi: pblk.Ptr + uintptr(pblk.Bytes), p: P}
	}
	return nil
}
