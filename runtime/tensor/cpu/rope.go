package cpu

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Rope rotates x [B, T, H, D] in place (HF rotate_half layout) by the angles of cos/sin [P, D/2]
// at positions pos I32 [B, T].
func (b *Backend) Rope(x, pos, cos, sin *tensor.Tensor) error {
	const op = "rope"
	xs, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	cs, err := b.f32(op, "cos", cos)
	if err != nil {
		return err
	}
	ss, err := b.f32(op, "sin", sin)
	if err != nil {
		return err
	}
	if err := b.check(op, "pos", pos, tensor.I32); err != nil {
		return err
	}
	ps := pos.Data().([]int32)
	if x.Rank() != 4 || x.Dim(3)%2 != 0 || pos.Numel() != x.Dim(0)*x.Dim(1) ||
		cos.Rank() != 2 || cos.Dim(1) != x.Dim(3)/2 || !tensor.SameShape(cos.Shape(), sin.Shape()) {
		return fmt.Errorf("cpu: rope: x %v (want [B T H D], D even), pos %v (want [B T]), cos %v, sin %v (want [P D/2]): %w",
			x, pos, cos, sin, tensor.ErrShape)
	}
	h, d := x.Dim(2), x.Dim(3)
	half := d / 2
	p := cos.Dim(0)
	for i, v := range ps {
		if v < 0 || int(v) >= p {
			return fmt.Errorf("cpu: rope: position %d at %d outside the table of %d: %w", v, i, p, tensor.ErrShape)
		}
	}
	b.chunks(len(ps), 8, func(lo, hi int) {
		for bt := lo; bt < hi; bt++ {
			c := cs[int(ps[bt])*half : int(ps[bt]+1)*half]
			s := ss[int(ps[bt])*half : int(ps[bt]+1)*half]
			for hh := 0; hh < h; hh++ {
				v := xs[(bt*h+hh)*d : (bt*h+hh+1)*d]
				lo, hi := v[:half], v[half:]
				for i := range lo {
					x1, x2 := lo[i], hi[i]
					lo[i] = x1*c[i] - x2*s[i]
					hi[i] = x2*c[i] + x1*s[i]
				}
			}
		}
	})
	return nil
}

var _ tensor.RopeCacher = (*Backend)(nil)

// RopeQKCache rotates q [B, T, Hq, D] and k [B, T, Hkv, D] in place and writes the rotated k and
// v [B, T, Hkv, D] into the caches ck, cv [B, C, Hkv, D] at slots start..start+T−1 (see
// tensor.RopeCacher). On the CPU it is the four ops it stands for, after checking every shape, so
// that a bad shape or position leaves q, k, ck and cv unchanged.
func (b *Backend) RopeQKCache(q, k, v, pos, cos, sin, ck, cv *tensor.Tensor, start int) error {
	const op = "rope qk cache"
	for _, a := range []struct {
		name string
		t    *tensor.Tensor
	}{{"q", q}, {"k", k}, {"v", v}, {"ck", ck}, {"cv", cv}} {
		if _, err := b.f32(op, a.name, a.t); err != nil {
			return err
		}
	}
	if q.Rank() != 4 || k.Rank() != 4 || !tensor.SameShape(k.Shape(), v.Shape()) ||
		q.Dim(0) != k.Dim(0) || q.Dim(1) != k.Dim(1) || q.Dim(3) != k.Dim(3) ||
		ck.Rank() != 4 || !tensor.SameShape(ck.Shape(), cv.Shape()) || ck.Dim(0) != k.Dim(0) ||
		ck.Dim(2) != k.Dim(2) || ck.Dim(3) != k.Dim(3) || start < 0 || start+k.Dim(1) > ck.Dim(1) {
		return fmt.Errorf("cpu: %s: q %v, k %v, v %v (want [B T Hq D], [B T Hkv D] twice), ck %v, cv %v (want [B C Hkv D]) from slot %d: %w",
			op, q, k, v, ck, cv, start, tensor.ErrShape)
	}
	if err := b.Rope(q, pos, cos, sin); err != nil { // checks pos, cos, sin and every position first
		return fmt.Errorf("%s (q): %w", op, err)
	}
	if err := b.Rope(k, pos, cos, sin); err != nil {
		return fmt.Errorf("%s (k): %w", op, err)
	}
	if err := b.SetSlice(ck, k, 1, start); err != nil {
		return fmt.Errorf("%s (cache k): %w", op, err)
	}
	if err := b.SetSlice(cv, v, 1, start); err != nil {
		return fmt.Errorf("%s (cache v): %w", op, err)
	}
	return nil
}
