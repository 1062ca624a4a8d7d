package cuda

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Gemm computes out = alpha·op(a)·op(b) + beta·out (row-major, see tensor.Ops.Gemm) with cuBLASLt.
//
// Row-major out [M, N] is column-major outᵀ [N, M], so cuBLASLt computes outᵀ = op(b)ᵀ·op(a)ᵀ: its A
// is our b and its B our a, with no data movement. Precision follows b's dtype: for BF16 (F16) b,
// a is first rounded to BF16 (F16) into a workspace buffer and the product runs on the tensor cores
// with float32 accumulation and output; for F32 b it is a plain float32 product.
func (b *Backend) Gemm(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error {
	defer b.lock()()
	const op = "gemm"
	op0, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	ap, err := b.f32(op, "a", a)
	if err != nil {
		return err
	}
	wp, err := b.weight(op, "b", w)
	if err != nil {
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
	if kb != k || out.Rows() != m || out.Cols() != n {
		return fmt.Errorf("cuda: gemm: op(a) %v (trans %v) · op(b) %v (trans %v) into %v: inner or outer dims differ: %w",
			a, transA, w, transB, out, tensor.ErrShape)
	}
	if m == 0 || n == 0 {
		return nil
	}
	if k == 0 {
		if beta == 0 {
			return b.dev.memset0(op0, int(out.Bytes()))
		}
		return b.launch1("scale", out.Numel(), op0, op0, beta, int64(out.Numel()))
	}
	typeAB := cudaR32F
	aOperand := ap
	var tmp *Block
	switch w.DType() {
	case tensor.BF16, tensor.F16:
		typeAB = cudaR16BF
		if w.DType() == tensor.F16 {
			typeAB = cudaR16F
		}
		if tmp, err = b.dev.Alloc.Get(int64(a.Numel())*2, Workspace); err != nil {
			return fmt.Errorf("cuda: gemm: convert %v to %s: %w", a, w.DType(), err)
		}
		defer b.dev.Alloc.Put(tmp) // stream-ordered: later users of the block queue after this product
		if err := b.launch1("convert", a.Numel(), tmp.Ptr, dtypeCode(w.DType()), ap, 0, int64(a.Numel())); err != nil {
			return err
		}
		aOperand = tmp.Ptr
	}
	key := gemmKey{m: n, n: m, k: k, opA: opN, opB: opN, lda: n, ldb: k, ldc: n, typeAB: typeAB, workspaceB: gemmWorkspace}
	if transB {
		key.opA, key.lda = opT, k
	}
	if transA {
		key.opB, key.ldb = opT, m
	}
	if err := b.blas.matmul(b.dev, key, wp, aOperand, op0, alpha, beta, b.ws.Ptr); err != nil {
		return fmt.Errorf("cuda: gemm %v·%v (trans %v %v) into %v: %w", a, w, transA, transB, out, err)
	}
	return nil
}
