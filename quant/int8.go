package quant

import (
	"fmt"
	"math"
)

// WeightInt8 is one LLM.int8 weight matrix in bitsandbytes' layout. It owns its slices.
type WeightInt8 struct {
	Rows, Cols int
	Q          []int8    // Rows*Cols codes, row-major
	SCB        []float32 // Rows row maxima of |w| after rounding w to float16 (exactly float16 values)
}

// QuantizeInt8 quantizes w (rows x cols, row-major float32) as bitsandbytes' Int8Params does when
// the layer moves to the GPU: w is rounded to float16, SCB[r] = max |w16[r,:]|, and
// Q = round-half-even(w16 * (127 / SCB[r])) with the scale computed in float32. bitsandbytes
// computes the scale with CUDA's __fdividef, whose result may differ from the IEEE quotient in the
// last bit; that changes a code only when w16*scale lies within a few ulps of a half-integer (see
// the README of testdata for what the fixtures show). Values beyond the float16 range become ±Inf
// and an all-zero row gives zero codes, as on the GPU.
func QuantizeInt8(w []float32, rows, cols int) (*WeightInt8, error) {
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("quantize int8: %d values for shape [%d %d]", len(w), rows, cols)
	}
	q := &WeightInt8{Rows: rows, Cols: cols, Q: make([]int8, len(w)), SCB: make([]float32, rows)}
	parallelFor(rows, max(1, 1<<14/cols), func(r0, r1 int) {
		row16 := make([]float32, cols)
		for r := r0; r < r1; r++ {
			src := w[r*cols : (r+1)*cols]
			for i, v := range src {
				row16[i] = roundF16(v)
			}
			m := absmaxOf(row16)
			q.SCB[r] = m
			scale := int8Scale(m)
			dst := q.Q[r*cols : (r+1)*cols]
			for i, v := range row16 {
				dst[i] = roundInt8(v * scale)
			}
		}
	})
	return q, nil
}

// int8Scale is 127/absmax in float32 (IEEE division).
func int8Scale(absmax float32) float32 { return 127 / absmax }

// roundInt8 is CUDA's __float2int_rn narrowed to int8: round half to even; NaN gives 0, values
// beyond the int8 range saturate (they cannot occur: |w*127/absmax| <= 127).
func roundInt8(f float32) int8 {
	if !(f > -128.5 && f < 127.5) { // NaN or out of range
		if f != f {
			return 0
		}
		return int8(max(-128, min(127, math.RoundToEven(float64(f)))))
	}
	// Adding and subtracting 1.5*2^23 rounds to an integer with the FPU's ties-to-even rounding.
	const magic = 0x1.8p23
	return int8(int32(float32(f+magic) - magic))
}

// Dequantize decodes q into dst (len ≥ Rows*Cols; allocated when nil or short) and returns
// dst[:Rows*Cols]: float32(Q * SCB[row]) * float32(1/127), each product rounded to float32, which
// is what PyTorch computes on the GPU for (CB.float() * SCB.unsqueeze(1)) / 127.0 (a division by a
// Python scalar runs as a multiplication by its float32 reciprocal there).
func (q *WeightInt8) Dequantize(dst []float32) []float32 {
	n := q.Rows * q.Cols
	if len(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	const inv127 = float32(1.0) / 127
	for r := 0; r < q.Rows; r++ {
		s := q.SCB[r]
		for i := r * q.Cols; i < (r+1)*q.Cols; i++ {
			dst[i] = float32(float32(q.Q[i])*s) * inv127
		}
	}
	return dst
}
