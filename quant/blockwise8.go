package quant

import "fmt"

// QuantizeBlockwise8 quantizes x with the signed 8-bit dynamic map in blocks of blocksize
// elements, as bitsandbytes' quantize_blockwise does on the GPU (it is the second level of double
// quantization): per block absmax = max |x| and codes by binary search of x*float32(1/absmax) in
// the map. Returns len(x) codes and ceil(len(x)/blocksize) absmax values (new slices).
func QuantizeBlockwise8(x []float32, blocksize int) (codes []byte, absmax []float32) {
	codes = make([]byte, len(x))
	absmax = make([]float32, ceilDiv(len(x), blocksize))
	for b := range absmax {
		lo, hi := b*blocksize, min((b+1)*blocksize, len(x))
		m := absmaxOf(x[lo:hi])
		absmax[b] = m
		inv := 1 / m
		for i := lo; i < hi; i++ {
			codes[i] = quantizeDynamic(&dynamicMap, x[i]*inv)
		}
	}
	return codes, absmax
}

// DequantizeBlockwise8 decodes codes quantized blockwise with the 256-entry code table: element i
// is float32(code[codes[i]] * absmax[i/blocksize]). A new slice. It panics if absmax is short or
// the table is not 256 long (callers validate shapes first: see Weight4.Validate).
func DequantizeBlockwise8(codes []byte, absmax, code []float32, blocksize int) []float32 {
	if len(code) != 256 || len(absmax) < ceilDiv(len(codes), blocksize) {
		panic(fmt.Sprintf("quant: dequantize blockwise: %d codes, %d absmax, block %d, table of %d",
			len(codes), len(absmax), blocksize, len(code)))
	}
	out := make([]float32, len(codes))
	for i, c := range codes {
		out[i] = float32(code[c] * absmax[i/blocksize]) // rounded: no fused multiply-add with a later sum
	}
	return out
}
