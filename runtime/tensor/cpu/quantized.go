package cpu

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// The tensor.Quantized extension: NF4/FP4 and LLM.int8 weights kept in their packed layouts and
// dequantized tile by tile inside the matmul (a tile of at most tileN weight rows, or a kBlock×128
// block for the backward layout, per worker), so a model's resident memory is its quantized size.
// Products are accumulated in float64 by the same kernels as Gemm, so QuantMatMul equals Gemm on
// the dequantized weight (QuantToFloat32) bit for bit, up to the order of float64 sums.

var _ tensor.Quantized = (*Backend)(nil)

// qstore is the CPU storage of a QTensor: copies of the host layout's slices.
type qstore struct {
	h   tensor.QuantHost
	lut [16]float32
}

// QuantFromHost copies h into a new QTensor owned by the caller.
func (b *Backend) QuantFromHost(h *tensor.QuantHost) (*tensor.QTensor, error) {
	if h == nil {
		return nil, fmt.Errorf("cpu: quant from host: nil: %w", tensor.ErrShape)
	}
	if err := h.Check(); err != nil {
		return nil, fmt.Errorf("cpu: quant from host: %w", err)
	}
	s := &qstore{h: *h, lut: h.Codebook}
	if s.h.Round == tensor.Invalid {
		s.h.Round = tensor.F32
	}
	var bytes int64
	cp32 := func(v []float32) []float32 {
		if v == nil {
			return nil
		}
		bytes += int64(4 * len(v))
		return append([]float32(nil), v...)
	}
	cp8 := func(v []byte) []byte {
		if v == nil {
			return nil
		}
		bytes += int64(len(v))
		return append([]byte(nil), v...)
	}
	s.h.Packed, s.h.Absmax, s.h.AbsmaxCodes = cp8(h.Packed), cp32(h.Absmax), cp8(h.AbsmaxCodes)
	s.h.NestedAbsmax, s.h.NestedMap, s.h.SCB = cp32(h.NestedAbsmax), cp32(h.NestedMap), cp32(h.SCB)
	if h.Int8 != nil {
		s.h.Int8 = append([]int8(nil), h.Int8...)
		bytes += int64(len(h.Int8))
	}
	if h.Format.Is4Bit() {
		bytes += 16 * 4 // the codebook
	}
	b.track(bytes, 1)
	return tensor.NewQTensor(b, h.Format, h.Rows, h.Cols, bytes, s), nil
}

// QuantFree releases w's storage.
func (b *Backend) QuantFree(w *tensor.QTensor) error {
	if w.Data() == nil {
		return nil
	}
	if w.Backend() != tensor.Backend(b) {
		return fmt.Errorf("cpu: quant free %v: %w", w, tensor.ErrBackend)
	}
	b.track(-w.Bytes(), -1)
	return nil
}

// qcheck returns w's storage after checking ownership.
func (b *Backend) qcheck(op string, w *tensor.QTensor) (*qstore, error) {
	if w == nil {
		return nil, fmt.Errorf("cpu: %s: weight is nil: %w", op, tensor.ErrShape)
	}
	if w.Backend() != tensor.Backend(b) {
		return nil, fmt.Errorf("cpu: %s: weight %v: %w", op, w, tensor.ErrBackend)
	}
	s, ok := w.Data().(*qstore)
	if !ok {
		return nil, fmt.Errorf("cpu: %s: weight %v: %w", op, w, tensor.ErrFreed)
	}
	return s, nil
}

// QuantToFloat32 returns the dequantized matrix as a new host slice.
func (b *Backend) QuantToFloat32(w *tensor.QTensor) ([]float32, error) {
	s, err := b.qcheck("quant to float32", w)
	if err != nil {
		return nil, err
	}
	n := s.h.Rows * s.h.Cols
	out := make([]float32, n)
	b.chunks(n, 1<<14, func(lo, hi int) { s.dequant(lo, out[lo:hi]) })
	return out, nil
}

// QuantMatMul sets out = alpha·x·op(W) + beta·out (see tensor.Quantized).
func (b *Backend) QuantMatMul(out, x *tensor.Tensor, w *tensor.QTensor, transW bool, alpha, beta float32) error {
	const op = "quant matmul"
	s, err := b.qcheck(op, w)
	if err != nil {
		return err
	}
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	a, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	rows, cols := s.h.Rows, s.h.Cols
	m, k, n := x.Rows(), cols, rows // forward: x [m, cols] · Wᵀ → [m, rows]
	if !transW {
		k, n = rows, cols // backward: x [m, rows] · W → [m, cols]
	}
	if x.Cols() != k || out.Rows() != m || out.Cols() != n {
		return fmt.Errorf("cpu: %s: x %v · %s(%v) into %v: %w", op, x, map[bool]string{true: "ᵀ", false: ""}[transW], w, out, tensor.ErrShape)
	}
	if transW {
		b.qgemmNT(o, a, s, m, n, k, alpha, beta)
		return nil
	}
	b.gemmBlocked(o, a, m, n, k, alpha, beta, func(buf []float32, k0, kb, n0, cw int) ([]float32, int) {
		for p := 0; p < kb; p++ {
			e := (k0+p)*cols + n0
			s.dequant(e, buf[p*cw:(p+1)*cw])
		}
		return buf, cw
	})
	return nil
}

// qgemmNT: out[m,n] = alpha·Σ_k a[m,k]·W[n,k] + beta·out with W dequantized tileN rows at a time.
// Each task dequantizes its tile once and runs it against all rows of a when there are enough
// tiles to keep the workers busy; otherwise the rows are split too (as gemmNT does).
func (b *Backend) qgemmNT(o, a []float32, s *qstore, m, n, k int, alpha, beta float32) {
	nTiles := (n + tileN - 1) / tileN
	mBlock := m
	if nTiles < 4*b.workers {
		mBlock = tileM
	}
	mBlocks := (m + mBlock - 1) / mBlock
	bufs := make([][]float32, b.workers)
	b.parallel(nTiles*mBlocks, func(worker, task int) {
		nt, mb := task/mBlocks, task%mBlocks
		n0, n1 := nt*tileN, min((nt+1)*tileN, n)
		m0, m1 := mb*mBlock, min((mb+1)*mBlock, m)
		if bufs[worker] == nil {
			bufs[worker] = make([]float32, tileN*k)
		}
		wt := bufs[worker][:(n1-n0)*k]
		s.dequant(n0*k, wt)
		gemmNTTile(o, a, wt, m0, m1, n0, n1, n, k, alpha, beta)
	})
}

// dequant writes the dequantized elements [e0, e0+len(dst)) of the row-major matrix into dst.
// Per 4-bit block the 16 code values are scaled once (scaled[c] = Codebook[c]·absmax, the same
// float32 product as element by element) and the nibbles are looked up; per int8 row likewise the
// 256 values of the row's codes.
func (s *qstore) dequant(e0 int, dst []float32) {
	h := &s.h
	if h.Format == tensor.QuantInt8 {
		const inv127 = float32(1.0) / 127
		cols := h.Cols
		var table [256]float32
		for i := 0; i < len(dst); {
			e := e0 + i
			r := e / cols
			end := min(len(dst), i+(r+1)*cols-e)
			sc := h.SCB[r]
			q := h.Int8[e : e+end-i]
			d := dst[i:end]
			if len(d) >= 1024 {
				for c := -128; c < 128; c++ {
					table[uint8(c)] = float32(float32(c)*sc) * inv127
				}
				for j, c := range q {
					d[j] = table[uint8(c)]
				}
			} else {
				for j, c := range q {
					d[j] = float32(float32(c)*sc) * inv127
				}
			}
			i = end
		}
	} else {
		bs := h.BlockSize
		var scaled [16]float32
		for i := 0; i < len(dst); {
			e := e0 + i
			blk := e / bs
			end := min(len(dst), i+(blk+1)*bs-e)
			m := s.absmax(blk)
			for c, v := range s.lut {
				scaled[c] = v * m
			}
			d := dst[i:end]
			j := 0
			if e&1 == 1 { // odd start: the low nibble of the first byte
				d[0] = scaled[h.Packed[e>>1]&15]
				j = 1
			}
			pairs := (len(d) - j) / 2
			p := h.Packed[(e+j)>>1 : (e+j)>>1+pairs]
			dd := d[j : j+2*pairs]
			for t, c := range p {
				dd[2*t] = scaled[c>>4]
				dd[2*t+1] = scaled[c&15]
			}
			j += 2 * pairs
			if j < len(d) { // even element last: the high nibble
				d[j] = scaled[h.Packed[(e+j)>>1]>>4]
			}
			i = end
		}
	}
	switch h.Round {
	case tensor.BF16:
		for i, v := range dst {
			dst[i] = tensor.BF16ToFloat32(tensor.Float32ToBF16(v))
		}
	case tensor.F16:
		for i, v := range dst {
			dst[i] = tensor.F16ToFloat32(tensor.Float32ToF16(v))
		}
	}
}

// absmax returns the absmax of 4-bit block blk (decoded from the double quantization if any).
func (s *qstore) absmax(blk int) float32 {
	h := &s.h
	if h.Absmax != nil {
		return h.Absmax[blk]
	}
	return float32(h.NestedMap[h.AbsmaxCodes[blk]]*h.NestedAbsmax[blk/h.NestedBlockSize]) + h.NestedOffset
}
