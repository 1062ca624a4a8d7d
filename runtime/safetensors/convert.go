package safetensors

import (
	"encoding/binary"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// F8E4M3ToFloat32 decodes a float8 e4m3fn byte (bias 7, max ±448, S.1111.111 is NaN, no Inf).
func F8E4M3ToFloat32(b uint8) float32 {
	exp := int(b>>3) & 0xf
	mant := float32(b & 7)
	var f float32
	switch {
	case exp == 0xf && b&7 == 7:
		f = float32(math.NaN())
	case exp == 0:
		f = mant / 8 * (1.0 / 64)
	default:
		f = (1 + mant/8) * float32(math.Ldexp(1, exp-7))
	}
	if b&0x80 != 0 {
		f = -f
	}
	return f
}

// F8E5M2ToFloat32 decodes a float8 e5m2 byte (the upper byte of an IEEE half: bias 15, Inf, NaN).
func F8E5M2ToFloat32(b uint8) float32 { return tensor.F16ToFloat32(uint16(b) << 8) }

// Float32Bytes encodes v as little-endian float32 bytes, 4*len(v) bytes in a new slice.
func Float32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return out
}

// BytesFloat32 decodes little-endian float32 bytes into a new slice of len(b)/4 values; a trailing
// partial element is ignored.
func BytesFloat32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// decodeFloat32 converts n elements of dtype d in little-endian data to float32 into dst
// (len(dst) == len(data)/d.Size()). Integers convert by value (64-bit ones may round), BOOL to 0/1.
func decodeFloat32(d DType, data []byte, dst []float32) {
	le := binary.LittleEndian
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(data[4*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(data[8*i:])))
		}
	case F16:
		for i := range dst {
			dst[i] = tensor.F16ToFloat32(le.Uint16(data[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = tensor.BF16ToFloat32(le.Uint16(data[2*i:]))
		}
	case F8_E4M3:
		for i := range dst {
			dst[i] = F8E4M3ToFloat32(data[i])
		}
	case F8_E5M2:
		for i := range dst {
			dst[i] = F8E5M2ToFloat32(data[i])
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(data[8*i:])))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(data[4*i:])))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(data[2*i:])))
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(data[i]))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(data[8*i:]))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(data[4*i:]))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(data[2*i:]))
		}
	case U8:
		for i := range dst {
			dst[i] = float32(data[i])
		}
	case BOOL:
		for i := range dst {
			if data[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		panic("safetensors: decodeFloat32 of unknown dtype " + string(d)) // callers validated the dtype
	}
}
