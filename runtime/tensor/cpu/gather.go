package cpu

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Embedding gathers rows of table [V, D] at ids into out [N, D].
func (b *Backend) Embedding(out, table, ids *tensor.Tensor) error {
	const op = "embedding"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	if err := b.weight(op, "table", table); err != nil {
		return err
	}
	if err := b.check(op, "ids", ids, tensor.I32); err != nil {
		return err
	}
	vocab, d := table.Rows(), table.Cols()
	is := ids.Data().([]int32)
	if out.Cols() != d || len(o) != len(is)*d {
		return fmt.Errorf("cpu: embedding: %d ids from %v into %v: %w", len(is), table, out, tensor.ErrShape)
	}
	for i, id := range is {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("cpu: embedding: id %d at %d outside vocabulary of %d: %w", id, i, vocab, tensor.ErrShape)
		}
	}
	b.chunks(len(is), 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			widen(table, int(is[i])*d, o[i*d:(i+1)*d])
		}
	})
	return nil
}

// ArgMax writes the index of each row's largest value (first on ties) into out I32.
func (b *Backend) ArgMax(out, x *tensor.Tensor) error {
	xs, err := b.f32("argmax", "x", x)
	if err != nil {
		return err
	}
	if err := b.check("argmax", "out", out, tensor.I32); err != nil {
		return err
	}
	rows, n := x.Rows(), x.Cols()
	os := out.Data().([]int32)
	if len(os) != rows || n == 0 {
		return fmt.Errorf("cpu: argmax: %v into %v: %w", x, out, tensor.ErrShape)
	}
	for r := 0; r < rows; r++ {
		row := xs[r*n : (r+1)*n]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		os[r] = int32(best)
	}
	return nil
}

// Slice copies src[.., start:start+dst.Dim(axis), ..] into dst.
func (b *Backend) Slice(dst, src *tensor.Tensor, axis, start int) error {
	return b.slice("slice", dst, src, axis, start, false)
}

// SetSlice writes src into dst[.., start:start+src.Dim(axis), ..].
func (b *Backend) SetSlice(dst, src *tensor.Tensor, axis, start int) error {
	return b.slice("set slice", dst, src, axis, start, true)
}

// slice copies between the full tensor (src for Slice, dst for SetSlice) and the part.
func (b *Backend) slice(op string, dst, src *tensor.Tensor, axis, start int, set bool) error {
	if err := b.check(op, "dst", dst, tensor.Invalid); err != nil {
		return err
	}
	if err := b.check(op, "src", src, dst.DType()); err != nil {
		return err
	}
	full, part := src, dst
	if set {
		full, part = dst, src
	}
	fs, ps := full.Shape(), part.Shape()
	ok := len(fs) == len(ps) && axis >= 0 && axis < len(fs) && start >= 0 && start+ps[axis] <= fs[axis]
	for i := 0; ok && i < len(fs); i++ {
		if i != axis && fs[i] != ps[i] {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("cpu: %s: %v and %v along axis %d from %d: %w", op, dst, src, axis, start, tensor.ErrShape)
	}
	outer := tensor.Numel(fs[:axis])
	inner := tensor.Numel(fs[axis+1:])
	fullRun, partRun := fs[axis]*inner, ps[axis]*inner
	off := start * inner
	switch f := full.Data().(type) {
	case []float32:
		copyRuns(f, part.Data().([]float32), outer, fullRun, partRun, off, set)
	case []uint16:
		copyRuns(f, part.Data().([]uint16), outer, fullRun, partRun, off, set)
	case []int32:
		copyRuns(f, part.Data().([]int32), outer, fullRun, partRun, off, set)
	case []int64:
		copyRuns(f, part.Data().([]int64), outer, fullRun, partRun, off, set)
	case []uint8:
		copyRuns(f, part.Data().([]uint8), outer, fullRun, partRun, off, set)
	case []int8:
		copyRuns(f, part.Data().([]int8), outer, fullRun, partRun, off, set)
	}
	return nil
}

func copyRuns[E any](full, part []E, outer, fullRun, partRun, off int, set bool) {
	for o := 0; o < outer; o++ {
		f := full[o*fullRun+off : o*fullRun+off+partRun]
		p := part[o*partRun : (o+1)*partRun]
		if set {
			copy(f, p)
		} else {
			copy(p, f)
		}
	}
}
