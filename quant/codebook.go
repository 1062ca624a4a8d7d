package quant

import (
	"fmt"
	"sort"
)

// QuantType names a 4-bit data type: "nf4" or "fp4", spelled as bitsandbytes spells it.
type QuantType string

// The 4-bit data types.
const (
	NF4 QuantType = "nf4"
	FP4 QuantType = "fp4"
)

// Valid reports whether t is NF4 or FP4.
func (t QuantType) Valid() bool { return t == NF4 || t == FP4 }

// nf4Codebook is the NormalFloat4 code of bitsandbytes (QLoRA, Dettmers et al. 2023): the
// quantiles of N(0,1) normalised to [-1, 1], with an exact zero at code 7. The decimal values are
// bitsandbytes' own (functional.get_4bit_type and the CUDA lookup table); each rounds to one float32.
var nf4Codebook = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// fp4Raw is bitsandbytes' FP4 (1 sign, 2 exponent, 1 mantissa bit, bias 3, no inf/NaN) before
// normalisation by its absmax 12: code bit 3 is the sign, bits 0-2 index the magnitude.
var fp4Raw = [16]float32{0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3}

// fp4Codebook is fp4Raw / 12 in float32, as get_4bit_type("fp4") computes it (code 8 is +0 there:
// the Python list spells it as the integer -0; the GPU decoder gives -0 for it, see dequantizeFP4).
var fp4Codebook = func() (c [16]float32) {
	for i, v := range fp4Raw {
		c[i] = v / 12
	}
	return c
}()

// Codebook returns the 16 float32 values of a 4-bit type, indexed by the 4-bit code (a new slice).
// It panics on an invalid type (a programming error: check Valid first).
func Codebook(t QuantType) []float32 {
	switch t {
	case NF4:
		return append([]float32(nil), nf4Codebook[:]...)
	case FP4:
		return append([]float32(nil), fp4Codebook[:]...)
	}
	panic(fmt.Sprintf("quant: no codebook for quant type %q", string(t)))
}

// quantizeNF4 returns the NF4 code of x (x normalised to [-1, 1] by the block absmax): the nearest
// codebook entry, found with bitsandbytes' decision tree over the midpoints between neighbouring
// entries (float32 thresholds, strict comparisons; a NaN gives code 0 as on the GPU).
func quantizeNF4(x float32) byte {
	if x > 0.03979014977812767 {
		if x > 0.3893125355243683 {
			if x > 0.6427869200706482 {
				if x > 0.8614784181118011 {
					return 0b1111
				}
				return 0b1110
			}
			if x > 0.5016634166240692 {
				return 0b1101
			}
			return 0b1100
		}
		if x > 0.2035212516784668 {
			if x > 0.2920137718319893 {
				return 0b1011
			}
			return 0b1010
		}
		if x > 0.1202552504837513 {
			return 0b1001
		}
		return 0b1000
	}
	if x > -0.33967943489551544 {
		if x > -0.13791173323988914 {
			if x > -0.045525018125772476 {
				return 0b0111
			}
			return 0b0110
		}
		if x > -0.23460740596055984 {
			return 0b0101
		}
		return 0b0100
	}
	if x > -0.6106329262256622 {
		if x > -0.4599952697753906 {
			return 0b0011
		}
		return 0b0010
	}
	if x > -0.8480964004993439 {
		return 0b0001
	}
	return 0b0000
}

// quantizeFP4 returns the FP4 code of x in [-1, 1]: sign bit 3 for x < 0, then bitsandbytes'
// decision tree on |x| (its float32 thresholds, which are the midpoints of the normalised codebook
// up to the precision bitsandbytes wrote them with).
func quantizeFP4(x float32) byte {
	var sign byte
	if x < 0 {
		sign = 0b1000
		x = -x
	}
	if x > 0.29166667 {
		if x > 0.583333 {
			if x > 0.8333333 {
				return 0b0011 + sign
			}
			return 0b0010 + sign
		}
		if x > 0.4166667 {
			return 0b0101 + sign
		}
		return 0b0100 + sign
	}
	if x > 0.0859375 {
		if x > 0.20833333 {
			return 0b0111 + sign
		}
		return 0b0110 + sign
	}
	if x > 0.00260417 {
		return 0b0001 + sign
	}
	return 0b0000 + sign
}

// dequantizeFP4 is the GPU's FP4 decoding: magnitude table times a ±1 sign (code 8, "-0", gives -0).
func dequantizeFP4(c byte) float32 {
	v := fp4Codebook[c&7]
	if c&8 != 0 {
		return -v
	}
	return v
}

// DynamicMap returns bitsandbytes' signed 8-bit dynamic quantization map
// (functional.create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)): 256 float32
// values in ascending order from -1 to 1, with 0 and 1 included. It is the code of the double
// quantization of the 4-bit absmax ("nested_quant_map"). The values are computed the way PyTorch
// computes them: torch.linspace(0.1, 1, 2^i+1) in float32 (start + step*k from the start for the
// first half, end - step*(steps-1-k) for the second, each one fused multiply-add), midpoints of
// neighbours, times 10^(i-6) rounded to float32, for i = 0..6, both signs. A new slice.
func DynamicMap() []float32 {
	return append([]float32(nil), dynamicMap[:]...)
}

var dynamicMap = func() (m [256]float32) {
	data := make([]float64, 0, 256)
	for i := 0; i < 7; i++ {
		b := linspace32(0.1, 1, 1<<i+1)
		scale := float32(pow10(i - 6))
		for _, sign := range []float32{1, -1} {
			for j := 0; j+1 < len(b); j++ {
				mid := (b[j] + b[j+1]) / 2
				data = append(data, float64(mid*(sign*scale)))
			}
		}
	}
	data = append(data, 0, 1)
	sort.Float64s(data)
	for i := range m {
		m[i] = float32(data[i])
	}
	return m
}()

// linspace32 reproduces torch.linspace(start, end, steps) for float32 on the CPU, whose kernel
// computes fma(step, k, start) below the midpoint and fma(-step, steps-1-k, end) from it. The
// products and sums here are exact in float64 (24-bit by 7-bit operands within a few binades), so
// one rounding to float32 is the fused operation's rounding.
func linspace32(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = start
		return out
	}
	step := (end - start) / float32(steps-1)
	for k := range out {
		if k < steps/2 {
			out[k] = float32(float64(step)*float64(k) + float64(start))
		} else {
			out[k] = float32(float64(end) - float64(step)*float64(steps-1-k))
		}
	}
	return out
}

// pow10 returns 10^e as Python computes 10**e (e in -6..0): the correctly rounded double.
func pow10(e int) float64 {
	return [...]float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1}[e+6]
}

// quantizeDynamic returns the code of x (normalised to [-1, 1]) in a sorted 256-entry map by
// bitsandbytes' binary search (dQuantize without stochastic rounding): seven halving steps from
// pivot 127, then the nearer of the two neighbours by a float32 midpoint, ties to the lower
// neighbour when x is above the pivot and to the pivot when below.
func quantizeDynamic(code *[256]float32, x float32) byte {
	pivot, upperPivot, lowerPivot := 127, 255, 0
	lower, upper := float32(-1), float32(1)
	val := code[pivot]
	for i := 64; i > 0; i >>= 1 {
		if x > val {
			lowerPivot, lower = pivot, val
			pivot += i
		} else {
			upperPivot, upper = pivot, val
			pivot -= i
		}
		val = code[pivot]
	}
	if upperPivot == 255 {
		upper = code[upperPivot]
	}
	if lowerPivot == 0 {
		lower = code[lowerPivot]
	}
	if x > val {
		if x > (upper+val)*0.5 {
			return byte(upperPivot)
		}
		return byte(pivot)
	}
	if x < (lower+val)*0.5 {
		return byte(lowerPivot)
	}
	return byte(pivot)
}
