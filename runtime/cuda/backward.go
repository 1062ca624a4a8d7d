package cuda

import (
	"fmt"
	"unsafe"

	"github.com/finlora/finlora/runtime/tensor"
)

// This file implements the rest of tensor.Backward (attention backward is in attention.go).

// RMSNormBackward sets dx of out = RMSNorm(x, w, eps, addOne) given dy.
func (b *Backend) RMSNormBackward(dx, dy, x, w *tensor.Tensor, eps float32, addOne bool) error {
	defer b.lock()()
	const op = "rmsnorm backward"
	o, xp, gp, err := b.same3(op, dx, x, dy)
	if err != nil {
		return err
	}
	wp, err := b.weight(op, "w", w)
	if err != nil {
		return err
	}
	d := x.Cols()
	if dx.Cols() != d || dy.Cols() != d || w.Numel() != d {
		return fmt.Errorf("cuda: %s: x %v, dy %v, w %v into %v: %w", op, x, dy, w, dx, tensor.ErrShape)
	}
	if x.Numel() == 0 {
		return nil
	}
	return b.k.launch("rmsnorm_bwd", dim3{x: x.Rows()}, dim3{x: rowThreads(d)}, 0, o, gp, xp, wp, dtypeCode(w.DType()), eps, boolInt(addOne), d)
}

// SwiGLUBackward sets dgate and dup of out = silu(gate) ⊙ up given dy.
func (b *Backend) SwiGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	defer b.lock()()
	const op = "swiglu backward"
	dg, gp, up0, err := b.same3(op, dgate, gate, up)
	if err != nil {
		return err
	}
	du, yp, _, err := b.same3(op, dup, dy, dy)
	if err != nil {
		return err
	}
	if dup.Numel() != dgate.Numel() {
		return fmt.Errorf("cuda: %s: dy %v, gate %v into %v, %v: %w", op, dy, gate, dgate, dup, tensor.ErrShape)
	}
	if sg := b.shadowBF16(dgate.Numel()); sg != nil { // bf16 copies for the gate/up input gradients (conv.go)
		su := b.shadowBF16(dup.Numel())
		if su == nil {
			b.dev.Alloc.Put(sg)
		} else {
			name, n := "swiglu_bwd_b", dgate.Numel()
			if b.VecElementwise && aligned16(dg, du, sg.Ptr, su.Ptr, yp, gp, up0) {
				name, n = "swiglu_bwd_bv", (n+3)/4
			}
			if err := b.launch1(name, n, dg, du, sg.Ptr, su.Ptr, yp, gp, up0, int64(dgate.Numel())); err != nil {
				b.dev.Alloc.Put(sg)
				b.dev.Alloc.Put(su)
				return err
			}
			b.keepShadow(du, dup.Bytes(), su)
			b.keepShadow(dg, dgate.Bytes(), sg) // newest: gate_proj's product reads it first
			return nil
		}
	}
	return b.launch1("swiglu_bwd", dgate.Numel(), dg, du, yp, gp, up0, int64(dgate.Numel()))
}

// CrossEntropyBackward sets dlogits = scale·(softmax(logits) − onehot(labels)), zero rows for −100.
func (b *Backend) CrossEntropyBackward(dlogits, logits, labels *tensor.Tensor, scale float32) error {
	defer b.lock()()
	const op = "cross-entropy backward"
	o, xp, _, err := b.same3(op, dlogits, logits, logits)
	if err != nil {
		return err
	}
	lp, err := b.check(op, "labels", labels, tensor.I32)
	if err != nil {
		return err
	}
	v, n := logits.Cols(), logits.Rows()
	if dlogits.Cols() != v || labels.Numel() != n {
		return fmt.Errorf("cuda: %s: logits %v, labels %v into %v: %w", op, logits, labels, dlogits, tensor.ErrShape)
	}
	if n == 0 {
		return nil
	}
	if err := b.clearFlag(); err != nil {
		return err
	}
	if err := b.k.launch("cross_entropy_bwd", dim3{x: n}, dim3{x: rowThreads(v)}, 0, o, xp, lp, b.flag.Ptr, scale, v); err != nil {
		return err
	}
	if bad, err := b.readFlag(); err != nil {
		return err
	} else if bad {
		return fmt.Errorf("cuda: %s: a label in %v is outside the vocabulary of %d: %w", op, labels, v, tensor.ErrShape)
	}
	return nil
}

// SumRows sets out[c] = beta·out[c] + Σ_r x[r, c].
func (b *Backend) SumRows(out, x *tensor.Tensor, beta float32) error {
	defer b.lock()()
	const op = "sum rows"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	xp, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	if out.Numel() != x.Cols() {
		return fmt.Errorf("cuda: %s: %v into %v: %w", op, x, out, tensor.ErrShape)
	}
	return b.launch1("sum_rows", x.Cols(), o, xp, beta, int64(x.Rows()), int64(x.Cols()))
}

// MulCols sets out[r, c] = x[r, c]·v[c].
func (b *Backend) MulCols(out, x, v *tensor.Tensor) error {
	defer b.lock()()
	const op = "mul cols"
	o, xp, _, err := b.same3(op, out, x, x)
	if err != nil {
		return err
	}
	vp, err := b.f32(op, "v", v)
	if err != nil {
		return err
	}
	c := x.Cols()
	if v.Numel() != c || out.Cols() != c {
		return fmt.Errorf("cuda: %s: %v by %v into %v: %w", op, x, v, out, tensor.ErrShape)
	}
	return b.launch1("mul_cols", x.Numel(), o, xp, vp, int64(c), int64(x.Numel()))
}

// SumSquares returns Σ x² over a float tensor, accumulated in float64 (waits for the device).
func (b *Backend) SumSquares(x *tensor.Tensor) (float64, error) {
	defer b.lock()()
	xp, err := b.weight("sum squares", "x", x)
	if err != nil {
		return 0, err
	}
	n := x.Numel()
	if n == 0 {
		return 0, nil
	}
	blocks := min((n+255)/256, 1024)
	part, err := b.dev.Alloc.Get(int64(8*blocks), Workspace)
	if err != nil {
		return 0, err
	}
	defer b.dev.Alloc.Put(part)
	if err := b.k.launch("sum_squares", dim3{x: blocks}, dim3{x: 256}, 0, part.Ptr, xp, dtypeCode(x.DType()), int64(n)); err != nil {
		return 0, err
	}
	host := make([]float64, blocks)
	if err := b.dev.dtoh(unsafe.Pointer(&host[0]), part.Ptr, 8*blocks); err != nil {
		return 0, err
	}
	var s float64
	for _, v := range host {
		s += v
	}
	return s, nil
}
