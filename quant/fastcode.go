package quant

import "math"

// Branch-light forms of bitsandbytes' NF4 and FP4 decision trees (codebook.go). The trees are
// binary searches over sorted thresholds with strict comparisons, so the same four (three)
// comparisons indexed arithmetically give the same code for every input, NaN included (all
// comparisons false: code 0); TestFastCodesMatchTrees checks it at and around every threshold.

// nf4Thresholds are the 15 thresholds of quantizeNF4 in ascending order: x > nf4Thresholds[k]
// separates code k from k+1.
var nf4Thresholds = [15]float32{
	-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
	-0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
	0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
	0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
}

// fp4Thresholds are the 7 magnitude thresholds of quantizeFP4 in ascending order, and
// fp4Magnitude the code of each of the 8 intervals (bitsandbytes' FP4 codes are not monotone).
var (
	fp4Thresholds = [7]float32{0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333}
	fp4Magnitude  = [8]byte{0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011}
)

// nf4Thr16 is nf4Thresholds padded to 16 entries so that masked indexes need no bounds check.
var nf4Thr16 = func() (t [16]float32) {
	copy(t[:], nf4Thresholds[:])
	t[15] = float32(math.Inf(1))
	return t
}()

// b2i is 1 for true; the compiler turns it into a flag-to-register move (no branch).
func b2i(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// codeNF4 equals quantizeNF4(x).
func codeNF4(x float32) byte {
	i := b2i(x > nf4Thr16[7]) << 3
	i |= b2i(x > nf4Thr16[(i+3)&15]) << 2
	i |= b2i(x > nf4Thr16[(i+1)&15]) << 1
	i |= b2i(x > nf4Thr16[i&15])
	return byte(i)
}

// fp4Thr8 is fp4Thresholds padded to 8 entries.
var fp4Thr8 = [8]float32{0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333, float32(math.Inf(1))}

// codeFP4 equals quantizeFP4(x).
func codeFP4(x float32) byte {
	var sign byte
	if x < 0 {
		sign = 0b1000
		x = -x
	}
	i := b2i(x > fp4Thr8[3]) << 2
	i |= b2i(x > fp4Thr8[(i+1)&7]) << 1
	i |= b2i(x > fp4Thr8[i&7])
	return fp4Magnitude[i&7] | sign
}
