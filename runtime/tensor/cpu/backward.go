package cpu

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// This file implements tensor.Backward: the backward ops of training. Compute is float32 with
// float64 accumulation of row reductions, like the forward ops.

var _ tensor.Backward = (*Backend)(nil)

// RMSNormBackward: with r = 1/sqrt(mean(x²)+eps) and w' = w (or 1+w),
// dx = r·(dy⊙w') − x·r³·Σ(dy⊙w'⊙x)/D, row by row.
func (b *Backend) RMSNormBackward(dx, dy, x, w *tensor.Tensor, eps float32, addOne bool) error {
	const op = "rmsnorm backward"
	o, xs, gs, err := b.same3(op, dx, x, dy)
	if err != nil {
		return err
	}
	if err := b.weight(op, "w", w); err != nil {
		return err
	}
	d := x.Cols()
	if dx.Cols() != d || dy.Cols() != d || w.Numel() != d {
		return fmt.Errorf("cpu: %s: x %v, dy %v, w %v into %v: %w", op, x, dy, w, dx, tensor.ErrShape)
	}
	ws := asF32(w)
	if addOne {
		w1 := make([]float32, d)
		for i, v := range ws {
			w1[i] = 1 + v
		}
		ws = w1
	}
	b.chunks(x.Rows(), max(1, 4096/max(d, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, gr, or := xs[r*d:(r+1)*d], gs[r*d:(r+1)*d], o[r*d:(r+1)*d]
			var ss, dot float64
			for i, v := range xr {
				ss += float64(v) * float64(v)
				dot += float64(gr[i]) * float64(ws[i]) * float64(v)
			}
			inv := 1 / math.Sqrt(ss/float64(d)+float64(eps))
			c := float32(inv * inv * inv * dot / float64(d))
			fi := float32(inv)
			for i, v := range xr {
				or[i] = fi*gr[i]*ws[i] - v*c
			}
		}
	})
	return nil
}

// SwiGLUBackward: s = sigmoid(g); dgate = dy·up·s·(1 + g·(1−s)); dup = dy·g·s.
func (b *Backend) SwiGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	const op = "swiglu backward"
	dg, gs, us, err := b.same3(op, dgate, gate, up)
	if err != nil {
		return err
	}
	du, ys, _, err := b.same3(op, dup, dy, dy)
	if err != nil {
		return err
	}
	if len(du) != len(dg) || len(ys) != len(dg) {
		return fmt.Errorf("cpu: %s: dy %v, gate %v into %v, %v: %w", op, dy, gate, dgate, dup, tensor.ErrShape)
	}
	b.chunks(len(dg), elemChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g, u, y := gs[i], us[i], ys[i]
			s := float32(1 / (1 + math.Exp(-float64(g))))
			dg[i] = y * u * s * (1 + g*(1-s))
			du[i] = y * g * s
		}
	})
	return nil
}

// CrossEntropyBackward: dlogits = scale·(softmax − onehot), zero rows for label −100.
func (b *Backend) CrossEntropyBackward(dlogits, logits, labels *tensor.Tensor, scale float32) error {
	const op = "cross-entropy backward"
	o, xs, _, err := b.same3(op, dlogits, logits, logits)
	if err != nil {
		return err
	}
	if err := b.check(op, "labels", labels, tensor.I32); err != nil {
		return err
	}
	v, n := logits.Cols(), logits.Rows()
	if dlogits.Cols() != v || labels.Numel() != n {
		return fmt.Errorf("cpu: %s: logits %v, labels %v into %v: %w", op, logits, labels, dlogits, tensor.ErrShape)
	}
	ls := labels.Data().([]int32)
	for i, l := range ls {
		if l != -100 && (l < 0 || int(l) >= v) {
			return fmt.Errorf("cpu: %s: label %d at row %d outside [0, %d): %w", op, l, i, v, tensor.ErrShape)
		}
	}
	b.chunks(n, max(1, 4096/max(v, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			or, xr := o[r*v:(r+1)*v], xs[r*v:(r+1)*v]
			if ls[r] == -100 {
				clear(or)
				continue
			}
			softmaxRow(or, xr)
			for i := range or {
				or[i] *= scale
			}
			or[ls[r]] -= scale
		}
	})
	return nil
}

// SumRows: out[c] = beta·out[c] + Σ_r x[r, c].
func (b *Backend) SumRows(out, x *tensor.Tensor, beta float32) error {
	const op = "sum rows"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	xs, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	c := x.Cols()
	if len(o) != c {
		return fmt.Errorf("cpu: %s: %v into %v: %w", op, x, out, tensor.ErrShape)
	}
	rows := x.Rows()
	b.chunks(c, 64, func(lo, hi int) {
		acc := make([]float64, hi-lo)
		for r := 0; r < rows; r++ {
			row := xs[r*c+lo : r*c+hi]
			for i, v := range row {
				acc[i] += float64(v)
			}
		}
		for i, v := range acc {
			if beta == 0 {
				o[lo+i] = float32(v)
			} else {
				o[lo+i] = float32(float64(beta)*float64(o[lo+i]) + v)
			}
		}
	})
	return nil
}

// MulCols: out[r, c] = x[r, c]·v[c].
func (b *Backend) MulCols(out, x, v *tensor.Tensor) error {
	const op = "mul cols"
	o, xs, _, err := b.same3(op, out, x, x)
	if err != nil {
		return err
	}
	vs, err := b.f32(op, "v", v)
	if err != nil {
		return err
	}
	c := x.Cols()
	if len(vs) != c || out.Cols() != c {
		return fmt.Errorf("cpu: %s: %v by %v into %v: %w", op, x, v, out, tensor.ErrShape)
	}
	b.chunks(x.Rows(), max(1, elemChunk/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			or, xr := o[r*c:(r+1)*c], xs[r*c:(r+1)*c]
			for i, xv := range xr {
				or[i] = xv * vs[i]
			}
		}
	})
	return nil
}

// SumSquares returns Σ x² in float64.
func (b *Backend) SumSquares(x *tensor.Tensor) (float64, error) {
	if err := b.weight("sum squares", "x", x); err != nil {
		return 0, err
	}
	var s float64
	for _, v := range asF32(x) {
		s += float64(v) * float64(v)
	}
	return s, nil
}
