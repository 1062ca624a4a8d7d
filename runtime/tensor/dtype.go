// Package tensor defines device-neutral tensors, their element types, and the Backend interface
// that every compute device (the pure-Go CPU reference in tensor/cpu, CUDA later) implements.
//
// Model code never touches elements: it allocates tensors on a Backend, calls its ops, and moves
// data to and from the host only through the explicit transfer methods (FromHost*, To*). That keeps
// the same model code valid for device-resident storage.
//
// Ownership: a Tensor's storage belongs to the Backend that made it and is released only by
// Tensor.Free (or Backend.Free). There are no finalizers: GPU memory must be released explicitly,
// and the notebook interpreter never frees old values. Every function that returns a new *Tensor
// says who frees it; by default the caller does.
package tensor

import (
	"fmt"
	"math"
	"strings"
)

// DType is the element type of a tensor's storage.
type DType uint8

// Element types. Float activations are F32 on every backend for now; weights may be stored as
// F32, F16 or BF16 and are widened to float32 inside the ops (float32 accumulation everywhere).
const (
	Invalid DType = iota
	F32           // IEEE binary32
	F16           // IEEE binary16
	BF16          // bfloat16 (the top 16 bits of a binary32)
	I32           // int32 (token ids, positions, labels)
	I64           // int64
	U8            // uint8 (raw bytes, packed quantized weights)
	I8            // int8
)

var dtypeNames = [...]string{Invalid: "invalid", F32: "F32", F16: "F16", BF16: "BF16", I32: "I32", I64: "I64", U8: "U8", I8: "I8"}

// String returns the safetensors spelling of the dtype ("F32", "BF16", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes of one element; 0 for Invalid.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case I64:
		return 8
	case U8, I8:
		return 1
	}
	return 0
}

// IsFloat reports whether d is a floating-point type (F32, F16, BF16).
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }

// ParseDType accepts the safetensors names ("F32", "BF16", ...) and the torch/HF config names
// ("float32", "bfloat16", "float16", "torch.float16", "fp32", "bf16", ...), case-insensitively.
func ParseDType(s string) (DType, error) {
	k := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "torch."))
	switch k {
	case "f32", "float32", "float", "fp32":
		return F32, nil
	case "f16", "float16", "half", "fp16":
		return F16, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "i32", "int32", "int":
		return I32, nil
	case "i64", "int64", "long":
		return I64, nil
	case "u8", "uint8":
		return U8, nil
	case "i8", "int8":
		return I8, nil
	}
	return Invalid, fmt.Errorf("tensor: unknown dtype %q (want F32, F16, BF16, I32, I64, U8 or I8)", s)
}

// BF16ToFloat32 widens a bfloat16 bit pattern exactly.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 rounds to nearest even (as torch does); NaN stays NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and non-zero
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F16ToFloat32 widens an IEEE binary16 bit pattern exactly (subnormals, inf and NaN included).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: value = man * 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// Float32ToF16 rounds to nearest even binary16; overflow gives ±inf, NaN stays NaN.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the correct rounding to inf as well
	}
	return sign | uint16(r)
}
