package safetensors

// DType is a tensor element type as spelled in a safetensors header ("F32", "BF16", "F8_E4M3", ...).
type DType string

// The element types of the safetensors format. F8_E4M3 is torch.float8_e4m3fn (no infinities, one
// NaN pattern per sign); F8_E5M2 is torch.float8_e5m2 (IEEE-like, with infinities).
const (
	F64     DType = "F64"
	F32     DType = "F32"
	F16     DType = "F16"
	BF16    DType = "BF16"
	I64     DType = "I64"
	I32     DType = "I32"
	I16     DType = "I16"
	I8      DType = "I8"
	U8      DType = "U8"
	U16     DType = "U16"
	U32     DType = "U32"
	U64     DType = "U64"
	BOOL    DType = "BOOL"
	F8_E4M3 DType = "F8_E4M3"
	F8_E5M2 DType = "F8_E5M2"
)

var dtypeSizes = map[DType]int{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
}

// Size returns the number of bytes per element of d, or 0 for a dtype this package does not know.
func (d DType) Size() int { return dtypeSizes[d] }

// Known reports whether d is one of the dtypes above.
func (d DType) Known() bool { return dtypeSizes[d] != 0 }

// DTypes returns every known dtype, in a fixed order (for tests and error messages).
func DTypes() []DType {
	return []DType{F64, F32, F16, BF16, I64, I32, I16, I8, U8, U16, U32, U64, BOOL, F8_E4M3, F8_E5M2}
}
