package quant

import (
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// roundBF16 rounds f to the nearest bfloat16 (ties to even), returned as float32.
func roundBF16(f float32) float32 { return tensor.BF16ToFloat32(tensor.Float32ToBF16(f)) }

// roundF16 rounds f to the nearest IEEE half (ties to even), returned as float32. Where the result
// is a normal half (2^-14 <= |f| < 65520) it rounds the float32 bits at mantissa bit 13 directly;
// elsewhere (half subnormals, overflow to Inf, Inf, NaN) it converts through the half bit pattern
// with runtime/tensor's converters. TestFastRoundings checks the two agree.
func roundF16(f float32) float32 {
	b := math.Float32bits(f)
	e := (b >> 23) & 0xff
	if e >= 127-14 && e <= 127+15 {
		r := b + 0xfff + (b>>13)&1
		r &^= 0x1fff
		if (r>>23)&0xff <= 127+15 { // still finite in half precision
			return math.Float32frombits(r)
		}
	}
	return tensor.F16ToFloat32(tensor.Float32ToF16(f))
}
