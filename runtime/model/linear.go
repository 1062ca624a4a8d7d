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
