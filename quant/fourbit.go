package quant

import (
	"fmt"
	"math"
)

// DefaultBlockSize is bitsandbytes' default 4-bit block size (elements per absmax).
const DefaultBlockSize = 64

// NestedBlockSize is the block size of the double quantization of the absmax (bitsandbytes fixes
// it at 256).
const NestedBlockSize = 256

// Options4 configures 4-bit quantization.
type Options4 struct {
	Type        QuantType // NF4 or FP4
	BlockSize   int       // elements per absmax: a power of two in [64, 4096]; 0 means 64
	DoubleQuant bool      // quantize the absmax too (transformers' bnb_4bit_use_double_quant)
	// DType is the torch dtype name of the weight as it was quantized ("float32", "bfloat16" or
	// "float16"; "" means "float32"). It is recorded in the quant state, and Dequantize rounds its
	// output to it, as bitsandbytes dequantizes into the original dtype. The values given to
	// Quantize4 must already be representable in it (see RoundToDType).
	DType string
}

// Weight4 is one 4-bit quantized weight matrix in bitsandbytes' layout. It owns its slices.
type Weight4 struct {
	Type      QuantType
	Shape     []int  // the original shape, e.g. [out, in] of a linear layer
	DType     string // the original torch dtype name ("float32", "bfloat16", "float16")
	BlockSize int    // elements per absmax block
	// Packed holds (n+1)/2 bytes for n = product of Shape: element 2i (row-major) in the high
	// nibble of byte i, element 2i+1 in the low nibble (a padding nibble, code of 0, when n is odd).
	Packed []byte
	// Absmax holds ceil(n/BlockSize) float32 block maxima of |w|; nil when Nested is set.
	Absmax []float32
	// Nested holds the double-quantized absmax; nil without double quantization.
	Nested *NestedAbsmax
}

// NestedAbsmax is the absmax of a 4-bit weight quantized a second time (double quantization):
// absmax[b] ≈ Map[Codes[b]] * Absmax[b/BlockSize] + Offset.
type NestedAbsmax struct {
	Codes     []byte    // one 8-bit code per 4-bit block
	Absmax    []float32 // ceil(len(Codes)/BlockSize) maxima of |absmax - Offset|
	Offset    float32   // the mean of the 4-bit absmax, subtracted before quantizing
	BlockSize int       // 256
	Map       []float32 // the 8-bit code, 256 values (DynamicMap())
}

// NumElements returns the number of weight elements (the product of Shape).
func (w *Weight4) NumElements() int { return numElements(w.Shape) }

// NumBlocks returns the number of absmax blocks, ceil(n/BlockSize).
func (w *Weight4) NumBlocks() int { return ceilDiv(w.NumElements(), w.BlockSize) }

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// CheckBlockSize reports whether bs is a block size bitsandbytes' 4-bit and 8-bit blockwise
// kernels accept (a power of two from 64 to 4096).
func CheckBlockSize(bs int) error {
	if bs < 64 || bs > 4096 || bs&(bs-1) != 0 {
		return fmt.Errorf("block size %d: must be a power of two from 64 to 4096", bs)
	}
	return nil
}

// Quantize4 quantizes w (row-major float32 values of the given shape, len(w) = product of shape)
// to 4 bits as bitsandbytes' quantize_4bit does on the GPU: per block of o.BlockSize elements the
// absmax of |w|, then each element times float32(1/absmax) is coded by the NF4 or FP4 decision
// tree. With o.DoubleQuant the absmax is then reduced to 8 bits (see NestedAbsmax). w is not kept.
func Quantize4(w []float32, shape []int, o Options4) (*Weight4, error) {
	if !o.Type.Valid() {
		return nil, fmt.Errorf("quantize 4-bit: unknown quant type %q (want nf4 or fp4)", string(o.Type))
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if err := CheckBlockSize(o.BlockSize); err != nil {
		return nil, fmt.Errorf("quantize 4-bit: %w", err)
	}
	if o.DType == "" {
		o.DType = "float32"
	}
	if _, ok := dtypeRounders[o.DType]; !ok {
		return nil, fmt.Errorf("quantize 4-bit: unsupported source dtype %q (want float32, bfloat16 or float16)", o.DType)
	}
	n := numElements(shape)
	if n != len(w) || n == 0 {
		return nil, fmt.Errorf("quantize 4-bit: %d values for shape %v", len(w), shape)
	}
	q := &Weight4{
		Type:      o.Type,
		Shape:     append([]int(nil), shape...),
		DType:     o.DType,
		BlockSize: o.BlockSize,
		Packed:    make([]byte, (n+1)/2),
		Absmax:    make([]float32, ceilDiv(n, o.BlockSize)),
	}
	code := codeNF4
	if o.Type == FP4 {
		code = codeFP4
	}
	bs := o.BlockSize
	parallelFor(len(q.Absmax), 1<<16/bs, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			lo, hi := b*bs, min((b+1)*bs, n)
			x := w[lo:hi]
			m := absmaxOf(x)
			q.Absmax[b] = m
			inv := 1 / m // +Inf for an all-zero block: 0*Inf = NaN codes as 0, as on the GPU
			out := q.Packed[lo/2 : (hi+1)/2]
			for i := 0; i+1 < len(x); i += 2 {
				out[i/2] = code(x[i]*inv)<<4 | code(x[i+1]*inv)
			}
			if len(x)%2 == 1 { // odd tail: the missing element is loaded as 0
				out[len(x)/2] = code(x[len(x)-1]*inv)<<4 | code(0*inv)
			}
		}
	})
	if o.DoubleQuant {
		q.Nested = nestAbsmax(q.Absmax)
		q.Absmax = nil
	}
	return q, nil
}

// absmaxOf is max |x| over x with NaNs skipped (CUDA fmaxf semantics), 0 for no values. The fast
// loop uses the builtin max (branch-free, but NaN-propagating); a NaN result reruns the NaN-skipping
// loop, so the result is fmaxf's in every case.
func absmaxOf(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, math.Float32frombits(math.Float32bits(v)&0x7fffffff))
	}
	if m == m {
		return m
	}
	m = 0
	for _, v := range x {
		if v < 0 {
			v = -v
		}
		if v > m {
			m = v
		}
	}
	return m
}

// nestAbsmax double-quantizes absmax as bitsandbytes does: offset = absmax.mean() (float32, in the
// summation order of PyTorch's CUDA reduction, see cudaMean), then the blockwise 8-bit
// quantization of absmax - offset with the dynamic map in blocks of 256.
func nestAbsmax(absmax []float32) *NestedAbsmax {
	off := cudaMean(absmax)
	centred := make([]float32, len(absmax))
	for i, a := range absmax {
		centred[i] = a - off
	}
	codes, scale := QuantizeBlockwise8(centred, NestedBlockSize)
	return &NestedAbsmax{Codes: codes, Absmax: scale, Offset: off, BlockSize: NestedBlockSize, Map: DynamicMap()}
}

// BlockAbsmax returns the float32 absmax of every 4-bit block: Absmax itself, or the double
// quantized values decoded as bitsandbytes decodes them (float32(Map[code] * nested absmax), then
// plus Offset, each rounded to float32). A new slice.
func (w *Weight4) BlockAbsmax() []float32 {
	if w.Nested == nil {
		return append([]float32(nil), w.Absmax...)
	}
	nd := w.Nested
	out := DequantizeBlockwise8(nd.Codes, nd.Absmax, nd.Map, nd.BlockSize)
	for i := range out {
		out[i] += nd.Offset
	}
	return out
}

// Dequantize decodes w into dst (len ≥ n; allocated when nil or short) and returns dst[:n]: each
// element is float32(codebook[code] * absmax[block]), then rounded to w.DType (a no-op for
// float32), exactly bitsandbytes' dequantize_4bit on the GPU. w must be consistent, as Quantize4
// and ReadWeight4 return it (slice lengths matching Shape and BlockSize); otherwise it panics.
func (w *Weight4) Dequantize(dst []float32) []float32 {
	n := w.NumElements()
	if len(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	absmax := w.BlockAbsmax()
	var lut [16]float32
	for c := range lut {
		if w.Type == FP4 {
			lut[c] = dequantizeFP4(byte(c))
		} else {
			lut[c] = nf4Codebook[c]
		}
	}
	round := dtypeRounders[w.DType]
	bs := w.BlockSize
	parallelFor(len(absmax), 1<<16/bs, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			lo, hi := b*bs, min((b+1)*bs, n)
			m := absmax[b]
			for i := lo; i < hi; i++ {
				c := w.Packed[i/2]
				if i%2 == 0 {
					c >>= 4
				}
				dst[i] = lut[c&15] * m
			}
			if round != nil {
				for i := lo; i < hi; i++ {
					dst[i] = round(dst[i])
				}
			}
		}
	})
	return dst
}

// dtypeRounders maps a torch dtype name to the rounding of a float32 to it (nil: float32 itself).
var dtypeRounders = map[string]func(float32) float32{
	"float32":  nil,
	"bfloat16": roundBF16,
	"float16":  roundF16,
}

// RoundToDType rounds every value of x in place to the torch dtype named ("float32": unchanged,
// "bfloat16", "float16": round to nearest even), as transformers does when it loads a checkpoint
// in that dtype before quantizing.
func RoundToDType(x []float32, dtype string) error {
	r, ok := dtypeRounders[dtype]
	if !ok {
		return fmt.Errorf("round to dtype: unsupported dtype %q", dtype)
	}
	if r != nil {
		for i, v := range x {
			x[i] = r(v)
		}
	}
	return nil
}

// isFinite32 reports whether f is neither infinite nor NaN.
func isFinite32(f float32) bool { return !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f)) }

func float32nan() float32 { return float32(math.NaN()) }
