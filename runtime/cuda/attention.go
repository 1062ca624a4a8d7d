package cuda

import (
	"fmt"
	"unsafe"

	"github.com/finlora/finlora/runtime/tensor"
)

// attnShape validates the operands of Attention/AttentionBackward and returns the dims.
type attnDims struct {
	B, T, Hq, D, S, Hkv, kvLen int
}

func (b *Backend) attnDims(op string, q, k, v, out *tensor.Tensor, p tensor.AttentionParams) (attnDims, error) {
	var a attnDims
	if q.Rank() != 4 || k.Rank() != 4 || !tensor.SameShape(k.Shape(), v.Shape()) || !tensor.SameShape(q.Shape(), out.Shape()) {
		return a, fmt.Errorf("cuda: %s: q %v, k %v, v %v, out %v (want q, out [B T Hq D], k, v [B S Hkv D]): %w", op, q, k, v, out, tensor.ErrShape)
	}
	a = attnDims{B: q.Dim(0), T: q.Dim(1), Hq: q.Dim(2), D: q.Dim(3), S: k.Dim(1), Hkv: k.Dim(2)}
	if k.Dim(0) != a.B || k.Dim(3) != a.D || a.Hkv == 0 || a.Hq%a.Hkv != 0 {
		return a, fmt.Errorf("cuda: %s: q %v against k %v (batch, head dim, or Hq not a multiple of Hkv): %w", op, q, k, tensor.ErrShape)
	}
	if a.D > 256 {
		return a, fmt.Errorf("cuda: %s: head dim %d > 256 is not supported yet: %w", op, a.D, tensor.ErrUnsupported)
	}
	a.kvLen = p.KVLen
	if a.kvLen == 0 {
		a.kvLen = p.QStart + a.T
	}
	if a.kvLen > a.S || p.QStart < 0 {
		return a, fmt.Errorf("cuda: %s: %d slots in use (QStart %d) but k holds %d: %w", op, a.kvLen, p.QStart, a.S, tensor.ErrShape)
	}
	if p.KeyStart != nil && len(p.KeyStart) != a.B {
		return a, fmt.Errorf("cuda: %s: KeyStart has %d entries for batch %d: %w", op, len(p.KeyStart), a.B, tensor.ErrShape)
	}
	if !b.tiled(a) && (2*a.D+a.S)*4 > 200<<10 {
		return a, fmt.Errorf("cuda: %s: %d key slots do not fit the simple kernel's shared memory: %w", op, a.S, tensor.ErrUnsupported)
	}
	return a, nil
}

// Tile sizes of kernels/attention_tiled.cu.
const (
	tileQ = 64
	tileK = 32
)

// tiled reports whether the tiled kernels (attention_tiled.cu) handle these shapes: head dims 64
// and 128, unless SimpleAttention is set.
func (b *Backend) tiled(a attnDims) bool {
	return !b.SimpleAttention && (a.D == 64 || a.D == 128)
}

// useMMA reports whether the bf16 tensor-core kernels (attention_mma.cu) handle these shapes: head
// dims 64 and 128 with every operand 16-byte aligned (they read float4s), unless SimpleAttention or
// F32Attention is set.
func (b *Backend) useMMA(a attnDims, ptrs ...uintptr) bool {
	if !b.tiled(a) || b.F32Attention {
		return false
	}
	for _, p := range ptrs {
		if p%16 != 0 {
			return false
		}
	}
	return true
}

// mmaFwdShm is the dynamic shared memory of attn_fwd_mma*: Q, K, V tiles of 64 rows, bf16, rows
// padded by 8 elements.
func mmaFwdShm(d int) int { return 3 * 64 * (d + 8) * 2 }

// mmaBwdShm is that of attn_dkdv_mma* and attn_dq_mma*: two 64-row and two 32-row bf16 tiles, then
// 64 lse and delta values (dq uses all, dkdv half).
func mmaBwdShm(d int) int { return (2*64+2*32)*(d+8)*2 + 2*64*4 }

// fwdMMA queues the tensor-core forward (out and, when lp != 0, the log-sum-exp).
func (b *Backend) fwdMMA(a attnDims, p tensor.AttentionParams, o, lp, qp, kp, vp, ksp uintptr) error {
	return b.k.launch(fmt.Sprintf("attn_fwd_mma%d", a.D), dim3{x: (a.T + 63) / 64, y: a.Hq, z: a.B}, dim3{x: 128}, mmaFwdShm(a.D),
		o, lp, qp, kp, vp, ksp, a.T, a.Hq, a.S, a.Hkv, p.QStart, a.kvLen, p.Window, p.Scale)
}

// fwdTiled queues the tiled forward (out and, when lp != 0, the log-sum-exp).
func (b *Backend) fwdTiled(a attnDims, p tensor.AttentionParams, o, lp, qp, kp, vp, ksp uintptr) error {
	shm := (tileQ*(a.D+1) + tileK*(a.D+1) + tileK*a.D + tileQ*(tileK+1)) * 4
	return b.k.launch(fmt.Sprintf("attn_fwd_t%d", a.D), dim3{x: (a.T + tileQ - 1) / tileQ, y: a.Hq, z: a.B}, dim3{x: 256}, shm,
		o, lp, qp, kp, vp, ksp, a.T, a.Hq, a.S, a.Hkv, p.QStart, a.kvLen, p.Window, p.Scale)
}

// keyStarts returns p.KeyStart on the device as I32 (0 when nil). The values live in a block the
// backend keeps (Backend.ks) and are uploaded only when they differ from the last ones: the layers
// of one forward pass, and decode steps, pass the same starts. The upload is stream-ordered after
// the kernels that read the previous values. The returned block is always nil now (the callers'
// Put of it is a no-op).
func (b *Backend) keyStarts(p tensor.AttentionParams) (*Block, uintptr, error) {
	if p.KeyStart == nil {
		return nil, 0, nil
	}
	c := &b.ks
	if c.blk != nil && len(c.vals) == len(p.KeyStart) {
		same := true
		for i, v := range p.KeyStart {
			same = same && c.vals[i] == int32(v)
		}
		if same {
			return nil, c.blk.Ptr, nil
		}
	}
	if c.blk != nil && c.blk.Bytes < int64(4*len(p.KeyStart)) {
		b.dev.Alloc.Put(c.blk)
		c.blk = nil
	}
	if c.blk == nil {
		blk, err := b.dev.Alloc.Get(int64(4*max(len(p.KeyStart), 64)), Workspace)
		if err != nil {
			return nil, 0, err
		}
		c.blk = blk
	}
	c.vals = c.vals[:0]
	for _, v := range p.KeyStart {
		c.vals = append(c.vals, int32(v))
	}
	if err := b.dev.htod(c.blk.Ptr, unsafe.Pointer(&c.vals[0]), 4*len(c.vals)); err != nil {
		c.vals = c.vals[:0]
		return nil, 0, err
	}
	return nil, c.blk.Ptr, nil
}

// keyStartCache is the device copy of the last key starts keyStarts uploaded.
type keyStartCache struct {
	blk  *Block
	vals []int32
}

const attnThreads = 128

// Attention is causal grouped-query attention with left padding and a sliding window (see
// tensor.Ops.Attention). One query row (T == 1, decode) with D ≤ 128, D % 4 == 0 uses attn_decode
// (attention.cu; float32) unless SimpleAttention is set. Head dims 64 and 128 use the tiled kernels (attention_tiled.cu: 64 query
// rows per block, online softmax); others, or SimpleAttention, the simple ones (attention.cu: one
// block per query row, its scores in shared memory).
func (b *Backend) Attention(out, q, k, v *tensor.Tensor, p tensor.AttentionParams) error {
	defer b.lock()()
	const op = "attention"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	qp, err := b.f32(op, "q", q)
	if err != nil {
		return err
	}
	kp, err := b.f32(op, "k", k)
	if err != nil {
		return err
	}
	vp, err := b.f32(op, "v", v)
	if err != nil {
		return err
	}
	a, err := b.attnDims(op, q, k, v, out, p)
	if err != nil {
		return err
	}
	var lp uintptr
	if p.LSE != nil {
		if lp, err = b.f32(op, "LSE", p.LSE); err != nil {
			return err
		}
		if p.LSE.Numel() != a.B*a.Hq*a.T {
			return fmt.Errorf("cuda: attention: LSE %v, want [%d %d %d]: %w", p.LSE, a.B, a.Hq, a.T, tensor.ErrShape)
		}
	}
	if a.B*a.T*a.Hq == 0 {
		return nil
	}
	ksBlk, ksp, err := b.keyStarts(p)
	if err != nil {
		return err
	}
	defer b.dev.Alloc.Put(ksBlk)
	// decode: one query row; its scores (at most kvLen) in the default 48 KiB of shared memory
	if a.T == 1 && !b.SimpleAttention && a.D%4 == 0 && a.D <= 128 && (o|qp|kp|vp)%16 == 0 && a.kvLen <= 12288 {
		return b.k.launchDependent("attn_decode", dim3{x: a.Hq, y: a.B}, dim3{x: 256}, a.kvLen*4, // AD_WARPS·32 threads
			o, lp, qp, kp, vp, ksp, a.Hq, a.S, a.Hkv, a.D, p.QStart, a.kvLen, p.Window, p.Scale)
	}
	if b.useMMA(a, o, qp, kp, vp) {
		return b.fwdMMA(a, p, o, lp, qp, kp, vp, ksp)
	}
	if b.tiled(a) {
		return b.fwdTiled(a, p, o, lp, qp, kp, vp, ksp)
	}
	return b.k.launch("attn_fwd", dim3{x: a.T, y: a.Hq, z: a.B}, dim3{x: attnThreads}, (a.D+a.S)*4,
		o, lp, qp, kp, vp, ksp, a.T, a.Hq, a.S, a.Hkv, a.D, p.QStart, a.kvLen, p.Window, p.Scale)
}

// AttentionBackward sets dq, dk, dv of Attention (see tensor.Backward) in three passes without
// atomics: per query row delta = Σ dout⊙out (and the log-sum-exp unless p.LSE is given), then dq per
// query row, then dk and dv per key slot summing over the query rows and heads that see it.
func (b *Backend) AttentionBackward(dq, dk, dv, dout, q, k, v, out *tensor.Tensor, p tensor.AttentionParams) error {
	defer b.lock()()
	const op = "attention backward"
	ptrs := make([]uintptr, 8)
	for i, x := range []struct {
		name string
		t    *tensor.Tensor
	}{{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dout", dout}, {"q", q}, {"k", k}, {"v", v}, {"out", out}} {
		var err error
		if ptrs[i], err = b.f32(op, x.name, x.t); err != nil {
			return err
		}
	}
	a, err := b.attnDims(op, q, k, v, out, p)
	if err != nil {
		return err
	}
	if !tensor.SameShape(dq.Shape(), q.Shape()) || !tensor.SameShape(dout.Shape(), q.Shape()) ||
		!tensor.SameShape(dk.Shape(), k.Shape()) || !tensor.SameShape(dv.Shape(), k.Shape()) {
		return fmt.Errorf("cuda: %s: q %v, k %v, dq %v, dk %v, dv %v, dout %v: %w", op, q, k, dq, dk, dv, dout, tensor.ErrShape)
	}
	pdq, pdk, pdv, pdo, pq, pk, pv, po := ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7]
	rows := a.B * a.Hq * a.T
	if rows == 0 || a.S == 0 {
		if err := b.dev.memset0(pdk, int(dk.Bytes())); err != nil {
			return err
		}
		if err := b.dev.memset0(pdv, int(dv.Bytes())); err != nil {
			return err
		}
		return b.dev.memset0(pdq, int(dq.Bytes()))
	}
	stats, err := b.dev.Alloc.Get(int64(8*rows), Workspace)
	if err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	defer b.dev.Alloc.Put(stats)
	lse, delta := stats.Ptr, stats.Ptr+uintptr(4*rows)
	haveLSE := 0
	if p.LSE != nil {
		lp, err := b.f32(op, "LSE", p.LSE)
		if err != nil {
			return err
		}
		if p.LSE.Numel() != rows {
			return fmt.Errorf("cuda: %s: LSE %v, want [%d %d %d]: %w", op, p.LSE, a.B, a.Hq, a.T, tensor.ErrShape)
		}
		if err := b.dev.dtod(lse, lp, 4*rows); err != nil {
			return err
		}
		haveLSE = 1
	}
	ksBlk, ksp, err := b.keyStarts(p)
	if err != nil {
		return err
	}
	defer b.dev.Alloc.Put(ksBlk)
	if b.useMMA(a, pdq, pdk, pdv, pdo, pq, pk, pv, po) {
		return b.bwdMMA(a, p, haveLSE == 1, lse, delta, ksp, pdq, pdk, pdv, pdo, pq, pk, pv, po)
	}
	rowGrid := dim3{x: a.T, y: a.Hq, z: a.B}
	blk := dim3{x: attnThreads}
	if b.tiled(a) {
		if haveLSE == 0 { // the log-sum-exp from a tiled forward into scratch
			scratch, err := b.dev.Alloc.Get(int64(4*rows*a.D), Workspace)
			if err != nil {
				return fmt.Errorf("cuda: %s: %w", op, err)
			}
			defer b.dev.Alloc.Put(scratch)
			if err := b.fwdTiled(a, p, scratch.Ptr, lse, pq, pk, pv, ksp); err != nil {
				return err
			}
		}
		if err := b.k.launch("attn_bwd_prep", rowGrid, blk, 0, lse, delta, pdo, po, pq, pk, ksp, 1,
			a.T, a.Hq, a.S, a.Hkv, a.D, p.QStart, a.kvLen, p.Window, p.Scale); err != nil {
			return err
		}
		shmKV := (2*tileK*(a.D+1) + 2*tileQ*(a.D+1) + 2*tileQ*(tileK+1) + 2*tileQ) * 4
		if err := b.k.launch(fmt.Sprintf("attn_dkdv_t%d", a.D), dim3{x: (a.S + tileK - 1) / tileK, y: a.Hkv, z: a.B}, dim3{x: 256}, shmKV,
			pdk, pdv, pdo, pq, pk, pv, lse, delta, ksp, a.T, a.Hq, a.S, a.Hkv, p.QStart, a.kvLen, p.Window, p.Scale); err != nil {
			return err
		}
		shmQ := (2*tileK*(a.D+1) + 2*tileQ*(a.D+1) + tileQ*(tileK+1) + 2*tileQ) * 4
		return b.k.launch(fmt.Sprintf("attn_dq_t%d", a.D), dim3{x: (a.T + tileQ - 1) / tileQ, y: a.Hq, z: a.B}, dim3{x: 256}, shmQ,
			pdq, pdo, pq, pk, pv, lse, delta, ksp, a.T, a.Hq, a.S, a.Hkv, p.QStart, a.kvLen, p.Window, p.Scale)
	}
	if err := b.k.launch("attn_bwd_prep", rowGrid, blk, (a.D+a.S)*4, lse, delta, pdo, po, pq, pk, ksp, haveLSE,
		a.T, a.Hq, a.S, a.Hkv, a.D, p.QStart, a.kvLen, p.Window, p.Scale); err != nil {
		return err
	}
	if err := b.k.launch("attn_bwd_dq", rowGrid, blk, (2*a.D+a.S)*4, pdq, pdo, pq, pk, pv, lse, delta, ksp,
		a.T, a.Hq, a.S, a.Hkv, a.D, p.QStart, a.kvLen, p.Window, p.Scale); err != nil {
		return err
	}
	nw := attnThreads / 32
	return b.k.launch("attn_bwd_dkdv", dim3{x: a.S, y: a.Hkv, z: a.B}, blk, (2*a.D+nw*2*a.D)*4, pdk, pdv, pdo, pq, pk, pv, lse, delta, ksp,
		a.T, a.Hq, a.S, a.Hkv, a.D, p.QStart, a.kvLen, p.Window, p.Scale)
}

// bwdMMA queues the tensor-core backward: the log-sum-exp by the mma forward into scratch unless
// haveLSE (then lse already holds the caller's), delta per query row, then dK/dV and dQ.
func (b *Backend) bwdMMA(a attnDims, p tensor.AttentionParams, haveLSE bool, lse, delta, ksp, pdq, pdk, pdv, pdo, pq, pk, pv, po uintptr) error {
	rows := a.B * a.T * a.Hq
	if !haveLSE {
		scratch, err := b.dev.Alloc.Get(int64(4*rows*a.D), Workspace)
		if err != nil {
			return fmt.Errorf("cuda: attention backward: %w", err)
		}
		defer b.dev.Alloc.Put(scratch)
		if err := b.fwdMMA(a, p, scratch.Ptr, lse, pq, pk, pv, ksp); err != nil {
			return err
		}
	}
	if err := b.k.launch("attn_delta", dim3{x: (rows + 7) / 8}, dim3{x: 256}, 0, delta, pdo, po, rows, a.T, a.Hq, a.D); err != nil {
		return err
	}
	if err := b.k.launch(fmt.Sprintf("attn_dkdv_mma%d", a.D), dim3{x: (a.S + 63) / 64, y: a.Hkv, z: a.B}, dim3{x: 128}, mmaBwdShm(a.D),
		pdk, pdv, pdo, pq, pk, pv, lse, delta, ksp, a.T, a.Hq, a.S, a.Hkv, p.QStart, a.kvLen, p.Window, p.Scale); err != nil {
		return err
	}
	return b.k.launch(fmt.Sprintf("attn_dq_mma%d", a.D), dim3{x: (a.T + 63) / 64, y: a.Hq, z: a.B}, dim3{x: 128}, mmaBwdShm(a.D),
		pdq, pdo, pq, pk, pv, lse, delta, ksp, a.T, a.Hq, a.S, a.Hkv, p.QStart, a.kvLen, p.Window, p.Scale)
}
