package quant

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Host returns w as a tensor.QuantHost, the layout a backend uploads (tensor.Quantized): a 2-D
// weight [out, in]. The slices alias w's (the backend copies them). The rounding is w.DType's, so
// the backend dequantizes to exactly w.Dequantize's values.
func (w *Weight4) Host() (*tensor.QuantHost, error) {
	if len(w.Shape) != 2 {
		return nil, fmt.Errorf("4-bit weight of shape %v: a linear weight must be 2-D", w.Shape)
	}
	round, ok := roundDTypes[w.DType]
	if !ok {
		return nil, fmt.Errorf("4-bit weight: unsupported dtype %q", w.DType)
	}
	h := &tensor.QuantHost{Format: tensor.QuantNF4, Rows: w.Shape[0], Cols: w.Shape[1], Round: round,
		BlockSize: w.BlockSize, Packed: w.Packed, Absmax: w.Absmax}
	if w.Type == FP4 {
		h.Format = tensor.QuantFP4
	}
	for c := range h.Codebook {
		if w.Type == FP4 {
			h.Codebook[c] = dequantizeFP4(byte(c)) // the GPU decoder's values (-0 for code 8)
		} else {
			h.Codebook[c] = nf4Codebook[c]
		}
	}
	if nd := w.Nested; nd != nil {
		h.Absmax = nil
		h.AbsmaxCodes, h.NestedAbsmax, h.NestedMap = nd.Codes, nd.Absmax, nd.Map
		h.NestedOffset, h.NestedBlockSize = nd.Offset, nd.BlockSize
	}
	if err := h.Check(); err != nil {
		return nil, err
	}
	return h, nil
}

// Host returns q as a tensor.QuantHost (slices aliased; the backend copies them).
func (q *WeightInt8) Host() (*tensor.QuantHost, error) {
	h := &tensor.QuantHost{Format: tensor.QuantInt8, Rows: q.Rows, Cols: q.Cols, Round: tensor.F32, Int8: q.Q, SCB: q.SCB}
	if err := h.Check(); err != nil {
		return nil, err
	}
	return h, nil
}

// roundDTypes maps the torch dtype names of Weight4.DType to the rounding dtype of QuantHost.
var roundDTypes = map[string]tensor.DType{"float32": tensor.F32, "bfloat16": tensor.BF16, "float16": tensor.F16}
