package safetensors

import (
	"encoding/binary"
	"math"
)

// BF16ToFloat32 widens a bfloat16 bit pattern to float32 (exact).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 rounds f to the nearest bfloat16, ties to even (as PyTorch does). NaNs stay NaN
// (sign kept, quiet bit set); values beyond the bfloat16 range round to ±Inf.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 widens an IEEE 754 half-precision bit pattern to float32 (exact, subnormals,
// infinities and NaN payloads included).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
}

// Float32ToF16 rounds f to the nearest IEEE half, ties to even; overflow gives ±Inf, tiny values
// round to half subnormals or ±0, NaN stays NaN.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): value = m * 2^-24 with m = full mantissa >> shift.
		if e < -10 {
			return sign // rounds to zero (below half the smallest subnormal, or exactly half: ties to even 0)
		}
		full := mant | 0x800000 // 24-bit significand
		shift := uint32(14 - e) // 13 + (1 - e)
		m := full >> shift
		rem := full & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	m := mant >> 13
	rem := mant & 0x1fff
	h := uint32(e)<<10 | m
	if rem > 0x1000 || (rem == 0x1000 && m&1 == 1) {
		h++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(h)
}

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
func F8E5M2ToFloat32(b uint8) float32 { return F16ToFloat32(uint16(b) << 8) }

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
			dst[i] = F16ToFloat32(le.Uint16(data[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(le.Uint16(data[2*i:]))
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
