package cpu

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// IgnoreIndex is HF's label value for positions without a loss.
const IgnoreIndex = -100

// CrossEntropy sets loss[i] = logsumexp(logits[i]) − logits[i, labels[i]] (0 where the label is −100).
func (b *Backend) CrossEntropy(loss, logits, labels *tensor.Tensor) error {
	const op = "cross entropy"
	ls, err := b.f32(op, "loss", loss)
	if err != nil {
		return err
	}
	xs, err := b.f32(op, "logits", logits)
	if err != nil {
		return err
	}
	if err := b.check(op, "labels", labels, tensor.I32); err != nil {
		return err
	}
	n, v := logits.Rows(), logits.Cols()
	lab := labels.Data().([]int32)
	if len(lab) != n || len(ls) != n {
		return fmt.Errorf("cpu: cross entropy: logits %v, labels %v, loss %v: %w", logits, labels, loss, tensor.ErrShape)
	}
	for i, l := range lab {
		if l != IgnoreIndex && (l < 0 || int(l) >= v) {
			return fmt.Errorf("cpu: cross entropy: label %d at %d outside vocabulary of %d: %w", l, i, v, tensor.ErrShape)
		}
	}
	b.chunks(n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if lab[i] == IgnoreIndex {
				ls[i] = 0
				continue
			}
			row := xs[i*v : (i+1)*v]
			mx := float32(math.Inf(-1))
			for _, x := range row {
				mx = max(mx, x)
			}
			var s float64
			for _, x := range row {
				s += math.Exp(float64(x - mx))
			}
			ls[i] = float32(float64(mx) + math.Log(s) - float64(row[lab[i]]))
		}
	})
	return nil
}
