package cuda

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// This file implements the pointwise, normalization, gather and loss ops of tensor.Ops.

// same3 checks out, x, y are live F32 tensors of equal element count.
func (b *Backend) same3(op string, out, x, y *tensor.Tensor) (o, xp, yp uintptr, err error) {
	if o, err = b.f32(op, "out", out); err != nil {
		return
	}
	if xp, err = b.f32(op, "a", x); err != nil {
		return
	}
	if yp, err = b.f32(op, "b", y); err != nil {
		return
	}
	if x.Numel() != out.Numel() || y.Numel() != out.Numel() {
		err = fmt.Errorf("cuda: %s: %v, %v into %v: element counts differ: %w", op, x, y, out, tensor.ErrShape)
	}
	return
}

// Add sets out = a + alpha·b.
func (b *Backend) Add(out, x, y *tensor.Tensor, alpha float32) error {
	defer b.lock()()
	o, xp, yp, err := b.same3("add", out, x, y)
	if err != nil {
		return err
	}
	if b.VecElementwise && aligned16(o, xp, yp) {
		return b.launch1("add_v", (out.Numel()+3)/4, o, xp, yp, alpha, int64(out.Numel()))
	}
	return b.launch1("add", out.Numel(), o, xp, yp, alpha, int64(out.Numel()))
}

// Mul sets out = a ⊙ b.
func (b *Backend) Mul(out, x, y *tensor.Tensor) error {
	defer b.lock()()
	o, xp, yp, err := b.same3("mul", out, x, y)
	if err != nil {
		return err
	}
	return b.launch1("mul", out.Numel(), o, xp, yp, int64(out.Numel()))
}

// Scale sets out = s·x.
func (b *Backend) Scale(out, x *tensor.Tensor, s float32) error {
	defer b.lock()()
	o, xp, _, err := b.same3("scale", out, x, x)
	if err != nil {
		return err
	}
	return b.launch1("scale", out.Numel(), o, xp, s, int64(out.Numel()))
}

// SwiGLU sets out = silu(gate) ⊙ up.
func (b *Backend) SwiGLU(out, gate, up *tensor.Tensor) error {
	defer b.lock()()
	o, g, u, err := b.same3("swiglu", out, gate, up)
	if err != nil {
		return err
	}
	if sh := b.shadowBF16(out.Numel()); sh != nil { // the bf16 copy for the down projection (conv.go)
		name, n := "swiglu_b", out.Numel()
		if b.VecElementwise && aligned16(o, sh.Ptr, g, u) {
			name, n = "swiglu_bv", (n+3)/4
		}
		if err := b.launch1(name, n, o, sh.Ptr, g, u, int64(out.Numel())); err != nil {
			b.dev.Alloc.Put(sh)
			return err
		}
		b.keepShadow(o, out.Bytes(), sh)
		return nil
	}
	return b.launch1("swiglu", out.Numel(), o, g, u, int64(out.Numel()))
}

// f32Same checks that ts are live F32 tensors of the same element count and returns their device
// addresses; errors name op and the tensor (names[i] for ts[i]).
func (b *Backend) f32Same(op string, names []string, ts ...*tensor.Tensor) ([]uintptr, error) {
	ps := make([]uintptr, len(ts))
	for i, t := range ts {
		p, err := b.f32(op, names[i], t)
		if err != nil {
			return nil, err
		}
		ps[i] = p
		if t.Numel() != ts[0].Numel() {
			return nil, fmt.Errorf("cuda: %s: %s %v has %d elements, %s %v has %d: %w", op, names[i], t, t.Numel(), names[0], ts[0], ts[0].Numel(), tensor.ErrShape)
		}
	}
	return ps, nil
}

// GeGLU sets out = gelu_tanh(gate) ⊙ up (Gemma's MLP activation; transformers'
// gelu_pytorch_tanh: gelu_tanh(x) = 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))), in float32).
// out, gate and up are F32 with the same element count (any shapes, e.g. [T, I]); out may be gate
// or up. With FuseConvert it also keeps out's bf16 copy for the next Gemm, as SwiGLU does.
// Implements runtime/train.GeGLUBackend with GeGLUBackward.
func (b *Backend) GeGLU(out, gate, up *tensor.Tensor) error {
	defer b.lock()()
	ps, err := b.f32Same("geglu", []string{"out", "gate", "up"}, out, gate, up)
	if err != nil {
		return err
	}
	o, g, u, n := ps[0], ps[1], ps[2], out.Numel()
	if sh := b.shadowBF16(n); sh != nil { // the bf16 copy for the down projection (conv.go)
		if err := b.launch1("geglu_b", n, o, sh.Ptr, g, u, int64(n)); err != nil {
			b.dev.Alloc.Put(sh)
			return fmt.Errorf("cuda: geglu: %w", err)
		}
		b.keepShadow(o, out.Bytes(), sh)
		return nil
	}
	if err := b.launch1("geglu", n, o, g, u, int64(n)); err != nil {
		return fmt.Errorf("cuda: geglu: %w", err)
	}
	return nil
}

// GeGLUBackward sets dgate = dy ⊙ up ⊙ gelu_tanh'(gate) and dup = dy ⊙ gelu_tanh(gate), the
// gradients of out = GeGLU(gate, up) given dy. All five are F32 with the same element count;
// dgate may be gate and dup may be up (dgate and dup must differ). With FuseConvert it also keeps
// bf16 copies of dgate and dup for the gate and up input-gradient products, as SwiGLUBackward does.
func (b *Backend) GeGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) error {
	defer b.lock()()
	const op = "geglu backward"
	ps, err := b.f32Same(op, []string{"dgate", "dup", "dy", "gate", "up"}, dgate, dup, dy, gate, up)
	if err != nil {
		return err
	}
	dg, du, yp, gp, up0, n := ps[0], ps[1], ps[2], ps[3], ps[4], dgate.Numel()
	if dg == du && n > 0 {
		return fmt.Errorf("cuda: %s: dgate and dup are the same tensor %v: %w", op, dgate, tensor.ErrShape)
	}
	if sg := b.shadowBF16(n); sg != nil { // bf16 copies for the gate/up input gradients (conv.go)
		su := b.shadowBF16(n)
		if su == nil {
			b.dev.Alloc.Put(sg)
		} else {
			if err := b.launch1("geglu_bwd_b", n, dg, du, sg.Ptr, su.Ptr, yp, gp, up0, int64(n)); err != nil {
				b.dev.Alloc.Put(sg)
				b.dev.Alloc.Put(su)
				return fmt.Errorf("cuda: %s: %w", op, err)
			}
			b.keepShadow(du, dup.Bytes(), su)
			b.keepShadow(dg, dgate.Bytes(), sg) // newest: gate_proj's product reads it first
			return nil
		}
	}
	if err := b.launch1("geglu_bwd", n, dg, du, yp, gp, up0, int64(n)); err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	return nil
}

// AddBias adds bias [N] to every row of x [.., N].
func (b *Backend) AddBias(x, bias *tensor.Tensor) error {
	defer b.lock()()
	xp, err := b.f32("add bias", "x", x)
	if err != nil {
		return err
	}
	bp, err := b.weight("add bias", "bias", bias)
	if err != nil {
		return err
	}
	if bias.Numel() != x.Cols() {
		return fmt.Errorf("cuda: add bias: bias %v for %v: %w", bias, x, tensor.ErrShape)
	}
	return b.launch1("add_bias", x.Numel(), xp, bp, dtypeCode(bias.DType()), int64(x.Cols()), int64(x.Numel()))
}

// rowThreads is the block size of one-block-per-row kernels for rows of length n.
func rowThreads(n int) int {
	switch {
	case n >= 2048:
		return 1024
	case n >= 512:
		return 256
	}
	return 128
}

// RMSNorm normalizes each row of x [.., D] by its root mean square and multiplies by w (or 1+w).
func (b *Backend) RMSNorm(out, x, w *tensor.Tensor, eps float32, addOne bool) error {
	defer b.lock()()
	const op = "rmsnorm"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	xp, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	wp, err := b.weight(op, "w", w)
	if err != nil {
		return err
	}
	d := x.Cols()
	if out.Numel() != x.Numel() || out.Cols() != d || w.Numel() != d {
		return fmt.Errorf("cuda: rmsnorm: x %v, w %v into %v: %w", x, w, out, tensor.ErrShape)
	}
	if d >= 1024 && d%4 == 0 && (o|xp)%16 == 0 { // float4s, 256 threads a row (kernels/norm.cu)
		return b.k.launch("rmsnorm4", dim3{x: x.Rows()}, dim3{x: 256}, 0, o, xp, wp, dtypeCode(w.DType()), eps, boolInt(addOne), d)
	}
	return b.k.launch("rmsnorm", dim3{x: x.Rows()}, dim3{x: rowThreads(d)}, 0, o, xp, wp, dtypeCode(w.DType()), eps, boolInt(addOne), d)
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// ropeTables returns the device addresses of Rope's tables cos, sin (F32) and positions pos (I32)
// for op, or the error naming the one that is not on this device or of the wrong dtype.
func (b *Backend) ropeTables(op string, pos, cos, sin *tensor.Tensor) (cp, sp, pp uintptr, err error) {
	if cp, err = b.f32(op, "cos", cos); err != nil {
		return
	}
	if sp, err = b.f32(op, "sin", sin); err != nil {
		return
	}
	pp, err = b.check(op, "pos", pos, tensor.I32)
	return
}

// Rope rotates x [B, T, H, D] in place at positions pos I32 [B, T] with tables cos, sin [P, D/2].
// A position outside [0, P) is an ErrShape error (found on the device; rows with valid positions
// may already be rotated when it is reported).
func (b *Backend) Rope(x, pos, cos, sin *tensor.Tensor) error {
	defer b.lock()()
	const op = "rope"
	xp, err := b.f32(op, "x", x)
	if err != nil {
		return err
	}
	cp, sp, pp, err := b.ropeTables(op, pos, cos, sin)
	if err != nil {
		return err
	}
	if x.Rank() != 4 || x.Dim(3)%2 != 0 || pos.Numel() != x.Dim(0)*x.Dim(1) ||
		cos.Rank() != 2 || cos.Dim(1) != x.Dim(3)/2 || !tensor.SameShape(cos.Shape(), sin.Shape()) {
		return fmt.Errorf("cuda: rope: x %v (want [B T H D], D even), pos %v (want [B T]), cos %v, sin %v (want [P D/2]): %w",
			x, pos, cos, sin, tensor.ErrShape)
	}
	rows, h, d := x.Dim(0)*x.Dim(1), x.Dim(2), x.Dim(3)
	pblk, xblk := pos.Data().(*Block), x.Data().(*Block)
	disjoint := xp+uintptr(xblk.Bytes) <= pblk.Ptr || pblk.Ptr+uintptr(pblk.Bytes) <= xp
	if disjoint && b.dev.posChecked(pblk, cos.Dim(0)) { // checked and unwritten since (posvalid.go): no wait
		keep := b.dev.pos
		err := b.launch1("rope", rows*h*d/2, xp, pp, cp, sp, b.flag.Ptr, int64(rows), h, d, cos.Dim(0))
		b.dev.pos = keep // rope writes only x
		return err
	}
	if err := b.clearFlag(); err != nil {
		return err
	}
	if err := b.launch1("rope", rows*h*d/2, xp, pp, cp, sp, b.flag.Ptr, int64(rows), h, d, cos.Dim(0)); err != nil {
		return err
	}
	if bad, err := b.readFlag(); err != nil {
		return err
	} else if bad {
		return fmt.Errorf("cuda: rope: a position in %v is outside the table of %d: %w", pos, cos.Dim(0), tensor.ErrShape)
	}
	if disjoint {
		b.dev.pos = posValid{lo: pblk.Ptr, hi: pblk.Ptr + uintptr(pblk.Bytes), p: cos.Dim(0)}
	}
	return nil
}

// Embedding gathers rows of table [V, D] at ids into out [N, D] (F32).
func (b *Backend) Embedding(out, table, ids *tensor.Tensor) error {
	defer b.lock()()
	const op = "embedding"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	tp, err := b.weight(op, "table", table)
	if err != nil {
		return err
	}
	ip, err := b.check(op, "ids", ids, tensor.I32)
	if err != nil {
		return err
	}
	vocab, d := table.Rows(), table.Cols()
	if out.Cols() != d || out.Numel() != ids.Numel()*d {
		return fmt.Errorf("cuda: embedding: %d ids from %v into %v: %w", ids.Numel(), table, out, tensor.ErrShape)
	}
	if err := b.clearFlag(); err != nil {
		return err
	}
	if err := b.launch1("embedding", out.Numel(), o, tp, dtypeCode(table.DType()), ip, b.flag.Ptr, int64(ids.Numel()), d, vocab); err != nil {
		return err
	}
	if bad, err := b.readFlag(); err != nil {
		return err
	} else if bad {
		return fmt.Errorf("cuda: embedding: an id in %v is outside the vocabulary of %d: %w", ids, vocab, tensor.ErrShape)
	}
	return nil
}

// Softmax normalizes each row of x into out.
func (b *Backend) Softmax(out, x *tensor.Tensor) error {
	defer b.lock()()
	o, xp, _, err := b.same3("softmax", out, x, x)
	if err != nil {
		return err
	}
	if out.Cols() != x.Cols() {
		return fmt.Errorf("cuda: softmax: %v into %v: %w", x, out, tensor.ErrShape)
	}
	if x.Numel() == 0 {
		return nil
	}
	return b.k.launch("softmax", dim3{x: x.Rows()}, dim3{x: rowThreads(x.Cols())}, 0, o, xp, x.Cols())
}

// CrossEntropy sets loss[i] = logsumexp(logits[i]) − logits[i, labels[i]] (0 for label −100).
func (b *Backend) CrossEntropy(loss, logits, labels *tensor.Tensor) error {
	defer b.lock()()
	const op = "cross entropy"
	lp, err := b.f32(op, "loss", loss)
	if err != nil {
		return err
	}
	xp, err := b.f32(op, "logits", logits)
	if err != nil {
		return err
	}
	yp, err := b.check(op, "labels", labels, tensor.I32)
	if err != nil {
		return err
	}
	n, v := logits.Rows(), logits.Cols()
	if labels.Numel() != n || loss.Numel() != n {
		return fmt.Errorf("cuda: cross entropy: logits %v, labels %v, loss %v: %w", logits, labels, loss, tensor.ErrShape)
	}
	if n == 0 {
		return nil
	}
	if err := b.clearFlag(); err != nil {
		return err
	}
	if err := b.k.launch("cross_entropy", dim3{x: n}, dim3{x: rowThreads(v)}, 0, lp, xp, yp, b.flag.Ptr, v); err != nil {
		return err
	}
	if bad, err := b.readFlag(); err != nil {
		return err
	} else if bad {
		return fmt.Errorf("cuda: cross entropy: a label in %v is outside the vocabulary of %d: %w", labels, v, tensor.ErrShape)
	}
	return nil
}

// ArgMax writes the index of each row's largest value (first on ties) into out (I32).
func (b *Backend) ArgMax(out, x *tensor.Tensor) error {
	defer b.lock()()
	xp, err := b.f32("argmax", "x", x)
	if err != nil {
		return err
	}
	op, err := b.check("argmax", "out", out, tensor.I32)
	if err != nil {
		return err
	}
	if out.Numel() != x.Rows() || x.Cols() == 0 {
		return fmt.Errorf("cuda: argmax: %v into %v: %w", x, out, tensor.ErrShape)
	}
	return b.k.launch("argmax", dim3{x: x.Rows()}, dim3{x: rowThreads(x.Cols())}, 0, op, xp, x.Cols())
}

// Slice copies src[.., start:start+dst.Dim(axis), ..] into dst.
func (b *Backend) Slice(dst, src *tensor.Tensor, axis, start int) error {
	defer b.lock()()
	return b.slice("slice", dst, src, axis, start, false)
}

// SetSlice writes src into dst[.., start:start+src.Dim(axis), ..].
func (b *Backend) SetSlice(dst, src *tensor.Tensor, axis, start int) error {
	defer b.lock()()
	return b.slice("set slice", dst, src, axis, start, true)
}

func (b *Backend) slice(op string, dst, src *tensor.Tensor, axis, start int, set bool) error {
	dp, err := b.check(op, "dst", dst, tensor.Invalid)
	if err != nil {
		return err
	}
	sp, err := b.check(op, "src", src, dst.DType())
	if err != nil {
		return err
	}
	full, part := src, dst
	if set {
		full, part = dst, src
	}
	fs, ps := full.Shape(), part.Shape()
	ok := len(fs) == len(ps) && axis >= 0 && axis < len(fs) && start >= 0 && start+ps[axis] <= fs[axis]
	for i := 0; ok && i < len(fs); i++ {
		if i != axis && fs[i] != ps[i] {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("cuda: %s: %v and %v along axis %d from %d: %w", op, dst, src, axis, start, tensor.ErrShape)
	}
	es := dst.DType().Size()
	outer := tensor.Numel(fs[:axis])
	inner := tensor.Numel(fs[axis+1:])
	fullRun, partRun := fs[axis]*inner, ps[axis]*inner
	off := uintptr(start * inner * es)
	if outer == 1 || partRun == fullRun {
		// one contiguous run
		if set {
			return b.dev.dtod(dp+off, sp, partRun*outer*es)
		}
		return b.dev.dtod(dp, sp+off, partRun*outer*es)
	}
	if set {
		return b.launch1("copy_blocks", outer*partRun, dp+off, sp, int64(outer), int64(partRun), int64(fullRun), int64(partRun), es)
	}
	return b.launch1("copy_blocks", outer*partRun, dp, sp+off, int64(outer), int64(partRun), int64(partRun), int64(fullRun), es)
}

// aligned16 reports whether every address is a multiple of 16 bytes (the vectorized kernels' float4
// accesses).
func aligned16(ps ...uintptr) bool {
	for _, p := range ps {
		if p%16 != 0 {
			return false
		}
	}
	return true
}
