package cpu

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// same3 checks out, a, b are live F32 tensors of equal element count.
func (b *Backend) same3(op string, out, x, y *tensor.Tensor) (o, xs, ys []float32, err error) {
	if o, err = b.f32(op, "out", out); err != nil {
		return
	}
	if xs, err = b.f32(op, "a", x); err != nil {
		return
	}
	if ys, err = b.f32(op, "b", y); err != nil {
		return
	}
	if len(xs) != len(o) || len(ys) != len(o) {
		err = fmt.Errorf("cpu: %s: %v, %v into %v: element counts differ: %w", op, x, y, out, tensor.ErrShape)
	}
	return
}

const elemChunk = 16 << 10 // elements per parallel task of elementwise ops

// Add sets out = a + alpha·b.
func (b *Backend) Add(out, x, y *tensor.Tensor, alpha float32) error {
	o, xs, ys, err := b.same3("add", out, x, y)
	if err != nil {
		return err
	}
	b.chunks(len(o), elemChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = xs[i] + alpha*ys[i]
		}
	})
	return nil
}

// Mul sets out = a ⊙ b.
func (b *Backend) Mul(out, x, y *tensor.Tensor) error {
	o, xs, ys, err := b.same3("mul", out, x, y)
	if err != nil {
		return err
	}
	b.chunks(len(o), elemChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = xs[i] * ys[i]
		}
	})
	return nil
}

// Scale sets out = s·x.
func (b *Backend) Scale(out, x *tensor.Tensor, s float32) error {
	o, xs, _, err := b.same3("scale", out, x, x)
	if err != nil {
		return err
	}
	b.chunks(len(o), elemChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = s * xs[i]
		}
	})
	return nil
}

// SwiGLU sets out = silu(gate) ⊙ up.
func (b *Backend) SwiGLU(out, gate, up *tensor.Tensor) error {
	o, gs, us, err := b.same3("swiglu", out, gate, up)
	if err != nil {
		return err
	}
	b.chunks(len(o), elemChunk, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := gs[i]
			o[i] = g / (1 + float32(math.Exp(float64(-g)))) * us[i]
		}
	})
	return nil
}

// AddBias adds bias [N] to every row of x [.., N] in place.
func (b *Backend) AddBias(x, bias *tensor.Tensor) error {
	xs, err := b.f32("add bias", "x", x)
	if err != nil {
		return err
	}
	if err := b.weight("add bias", "bias", bias); err != nil {
		return err
	}
	n := x.Cols()
	if bias.Numel() != n {
		return fmt.Errorf("cpu: add bias: bias %v for rows of %d: %w", bias, n, tensor.ErrShape)
	}
	bs := asF32(bias)
	rows := x.Rows()
	b.chunks(rows, max(1, elemChunk/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := xs[r*n : (r+1)*n]
			for j := range row {
				row[j] += bs[j]
			}
		}
	})
	return nil
}
