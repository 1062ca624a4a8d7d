package model

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Linear is one HF nn.Linear of the decoder: y = x·Wᵀ + bias (+ the adapter's delta).
//
// Name is the HF module name ("model.layers.3.self_attn.q_proj", "model.layers.3.mlp.down_proj",
// "lm_head"); PEFT keys are derived from it. The Model owns Weight, Bias and Packed and frees them
// in Model.Free; it never frees Adapter (whoever attached it owns it).
type Linear struct {
	Name    string
	In, Out int
	Weight  *tensor.Tensor // [Out, In] in the model's weight dtype (F32/F16/BF16); nil when Packed is set
	Bias    *tensor.Tensor // [Out] or nil
	// Packed, when non-nil, replaces the dense Gemm with a weight in a format the backend's Gemm does
	// not take (NF4, LLM.int8, GGUF blocks): see PackedWeight.
	Packed PackedWeight
	// Adapter, when non-nil, adds its contribution (LoRA: scale·B(A x)) after the base product.
	Adapter LinearAdapter
}

// LinearAdapter is the hook of a LoRA-style adapter on a Linear (implemented by package lora).
//
// Forward adds the adapter's delta of x into out: out += delta(x), for x [.., In] F32 (the input of
// the Linear, not to be modified) and out [.., Out] F32 (already holding x·Wᵀ + bias). It allocates
// what scratch it needs on b and frees it before returning. It must honor the backend's ownership
// rules: it keeps no reference to x or out after returning. (For training, the adapter may keep
// its own copies of what its backward needs; that is the trainer's business.)
type LinearAdapter interface {
	Forward(b tensor.Backend, x, out *tensor.Tensor) error
}

// PackedWeight is a Linear weight stored in a quantized layout, computing out = x·Wᵀ itself
// (dequantizing on the fly or with a dedicated kernel). x is [.., In] F32 and out [.., Out] F32,
// overwritten. Bytes is the storage size for the summary; Free releases it (called by Model.Free).
type PackedWeight interface {
	MatMulT(b tensor.Backend, x, out *tensor.Tensor) error
	Bytes() int64
	Free() error
}

// PackedWeightAdder is the optional extension of a PackedWeight that accumulates its product:
// MatMulTAdd sets out += x·Wᵀ (x [.., In] F32, out [.., Out] F32 holding the values to add to; out
// must not alias x). Linear.ForwardAdd uses it to fold a residual add into the product (one launch
// instead of two); without it ForwardAdd computes into a temporary and adds. runtime/qmodel.Linear
// implements it.
type PackedWeightAdder interface {
	PackedWeight
	MatMulTAdd(b tensor.Backend, x, out *tensor.Tensor) error
}

// QuantizedWeight is the optional interface of a PackedWeight held as a backend QTensor (for
// fused ops on quantized weights such as tensor.QuantSwiGLUer). runtime/qmodel.Linear implements
// it; the weight stays owned by the PackedWeight.
type QuantizedWeight interface {
	PackedWeight
	QWeight() *tensor.QTensor
}

// AdditiveAdapter is the optional marker of a LinearAdapter whose Forward only adds a delta
// computed from x: out += delta(x), the same whatever out holds (plain LoRA: scale·B(A x)). When
// AddsOnly reports true, Linear.ForwardAdd lets the adapter add into an out that also holds the
// residual. An adapter without the marker, or reporting false, may read out (DoRA rescales
// x·Wᵀ + bias by its magnitude), so ForwardAdd gives it the base product alone in a temporary.
type AdditiveAdapter interface {
	LinearAdapter
	AddsOnly() bool
}

// Forward computes out = x·Wᵀ + bias, then lets the adapter add its delta. x is [.., In] F32 and
// out [.., Out] F32 with the same leading dimensions, preallocated by the caller; out is overwritten.
func (l *Linear) Forward(b tensor.Backend, x, out *tensor.Tensor) error {
	var err error
	if l.Packed != nil {
		err = l.Packed.MatMulT(b, x, out)
	} else {
		err = b.Gemm(out, x, l.Weight, false, true, 1, 0)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l.Name, err)
	}
	return l.afterProduct(b, x, out)
}

// afterProduct adds the bias, then lets the adapter add its delta of x, into out, which holds
// x·Wᵀ: the rest of Forward once the product is done (also by a fused op over several Linears).
func (l *Linear) afterProduct(b tensor.Backend, x, out *tensor.Tensor) error {
	if l.Bias != nil {
		if err := b.AddBias(out, l.Bias); err != nil {
			return fmt.Errorf("%s bias: %w", l.Name, err)
		}
	}
	if l.Adapter != nil {
		if err := l.Adapter.Forward(b, x, out); err != nil {
			return fmt.Errorf("%s adapter: %w", l.Name, err)
		}
	}
	return nil
}

// ForwardAdd computes out += x·Wᵀ + bias + the adapter's delta: the Linear followed by a residual
// add, for x [.., In] F32 and out [.., Out] F32 (the residual stream, updated in place; it must not
// alias x). The dense product accumulates into out (Gemm with beta 1) and a PackedWeightAdder
// likewise, so no temporary and no separate add are needed; the result equals Forward into a
// temporary followed by Add up to float32 rounding order. A packed weight without MatMulTAdd, or
// an adapter that is not additive (AdditiveAdapter), takes that path instead, with a temporary it
// allocates and frees.
func (l *Linear) ForwardAdd(b tensor.Backend, x, out *tensor.Tensor) error {
	return l.forwardAdd(b, x, out, nil)
}

// forwardAdd is ForwardAdd with an optional scratch tmp F32 of out's shape for the fallback path
// (nil: allocated when needed).
func (l *Linear) forwardAdd(b tensor.Backend, x, out, tmp *tensor.Tensor) error {
	adder, packedAdds := l.Packed.(PackedWeightAdder)
	fused := l.Packed == nil || packedAdds
	if l.Adapter != nil {
		a, ok := l.Adapter.(AdditiveAdapter)
		fused = fused && ok && a.AddsOnly()
	}
	if !fused {
		if tmp == nil {
			var err error
			if tmp, err = b.Alloc(tensor.F32, out.Shape()...); err != nil {
				return fmt.Errorf("%s: temporary for the residual: %w", l.Name, err)
			}
			defer tmp.Free()
		}
		if err := l.Forward(b, x, tmp); err != nil {
			return err
		}
		if err := b.Add(out, out, tmp, 1); err != nil {
			return fmt.Errorf("%s residual: %w", l.Name, err)
		}
		return nil
	}
	var err error
	if packedAdds {
		err = adder.MatMulTAdd(b, x, out)
	} else {
		err = b.Gemm(out, x, l.Weight, false, true, 1, 1)
	}
	if err != nil {
		return fmt.Errorf("%s (accumulating): %w", l.Name, err)
	}
	return l.afterProduct(b, x, out)
}

// Bytes is the storage size of the weight and bias (not of the adapter).
func (l *Linear) Bytes() int64 {
	var n int64
	if l.Packed != nil {
		n += l.Packed.Bytes()
	} else if l.Weight != nil {
		n += l.Weight.Bytes()
	}
	if l.Bias != nil {
		n += l.Bias.Bytes()
	}
	return n
}
