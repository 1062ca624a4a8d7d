package gguf

import "fmt"

// Type is a GGML tensor element type (ggml_type), as stored in a tensor info.
type Type uint32

// The GGML tensor types this package knows by name. Only those for which Type.Supported reports
// true can be dequantized; the others (IQ*, TQ*, MXFP4, Q8_1) parse but Float32 refuses them.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

// QK_K is the super-block size of the K-quants (elements per block).
const qkK = 256

// typeTraits gives, per type, the elements per block, the bytes per block and the name.
type typeTraits struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
	dequant   func(dst []float32, src []byte)
}

var traits = map[Type]typeTraits{
	TypeF32:     {"F32", 1, 4, dequantF32},
	TypeF16:     {"F16", 1, 2, dequantF16},
	TypeBF16:    {"BF16", 1, 2, dequantBF16},
	TypeF64:     {"F64", 1, 8, dequantF64},
	TypeI8:      {"I8", 1, 1, dequantI8},
	TypeI16:     {"I16", 1, 2, dequantI16},
	TypeI32:     {"I32", 1, 4, dequantI32},
	TypeI64:     {"I64", 1, 8, nil},
	TypeQ4_0:    {"Q4_0", 32, 18, dequantQ4_0},
	TypeQ4_1:    {"Q4_1", 32, 20, dequantQ4_1},
	TypeQ5_0:    {"Q5_0", 32, 22, dequantQ5_0},
	TypeQ5_1:    {"Q5_1", 32, 24, dequantQ5_1},
	TypeQ8_0:    {"Q8_0", 32, 34, dequantQ8_0},
	TypeQ8_1:    {"Q8_1", 32, 36, nil},
	TypeQ2_K:    {"Q2_K", qkK, 84, dequantQ2_K},
	TypeQ3_K:    {"Q3_K", qkK, 110, dequantQ3_K},
	TypeQ4_K:    {"Q4_K", qkK, 144, dequantQ4_K},
	TypeQ5_K:    {"Q5_K", qkK, 176, dequantQ5_K},
	TypeQ6_K:    {"Q6_K", qkK, 210, dequantQ6_K},
	TypeQ8_K:    {"Q8_K", qkK, 292, dequantQ8_K},
	TypeIQ2_XXS: {"IQ2_XXS", qkK, 66, nil},
	TypeIQ2_XS:  {"IQ2_XS", qkK, 74, nil},
	TypeIQ3_XXS: {"IQ3_XXS", qkK, 98, nil},
	TypeIQ1_S:   {"IQ1_S", qkK, 50, nil},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18, nil},
	TypeIQ3_S:   {"IQ3_S", qkK, 110, nil},
	TypeIQ2_S:   {"IQ2_S", qkK, 82, nil},
	TypeIQ4_XS:  {"IQ4_XS", qkK, 136, nil},
	TypeIQ1_M:   {"IQ1_M", qkK, 56, nil},
	TypeTQ1_0:   {"TQ1_0", qkK, 54, nil},
	TypeTQ2_0:   {"TQ2_0", qkK, 66, nil},
	TypeMXFP4:   {"MXFP4", 32, 17, nil},
}

// String returns ggml's name of the type ("Q4_K"), or "type(N)" for an unknown one.
func (t Type) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether the block layout of t is known (so tensor sizes can be checked).
func (t Type) Known() bool { _, ok := traits[t]; return ok }

// Supported reports whether t can be dequantized to float32 by this package.
func (t Type) Supported() bool { return traits[t].dequant != nil }

// BlockSize returns the number of elements per block (1 for plain types, 32 or 256 for
// quantized ones), or 0 for an unknown type.
func (t Type) BlockSize() int { return traits[t].blockSize }

// TypeSize returns the number of bytes per block, or 0 for an unknown type.
func (t Type) TypeSize() int { return traits[t].typeSize }

// RowBytes returns the bytes taken by n elements of type t (n must be a multiple of BlockSize),
// and false if t is unknown or n is not a whole number of blocks.
func (t Type) RowBytes(n int64) (int64, bool) {
	tr, ok := traits[t]
	if !ok || n < 0 || n%int64(tr.blockSize) != 0 {
		return 0, false
	}
	return n / int64(tr.blockSize) * int64(tr.typeSize), true
}
