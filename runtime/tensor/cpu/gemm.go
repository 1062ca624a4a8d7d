package cpu

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Tile sizes of the matmul kernels: a tile of tileN rows of b (widened to float32 once) is reused
// for blocks of tileM rows of a (measured on SmolLM2-135M shapes: 16 rows beat 64 by ~2x, and a
// transposed tile fed to the 4×16 kernel lost to the dot-product form because of the transpose).
const (
	tileN = 16 // weight rows per task of gemmNT: 16 rows of K ≤ ~600 floats stay in L1
	tileM = 64
)

// Gemm computes out = alpha·op(a)·op(b) + beta·out (see tensor.Ops.Gemm).
func (b *Backend) Gemm(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error {
	const op = "gemm"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	as, err := b.f32(op, "a", a)
	if err != nil {
		return err
	}
	if err := b.weight(op, "b", w); err != nil {
		return err
	}
	m, k := a.Rows(), a.Cols()
	if transA {
		m, k = k, m
	}
	kb, n := w.Rows(), w.Cols()
	if transB {
		kb, n = n, kb
	}
	if k != kb || out.Rows() != m || out.Cols() != n {
		return fmt.Errorf("cpu: gemm: op(a) [%d %d] · op(b) [%d %d] into %v: %w", m, k, kb, n, out, tensor.ErrShape)
	}
	if transA { // materialize aᵀ as [m, k]; only the backward's weight gradients take this path
		at := make([]float32, m*k)
		for r := 0; r < k; r++ {
			row := as[r*m : (r+1)*m]
			for c, v := range row {
				at[c*k+r] = v
			}
		}
		as = at
	}
	if transB {
		b.gemmNT(o, as, w, m, n, k, alpha, beta)
		return nil
	}
	b.gemmNN(o, as, w, m, n, k, alpha, beta)
	return nil
}

// gemmNT: out[m,n] = alpha·Σ_k a[m,k]·w[n,k] + beta·out — the Linear layout, the hot path.
// Parallel over (n tile, m block); each task widens its w tile once. Sums are accumulated in
// float64 (see accumulate).
func (b *Backend) gemmNT(o, a []float32, w *tensor.Tensor, m, n, k int, alpha, beta float32) {
	nTiles := (n + tileN - 1) / tileN
	mBlocks := (m + tileM - 1) / tileM
	bufs := make([][]float32, b.workers)
	_, isF32 := w.Data().([]float32)
	b.parallel(nTiles*mBlocks, func(worker, task int) {
		nt, mb := task/mBlocks, task%mBlocks
		n0, n1 := nt*tileN, min((nt+1)*tileN, n)
		m0, m1 := mb*tileM, min((mb+1)*tileM, m)
		if !isF32 && haveAVX2 && k > 0 && m1-m0 <= directRows && w.DType() == tensor.BF16 {
			gemmNTDirectBF16(o, a, w.Data().([]uint16), m0, m1, n0, n1, n, k, alpha, beta)
			return
		}
		var wt []float32
		if isF32 {
			wt = w.Data().([]float32)[n0*k : n1*k]
		} else {
			if bufs[worker] == nil {
				bufs[worker] = make([]float32, tileN*k)
			}
			wt = bufs[worker][:(n1-n0)*k]
			widen(w, n0*k, wt)
		}
		gemmNTTile(o, a, wt, m0, m1, n0, n1, n, k, alpha, beta)
	})
}

// gemmNTTile is gemmNT's inner loops over rows [m0, m1) of a and weight rows [n0, n1) held as
// float32 in wt (row j at wt[(j-n0)·k:]): o[i, j] = alpha·(a[i]·w[j]) + beta·o[i, j], four weight
// rows at a time. The dense (F32 or widened F16/BF16) and the dequantized-tile products share it.
func gemmNTTile(o, a, wt []float32, m0, m1, n0, n1, n, k int, alpha, beta float32) {
	for i := m0; i < m1; i++ {
		x := a[i*k : (i+1)*k]
		orow := o[i*n : (i+1)*n]
		j := n0
		for ; j+4 <= n1; j += 4 {
			off := (j - n0) * k
			s0, s1, s2, s3 := dot4(x, wt[off:off+k], wt[off+k:off+2*k], wt[off+2*k:off+3*k], wt[off+3*k:off+4*k])
			store(orow, j, s0, alpha, beta)
			store(orow, j+1, s1, alpha, beta)
			store(orow, j+2, s2, alpha, beta)
			store(orow, j+3, s3, alpha, beta)
		}
		for ; j < n1; j++ {
			off := (j - n0) * k
			store(orow, j, dot64(x, wt[off:off+k]), alpha, beta)
		}
	}
}

// directRows is the row count of a below which BF16 weights are read in place by the assembly
// kernel rather than widened into a float32 tile (decode steps have one row per sequence).
const directRows = 4

// gemmNTDirectBF16 is gemmNT's inner loops over rows [m0, m1) and weight rows [n0, n1) of a BF16
// weight read in place.
func gemmNTDirectBF16(o, a []float32, w []uint16, m0, m1, n0, n1, n, k int, alpha, beta float32) {
	for i := m0; i < m1; i++ {
		x := a[i*k : (i+1)*k]
		orow := o[i*n : (i+1)*n]
		j := n0
		for ; j+4 <= n1; j += 4 {
			r := w[j*k : (j+4)*k]
			s0, s1, s2, s3 := dot4BF16AVX2(&x[0], &r[0], &r[k], &r[2*k], &r[3*k], k)
			store(orow, j, s0, alpha, beta)
			store(orow, j+1, s1, alpha, beta)
			store(orow, j+2, s2, alpha, beta)
			store(orow, j+3, s3, alpha, beta)
		}
		for ; j < n1; j++ {
			var s float64
			for p, h := range w[j*k : (j+1)*k] {
				s += float64(x[p]) * float64(tensor.BF16ToFloat32(h))
			}
			store(orow, j, s, alpha, beta)
		}
	}
}

// store writes alpha·s + beta·row[j] (beta 0: the old value is ignored, NaN included), computed
// in float64 and rounded once.
func store(row []float32, j int, s float64, alpha, beta float32) {
	if beta == 0 {
		row[j] = float32(float64(alpha) * s)
	} else {
		row[j] = float32(float64(alpha)*s + float64(beta)*float64(row[j]))
	}
}

// accumulate: every Gemm path sums products in float64 (the products of two float32 are exact in
// float64), so results do not depend on the kernel's summation order beyond float64 rounding.
// This matters for training parity: AdamW's first steps divide by |g| and amplify the float32
// rounding of tiny gradients, and a reference backend should carry only the reference's own noise.

// dot4 returns the dot products of x with four rows at once (x loaded once per step), in
// assembly (AVX2 + FMA) where the CPU has it.
func dot4(x, w0, w1, w2, w3 []float32) (s0, s1, s2, s3 float64) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	if haveAVX2 && n > 0 {
		return dot4F32AVX2(&x[0], &w0[0], &w1[0], &w2[0], &w3[0], n)
	}
	for i, v := range x {
		f := float64(v)
		s0 += f * float64(w0[i])
		s1 += f * float64(w1[i])
		s2 += f * float64(w2[i])
		s3 += f * float64(w3[i])
	}
	return
}

// dot64 returns Σ x[i]·y[i] accumulated in float64.
func dot64(x, y []float32) float64 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return s
}

// gemmNN: out[m,n] = alpha·Σ_k a[m,k]·w[k,n] + beta·out, the backward's layout (dx = dy·W).
func (b *Backend) gemmNN(o, a []float32, w *tensor.Tensor, m, n, k int, alpha, beta float32) {
	ws, isF32 := w.Data().([]float32)
	b.gemmBlocked(o, a, m, n, k, alpha, beta, func(buf []float32, k0, kb, n0, cols int) ([]float32, int) {
		if isF32 {
			return ws[k0*n+n0:], n
		}
		for p := 0; p < kb; p++ {
			widen(w, (k0+p)*n+n0, buf[p*cols:(p+1)*cols])
		}
		return buf, cols
	})
}

// gemmBlocked computes out = alpha·a·B + beta·out for a [m,k] and a B [k,n] served in tiles by
// tileOf(buf, k0, kb, n0, cols), which returns B[k0:k0+kb, n0:n0+cols] as a slice wt with
// wt[p·ldw + j] = B[k0+p, n0+j] (either buf, of kBlock·cols elements, or a view of B itself).
// Tasks are (column block, row block), each accumulating its block over k in float64 with the
// 4×8 register-blocked kernel.
func (b *Backend) gemmBlocked(o, a []float32, m, n, k int, alpha, beta float32,
	tileOf func(buf []float32, k0, kb, n0, cols int) ([]float32, int)) {
	const colBlock, kBlock = 128, 256
	nBlocks := (n + colBlock - 1) / colBlock
	mBlocks := (m + tileM - 1) / tileM
	b.parallel(nBlocks*mBlocks, func(_, task int) {
		nb, mb := task/mBlocks, task%mBlocks
		n0, n1 := nb*colBlock, min((nb+1)*colBlock, n)
		m0, m1 := mb*tileM, min((mb+1)*tileM, m)
		cols, rows := n1-n0, m1-m0
		acc := make([]float64, rows*cols)
		buf := make([]float32, kBlock*cols)
		for k0 := 0; k0 < k; k0 += kBlock {
			kb := min(k0+kBlock, k) - k0
			wt, ldw := tileOf(buf, k0, kb, n0, cols)
			i := 0
			if haveAVX2 {
				for ; i+4 <= rows; i += 4 {
					j := 0
					for ; j+8 <= cols; j += 8 {
						kern4x8AVX2(&a[(m0+i)*k+k0], k, &wt[j], ldw, kb, &acc[i*cols+j], cols)
					}
					if j < cols {
						axpyRows(acc, a, wt, m0, i, i+4, j, cols, k, k0, kb, ldw, cols)
					}
				}
			}
			axpyRows(acc, a, wt, m0, i, rows, 0, cols, k, k0, kb, ldw, cols)
		}
		for i := 0; i < rows; i++ {
			orow := o[(m0+i)*n+n0 : (m0+i)*n+n1]
			for j, s := range acc[i*cols : (i+1)*cols] {
				store(orow, j, s, alpha, beta)
			}
		}
	})
}

// axpyRows adds Σ_p a[m0+i, k0+p]·wt[p, j] into acc[i, j] for rows [i0, i1) and columns [j0, j1)
// of the block (the part the assembly kernel does not cover).
func axpyRows(acc []float64, a, wt []float32, m0, i0, i1, j0, j1, k, k0, kb, ldw, cols int) {
	for i := i0; i < i1; i++ {
		arow := a[(m0+i)*k+k0 : (m0+i)*k+k0+kb]
		crow := acc[i*cols+j0 : i*cols+j1]
		for p, av := range arow {
			f := float64(av)
			wrow := wt[p*ldw+j0 : p*ldw+j1]
			for j, wv := range wrow {
				crow[j] += f * float64(wv)
			}
		}
	}
}
