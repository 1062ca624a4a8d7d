// Package qmodel loads Llama-family models with their linear layers held quantized on the backend
// (NF4/FP4 with double quantization, LLM.int8: the layouts of package quant, stored as
// tensor.QTensor through the backend's tensor.Quantized extension), for QLoRA training and
// quantized inference: from transformers/bitsandbytes checkpoints as saved, or from float
// checkpoints quantized on load one layer at a time (the model never exists in float32).
//
// The model is an ordinary *model.Model whose quantized projections have Linear.Packed set to a
// *Linear; embeddings, norms and the LM head stay dense, as bitsandbytes leaves them. The same
// directory can be loaded at several precisions (Options.Precision), and a LoRA adapter trained
// on one attaches to any other (the adapter does not depend on the base precision).
package qmodel

import (
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// Linear is a quantized linear weight W [Out, In] held by a backend that implements
// tensor.Quantized. It is a model.PackedWeight (the forward y = x·Wᵀ; y += x·Wᵀ as a
// model.PackedWeightAdder) and has what training needs of a frozen layer (the backward
// dX = dY·W, the dequantized weight). The model owns it (Free in model.Model.Free).
type Linear struct {
	Q *tensor.QTensor
}

var (
	_ model.PackedWeightAdder = (*Linear)(nil)
	_ model.QuantizedWeight   = (*Linear)(nil)
)

// QWeight returns the quantized weight (owned by l) for fused backend ops (model.QuantizedWeight).
func (l *Linear) QWeight() *tensor.QTensor { return l.Q }

// Upload stores h on backend b, which must implement tensor.Quantized. The caller owns the result.
func Upload(b tensor.Backend, h *tensor.QuantHost) (*Linear, error) {
	qb, ok := b.(tensor.Quantized)
	if !ok {
		return nil, fmt.Errorf("backend %s cannot hold quantized weights (no tensor.Quantized): %w", b.Name(), tensor.ErrUnsupported)
	}
	q, err := qb.QuantFromHost(h)
	if err != nil {
		return nil, err
	}
	return &Linear{Q: q}, nil
}

func (l *Linear) ops(b tensor.Backend) (tensor.Quantized, error) {
	qb, ok := b.(tensor.Quantized)
	if !ok {
		return nil, fmt.Errorf("quantized %v on backend %s (no tensor.Quantized): %w", l.Q, b.Name(), tensor.ErrUnsupported)
	}
	return qb, nil
}

// MatMulT sets out = x·Wᵀ for x [.., In] and out [.., Out] F32 (overwritten).
func (l *Linear) MatMulT(b tensor.Backend, x, out *tensor.Tensor) error {
	qb, err := l.ops(b)
	if err != nil {
		return err
	}
	return qb.QuantMatMul(out, x, l.Q, true, 1, 0)
}

// MatMulTAdd sets out += x·Wᵀ for x [.., In] and out [.., Out] F32 (out must not alias x): the
// product accumulated into out (QuantMatMul with beta 1), so a residual add needs no launch of its
// own (model.Linear.ForwardAdd).
func (l *Linear) MatMulTAdd(b tensor.Backend, x, out *tensor.Tensor) error {
	qb, err := l.ops(b)
	if err != nil {
		return err
	}
	return qb.QuantMatMul(out, x, l.Q, true, 1, 1)
}

// MatMul sets dx = dy·W + beta·dx for dy [.., Out] and dx [.., In] F32: the input gradient of the
// frozen layer.
func (l *Linear) MatMul(b tensor.Backend, dy, dx *tensor.Tensor, beta float32) error {
	qb, err := l.ops(b)
	if err != nil {
		return err
	}
	return qb.QuantMatMul(dx, dy, l.Q, false, 1, beta)
}

// Float32 returns the dequantized weight, Out·In values row-major (a new host slice).
func (l *Linear) Float32(b tensor.Backend) ([]float32, error) {
	qb, err := l.ops(b)
	if err != nil {
		return nil, err
	}
	return qb.QuantToFloat32(l.Q)
}

// Shape is [Out, In].
func (l *Linear) Shape() []int { return l.Q.Shape() }

// Format is the quantized layout (nf4, fp4, int8).
func (l *Linear) Format() tensor.QuantFormat { return l.Q.Format() }

// Bytes is the quantized storage.
func (l *Linear) Bytes() int64 { return l.Q.Bytes() }

// Free releases the storage.
func (l *Linear) Free() error { return l.Q.Free() }
