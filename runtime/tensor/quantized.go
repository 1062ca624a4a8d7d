package tensor

import "fmt"

// QuantFormat is the layout of a quantized weight matrix (QTensor).
type QuantFormat uint8

// Quantized weight layouts, as bitsandbytes defines them (see package quant for the reference
// coders and the checkpoint layouts).
const (
	QuantNone QuantFormat = iota
	// QuantNF4 and QuantFP4: 4-bit codes, two per byte (element 2i of the row-major matrix in the
	// high nibble of byte i), decoded as Codebook[code] · absmax[block], block = element/BlockSize.
	QuantNF4
	QuantFP4
	// QuantInt8: LLM.int8, int8 codes row-major with a row scale SCB, decoded as
	// float32(float32(code)·SCB[row]) · float32(1/127).
	QuantInt8
)

var quantFormatNames = [...]string{QuantNone: "none", QuantNF4: "nf4", QuantFP4: "fp4", QuantInt8: "int8"}

// String returns "nf4", "fp4", "int8" (or "none").
func (f QuantFormat) String() string {
	if int(f) < len(quantFormatNames) {
		return quantFormatNames[f]
	}
	return fmt.Sprintf("QuantFormat(%d)", uint8(f))
}

// Is4Bit reports whether f is NF4 or FP4.
func (f QuantFormat) Is4Bit() bool { return f == QuantNF4 || f == QuantFP4 }

// QuantHost is a quantized matrix [Rows, Cols] on the host, in bitsandbytes' layouts, to be
// uploaded with Quantized.QuantFromHost (which copies what it keeps: the caller may reuse the
// slices afterwards). The dequantized element (r, c), with e = r·Cols + c, is:
//
//	4-bit:  round(Codebook[nibble e] · absmax(e / BlockSize))
//	        absmax(b) = Absmax[b], or with double quantization (Absmax nil)
//	        absmax(b) = float32(NestedMap[AbsmaxCodes[b]] · NestedAbsmax[b / NestedBlockSize]) + NestedOffset
//	int8:   round(float32(float32(Int8[e]) · SCB[r]) · float32(1/127))
//
// every product rounded to float32 (no fused multiply-add), and round() the rounding to Round
// (F32: none; BF16 or F16: to nearest even), as bitsandbytes dequantizes into the weight's
// original dtype. These are exactly the values of quant.Weight4.Dequantize and
// quant.WeightInt8.Dequantize.
type QuantHost struct {
	Format     QuantFormat
	Rows, Cols int   // the matrix shape [out, in] of a linear layer
	Round      DType // F32, BF16 or F16 (Invalid means F32)

	// 4-bit fields.
	BlockSize       int         // elements per absmax block (a power of two ≥ 2)
	Codebook        [16]float32 // the NF4 or FP4 code values
	Packed          []byte      // ceil(Rows·Cols/2) bytes
	Absmax          []float32   // ceil(n/BlockSize) block maxima; nil with double quantization
	AbsmaxCodes     []byte      // double quantization: one 8-bit code per block
	NestedAbsmax    []float32   // ceil(blocks/NestedBlockSize) maxima of the centred absmax
	NestedMap       []float32   // 256 code values of the 8-bit dynamic map
	NestedOffset    float32     // the mean of the absmax, added back
	NestedBlockSize int         // blocks per nested absmax (256)

	// int8 fields.
	Int8 []int8    // Rows·Cols codes, row-major
	SCB  []float32 // Rows row scales
}

// Check validates the sizes of h's slices against its format and shape.
func (h *QuantHost) Check() error {
	if h.Rows <= 0 || h.Cols <= 0 {
		return fmt.Errorf("quantized %s [%d %d]: bad shape: %w", h.Format, h.Rows, h.Cols, ErrShape)
	}
	switch h.Round {
	case Invalid, F32, BF16, F16:
	default:
		return fmt.Errorf("quantized %s: rounding to %s: %w", h.Format, h.Round, ErrDType)
	}
	n := h.Rows * h.Cols
	bad := func(what string, got, want int) error {
		return fmt.Errorf("quantized %s [%d %d]: %s has %d entries, want %d: %w", h.Format, h.Rows, h.Cols, what, got, want, ErrShape)
	}
	switch h.Format {
	case QuantNF4, QuantFP4:
		bs := h.BlockSize
		if bs < 2 || bs&(bs-1) != 0 {
			return fmt.Errorf("quantized %s: block size %d is not a power of two ≥ 2: %w", h.Format, bs, ErrShape)
		}
		nb := (n + bs - 1) / bs
		if len(h.Packed) != (n+1)/2 {
			return bad("Packed", len(h.Packed), (n+1)/2)
		}
		if h.Absmax != nil {
			if len(h.Absmax) != nb {
				return bad("Absmax", len(h.Absmax), nb)
			}
			return nil
		}
		if len(h.AbsmaxCodes) != nb {
			return bad("AbsmaxCodes", len(h.AbsmaxCodes), nb)
		}
		if h.NestedBlockSize <= 0 {
			return fmt.Errorf("quantized %s: nested block size %d: %w", h.Format, h.NestedBlockSize, ErrShape)
		}
		if want := (nb + h.NestedBlockSize - 1) / h.NestedBlockSize; len(h.NestedAbsmax) != want {
			return bad("NestedAbsmax", len(h.NestedAbsmax), want)
		}
		if len(h.NestedMap) != 256 {
			return bad("NestedMap", len(h.NestedMap), 256)
		}
	case QuantInt8:
		if len(h.Int8) != n {
			return bad("Int8", len(h.Int8), n)
		}
		if len(h.SCB) != h.Rows {
			return bad("SCB", len(h.SCB), h.Rows)
		}
	default:
		return fmt.Errorf("quantized: unknown format %s: %w", h.Format, ErrDType)
	}
	return nil
}

// QTensor is a quantized weight matrix [Rows, Cols] held by a backend in its quantized layout
// (never dense). It is made by Quantized.QuantFromHost and owned by the caller, who frees it with
// Free exactly once (a second Free is a no-op). Ops read it as the weight W of a linear layer
// y = x·Wᵀ (see Quantized.QuantMatMul).
type QTensor struct {
	format     QuantFormat
	rows, cols int
	bytes      int64
	b          Backend
	data       any
}

// NewQTensor wraps backend storage of a quantized matrix. For Backend implementations only:
// bytes is the storage the backend holds for it (for memory accounting); data its private handle.
func NewQTensor(b Backend, f QuantFormat, rows, cols int, bytes int64, data any) *QTensor {
	return &QTensor{format: f, rows: rows, cols: cols, bytes: bytes, b: b, data: data}
}

// Format is the quantized layout.
func (q *QTensor) Format() QuantFormat { return q.format }

// Rows is the first dimension (a linear layer's out features).
func (q *QTensor) Rows() int { return q.rows }

// Cols is the second dimension (in features).
func (q *QTensor) Cols() int { return q.cols }

// Shape returns [Rows, Cols].
func (q *QTensor) Shape() []int { return []int{q.rows, q.cols} }

// Bytes is the backend storage of the quantized matrix (codes, scales, nested scales, tables).
func (q *QTensor) Bytes() int64 { return q.bytes }

// Backend is the backend holding the storage.
func (q *QTensor) Backend() Backend { return q.b }

// Data is the backend-private handle, nil once freed. For Backend implementations only.
func (q *QTensor) Data() any {
	if q == nil {
		return nil
	}
	return q.data
}

// Freed reports whether the storage was released.
func (q *QTensor) Freed() bool { return q.Data() == nil }

// Free releases the storage through the backend (which must implement Quantized); freeing nil or
// a freed QTensor is a no-op.
func (q *QTensor) Free() error {
	if q == nil || q.data == nil {
		return nil
	}
	qb, ok := q.b.(Quantized)
	if !ok {
		return fmt.Errorf("free %v: backend %s has no quantized ops: %w", q, q.b.Name(), ErrUnsupported)
	}
	err := qb.QuantFree(q)
	q.data = nil
	return err
}

// String describes the matrix: "nf4[64 128]@cpu".
func (q *QTensor) String() string {
	if q == nil {
		return "<nil qtensor>"
	}
	name := "?"
	if q.b != nil {
		name = q.b.Name()
	}
	s := fmt.Sprintf("%s[%d %d]@%s", q.format, q.rows, q.cols, name)
	if q.data == nil {
		s += "(freed)"
	}
	return s
}

// Quantized is the extension interface of a backend that holds weights quantized (NF4, FP4,
// LLM.int8) and multiplies by them, for QLoRA training and quantized inference. Callers find it
// with a type assertion (qb, ok := b.(tensor.Quantized)); Capabilities.Extensions lists
// "quantized". Compute is float32 like every op: the CPU reference dequantizes the weight tile by
// tile on the fly (exactly QuantHost's formula) and reuses its float64-accumulating Gemm kernels,
// so the results equal a dense Gemm on the dequantized float32 weight.
//
// What a GPU backend implements: QuantFromHost uploads the packed codes, absmax (or the nested
// codes, nested absmax, 256-entry map and offset), codebook and SCB as they are (device memory
// ≈ the quantized size); QuantMatMul with transW (the forward x·Wᵀ: prefill and training) may
// dequantize W into a bf16 scratch and call cuBLASLt, and for few rows (decode, M ≤ ~8) should read
// the 4-bit/8-bit codes directly in a GEMV kernel; without transW (the backward dX = dY·W of a
// frozen layer) the same dequantized scratch feeds a non-transposed GEMM. QuantToFloat32 is the
// dequantization kernel (copy back to the host); its values must equal QuantHost's formula
// exactly (float32 products without fused multiply-add: __fmul_rn, then __float2bfloat16_rn /
// __float2half_rn for Round). The conformance suite is tensortest.RunQuantized(t, backend, tol):
// exact dequantization, QuantMatMul within tol of a float64 product (tol 0 for the CPU: bit-equal
// to Gemm on the dequantized weight), memory returned on Free, ErrShape/ErrFreed. Report
// "quantized" in Capabilities.Extensions.
type Quantized interface {
	// QuantFromHost validates h (QuantHost.Check) and stores it on the device in its quantized
	// layout. The caller owns the result (QTensor.Free).
	QuantFromHost(h *QuantHost) (*QTensor, error)
	// QuantMatMul sets out = alpha·x·op(W) + beta·out with op(W) = Wᵀ when transW (x [.., Cols],
	// out [.., Rows]: a linear layer's forward) and W otherwise (x [.., Rows], out [.., Cols]: the
	// backward dX = dY·W). x and out are F32 (seen as matrices), out must not alias x; beta = 0
	// ignores out's old contents.
	QuantMatMul(out, x *Tensor, w *QTensor, transW bool, alpha, beta float32) error
	// QuantToFloat32 returns the dequantized matrix, Rows·Cols float32 values row-major (a new
	// host slice owned by the caller).
	QuantToFloat32(w *QTensor) ([]float32, error)
	// QuantFree releases w's storage (prefer w.Free()).
	QuantFree(w *QTensor) error
}

// QuantSwiGLUer is implemented by backends with a fused kernel for the first half of a SwiGLU MLP
// whose gate and up weights are quantized: out = silu(x·Gᵀ) ⊙ (x·Uᵀ) in one step, the decode-time
// fusion of two products and the elementwise SwiGLU. x is F32 [.., Cols], out F32 [.., Rows]
// (overwritten; not aliasing x); gate and up have the same Rows and Cols. It reports false, doing
// nothing, when the fused kernel does not apply (the shapes, layouts or number of rows it takes);
// the caller then runs the two products and SwiGLU itself. The result equals that sequence within
// the backend's quantized-product bound.
//
// With norm set, x is first normalized as Backend.RMSNorm(x', x, norm.W, norm.Eps, norm.AddOne)
// would (the post-attention norm folded in; x' is not materialized).
type QuantSwiGLUer interface {
	QuantSwiGLU(out, x *Tensor, gate, up *QTensor, norm *RMSNormSpec) (bool, error)
}

// RMSNormSpec is an RMSNorm that a fused op applies to its input first, as Backend.RMSNorm does:
// x / sqrt(mean(x²) + Eps) · w' with w' = W (or 1 + W with AddOne); W is [Cols] of a float dtype,
// owned by the caller.
type RMSNormSpec struct {
	W      *Tensor
	Eps    float32
	AddOne bool
}

// QuantSharedXer is implemented by backends with a fused kernel for several products of one input
// with quantized weights: outs[i] = x·ws[i]ᵀ for 2 or 3 weights (a decode layer's q, k and v
// projections) in one step. x is F32 [.., Cols] (the weights' common Cols), outs[i] F32 [.., ws[i]
// Rows] (overwritten; not aliasing x). It reports false, doing nothing, when the fused kernel does
// not apply (the number of rows of x, the weights' layouts); the caller then runs the products
// itself. The results equal QuantMatMul's within the backend's quantized-product bound.
// With norm set, x is first normalized as for QuantSwiGLUer (the input norm folded in).
type QuantSharedXer interface {
	QuantMatMulSharedX(outs []*Tensor, x *Tensor, ws []*QTensor, norm *RMSNormSpec) (bool, error)
}
