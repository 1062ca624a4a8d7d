package quant

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

// codeNF4 equals quantizeNF4(x).
func codeNF4(x float32) byte {
	i := 0
	if x > nf4Thresholds[7] {
		i = 8
	}
	if x > nf4Thresholds[i+3] {
		i += 4
	}
	if x > nf4Thresholds[i+1] {
		i += 2
	}
	if x > nf4Thresholds[i] {
		i++
	}
	return byte(i)
}

// codeFP4 equals quantizeFP4(x).
func codeFP4(x float32) byte {
	var sign byte
	if x < 0 {
		sign = 0b1000
		x = -x
	}
	i := 0
	if x > fp4Thresholds[3] {
		i = 4
	}
	if x > fp4Thresholds[i+1] {
		i += 2
	}
	if x > fp4Thresholds[i] {
		i++
	}
	return fp4Magnitude[i] | sign
}
