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
	return b.gemmLocked(out, a, w, transA, transB, alpha, beta)
}

// GemmLowRank is Gemm for the products of a low-rank adapter branch (LoRA's x·Aᵀ, xa·Bᵀ and their
// gradients; runtime/train calls it where the backend has it). With an F32 b and LowRankTF32 set
// (the default; FINLORA_LORA_TF32=0 at Open turns it off) the product runs on the tensor cores
// with its float32 operands rounded to TF32 (10-bit mantissa, float32 range and accumulation:
// still finer than PEFT's bf16 adapter products); otherwise, and for 16-bit b, it is Gemm.
// Shapes, dtypes and ownership as Gemm.
func (b *Backend) GemmLowRank(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error {
	defer b.lock()()
	b.tf32 = b.LowRankTF32
	defer func() { b.tf32 = false }()
	return b.gemmLocked(out, a, w, transA, transB, alpha, beta)
}

// gemmLocked is Gemm for a caller that holds the lock (float32 products on TF32 while b.tf32).
func (b *Backend) gemmLocked(out, a, w *tensor.Tensor, transA, transB bool, alpha, beta float32) error {
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
		dt := dtypeCode(w.DType())
		if blk := b.dev.convFind(ap, a.Bytes(), dt); blk != nil && !b.NoConvCache {
			aOperand = blk.Ptr // converted by an earlier Gemm or written by its producer, unwritten since (conv.go)
			break
		}
		if tmp, err = b.dev.Alloc.Get(int64(a.Numel())*2, Workspace); err != nil {
			return fmt.Errorf("cuda: gemm: convert %v to %s: %w", a, w.DType(), err)
		}
		b.dev.nextWrites = &span{tmp.Ptr, int64(a.Numel()) * 2}
		if err := b.convertF32(tmp.Ptr, dt, ap, a.Numel()); err != nil {
			b.dev.nextWrites = nil
			b.dev.Alloc.Put(tmp)
			return err
		}
		b.dev.convPut(convCache{src: ap, bytes: a.Bytes(), dt: dt, blk: tmp}) // the oldest kept one goes back (stream-ordered)
		aOperand = tmp.Ptr
	}
	defer b.dev.wrote(op0, out.Bytes()) // the product writes out
	key := gemmKey{m: n, n: m, k: k, opA: opN, opB: opN, lda: n, ldb: k, ldc: n, typeAB: typeAB, workspaceB: gemmWorkspace,
		tf32: typeAB == cudaR32F && b.tf32}
	if transB {
		key.opA, key.lda = opT, k
	}
	if transA {
		key.opB, key.ldb = opT, m
	}
	if key.tf32 {
		if _, err := b.blas.plan(key); err != nil {
			key.tf32 = false // no TF32 algorithm for this layout: exact float32
		}
	}
	run := func() error { return b.blas.matmul(b.dev, key, wp, aOperand, op0, alpha, beta, b.ws.Ptr) }
	if b.prof != nil {
		prec := map[int]string{cudaR32F: "f32", cudaR16BF: "bf16", cudaR16F: "f16"}[typeAB]
		if key.tf32 {
			prec = "tf32"
		}
		name := fmt.Sprintf("gemm %s %dx%dx%d tA=%v tB=%v", prec, m, n, k, transA, transB)
		run0 := run
		run = func() error { return b.profiled(name, run0) }
	}
	if err := run(); err != nil {
		return fmt.Errorf("cuda: gemm %v·%v (trans %v %v) into %v: %w", a, w, transA, transB, out, err)
	}
	return nil
}

// GemmRate measures the device's bf16 matrix-product rate through cuBLASLt in the configuration
// Gemm uses for BF16 weights (out[m,n] F32 = a[m,k]·w[n,k]ᵀ, bf16 operands, float32 accumulation),
// without the operand conversion: the median of iters runs timed with events, after warm-up, on
// random operands. It returns TFLOP/s (2·m·n·k per product). It allocates and frees its operands.
func (b *Backend) GemmRate(m, n, k, iters int) (float64, error) {
	r := uint64(0x9e3779b97f4a7c15)
	rnd := func(cnt int) []float32 {
		v := make([]float32, cnt)
		for i := range v {
			r ^= r << 13
			r ^= r >> 7
			r ^= r << 17
			v[i] = float32(int64(r>>40)-(1<<23)) / (1 << 23)
		}
		return v
	}
	a, err := b.FromFloat32(tensor.BF16, []int{m, k}, rnd(m*k))
	if err != nil {
		return 0, err
	}
	defer a.Free()
	w, err := b.FromFloat32(tensor.BF16, []int{n, k}, rnd(n*k))
	if err != nil {
		return 0, err
	}
	defer w.Free()
	out, err := b.Alloc(tensor.F32, m, n)
	if err != nil {
		return 0, err
	}
	defer out.Free()
	key := gemmKey{m: n, n: m, k: k, opA: opT, opB: opN, lda: k, ldb: k, ldc: n, typeAB: cudaR16BF, workspaceB: gemmWorkspace}
	run := func() error {
		defer b.lock()()
		b.dev.wrote(out.Data().(*Block).Ptr, out.Bytes())
		return b.blas.matmul(b.dev, key, w.Data().(*Block).Ptr, a.Data().(*Block).Ptr, out.Data().(*Block).Ptr, 1, 0, b.ws.Ptr)
	}
	med, err := b.medianMillis(run, iters)
	if err != nil {
		return 0, err
	}
	return 2 * float64(m) * float64(n) * float64(k) / (med * 1e-3) / 1e12, nil
}
