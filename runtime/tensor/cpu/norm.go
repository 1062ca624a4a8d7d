package cpu

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// RMSNorm: out = x / sqrt(mean(x²) + eps) · w (or · (1+w) when addOne), per row of x [.., D].
func (b *Backend) RMSNorm(out, x, w *tensor.Tensor, eps float32, addOne bool) error {
	const op = "rmsnorm"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	xs, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	if err := b.weight(op, "w", w); err != nil {
		return err
	}
	d := x.Cols()
	if len(o) != len(xs) || out.Cols() != d || w.Numel() != d {
		return fmt.Errorf("cpu: rmsnorm: x %v, w %v into %v: %w", x, w, out, tensor.ErrShape)
	}
	ws := asF32(w)
	if addOne {
		w1 := make([]float32, d)
		for i, v := range ws {
			w1[i] = 1 + v
		}
		ws = w1
	}
	rows := x.Rows()
	b.chunks(rows, max(1, 4096/max(d, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := xs[r*d : (r+1)*d]
			var ss float64
			for _, v := range row {
				ss += float64(v) * float64(v)
			}
			inv := float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
			orow := o[r*d : (r+1)*d]
			for i, v := range row {
				orow[i] = (v * inv) * ws[i]
			}
		}
	})
	return nil
}

// Softmax normalizes each row of x into out.
func (b *Backend) Softmax(out, x *tensor.Tensor) error {
	o, xs, _, err := b.same3("softmax", out, x, x)
	if err != nil {
		return err
	}
	d := x.Cols()
	if out.Cols() != d {
		return fmt.Errorf("cpu: softmax: %v into %v: %w", x, out, tensor.ErrShape)
	}
	b.chunks(x.Rows(), max(1, 4096/max(d, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(o[r*d:(r+1)*d], xs[r*d:(r+1)*d])
		}
	})
	return nil
}

// softmaxRow writes softmax(x) into o (o may be x) and returns log Σ exp(x).
func softmaxRow(o, x []float32) float64 {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - mx))
		o[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range o[:len(x)] {
		o[i] *= inv
	}
	return float64(mx) + math.Log(sum)
}
