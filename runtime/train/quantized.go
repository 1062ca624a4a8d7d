package train

import (
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// PackedLinear is what a packed (quantized) base weight W [out, in] must implement for the trainer
// to train adapters through it (QLoRA): the forward of model.PackedWeight plus the input gradient
// of the frozen layer and its dequantized values. runtime/qmodel.Linear implements it (NF4, FP4,
// LLM.int8 on any backend with tensor.Quantized); the weight gets no gradient.
type PackedLinear interface {
	model.PackedWeight
	// MatMul sets dx = dy·W + beta·dx for dy [.., out] and dx [.., in] F32.
	MatMul(b tensor.Backend, dy, dx *tensor.Tensor, beta float32) error
	// Float32 returns the dequantized W, out·in values row-major (a new host slice; DoRA's norm).
	Float32(b tensor.Backend) ([]float32, error)
	// Shape is [out, in].
	Shape() []int
}

// frozen is one frozen base weight [out, in] of the graph: a dense backend tensor or a packed one.
type frozen struct {
	dense  *tensor.Tensor
	packed PackedLinear
}

// forward sets out = x·Wᵀ (overwritten).
func (f frozen) forward(b tensor.Backend, out, x *tensor.Tensor) error {
	if f.packed != nil {
		return f.packed.MatMulT(b, x, out)
	}
	return b.Gemm(out, x, f.dense, false, true, 1, 0)
}

// backward sets dx = dy·W + beta·dx.
func (f frozen) backward(b tensor.Backend, dx, dy *tensor.Tensor, beta float32) error {
	if f.packed != nil {
		return f.packed.MatMul(b, dy, dx, beta)
	}
	return b.Gemm(dx, dy, f.dense, false, false, 1, beta)
}

// dims returns out, in.
func (f frozen) dims() (int, int) {
	if f.packed != nil {
		s := f.packed.Shape()
		return s[0], s[1]
	}
	return f.dense.Dim(0), f.dense.Dim(1)
}

// float32 returns W as host float32 values (dequantized when packed).
func (f frozen) float32(b tensor.Backend) ([]float32, error) {
	if f.packed != nil {
		return f.packed.Float32(b)
	}
	return b.ToFloat32(f.dense)
}

// frozenOf takes a model's linear layer into the graph: its dense weight, or its packed weight
// when that supports training (PackedLinear).
func frozenOf(m *model.Model, lin *model.Linear) (frozen, error) {
	src := "(unnamed)"
	if m != nil {
		src = m.Source
	}
	if lin.Packed != nil {
		p, ok := lin.Packed.(PackedLinear)
		if !ok {
			return frozen{}, fmt.Errorf("train: model %s: %s is packed as %T, which has no backward (train.PackedLinear)", src, lin.Name, lin.Packed)
		}
		if s := p.Shape(); len(s) != 2 || s[0] != lin.Out || s[1] != lin.In {
			return frozen{}, fmt.Errorf("train: model %s: %s packed weight has shape %v, the layer is [%d %d]", src, lin.Name, s, lin.Out, lin.In)
		}
		return frozen{packed: p}, nil
	}
	if lin.Weight == nil {
		return frozen{}, fmt.Errorf("train: model %s: %s has no weight", src, lin.Name)
	}
	return frozen{dense: lin.Weight}, nil
}
