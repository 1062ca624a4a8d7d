package cpu

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// Attention is causal grouped-query attention with left padding and an optional sliding window
// (see tensor.Ops.Attention and tensor.AttentionParams). Parallel over (sequence, head, query row).
func (b *Backend) Attention(out, q, k, v *tensor.Tensor, p tensor.AttentionParams) error {
	const op = "attention"
	o, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	qs, err := b.f32(op, "q", q)
	if err != nil {
		return err
	}
	ks, err := b.f32(op, "k", k)
	if err != nil {
		return err
	}
	vs, err := b.f32(op, "v", v)
	if err != nil {
		return err
	}
	if q.Rank() != 4 || k.Rank() != 4 || !tensor.SameShape(k.Shape(), v.Shape()) || !tensor.SameShape(q.Shape(), out.Shape()) {
		return fmt.Errorf("cpu: attention: q %v, k %v, v %v, out %v (want q, out [B T Hq D], k, v [B S Hkv D]): %w", q, k, v, out, tensor.ErrShape)
	}
	B, T, hq, d := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	S, hkv := k.Dim(1), k.Dim(2)
	if k.Dim(0) != B || k.Dim(3) != d || hkv == 0 || hq%hkv != 0 {
		return fmt.Errorf("cpu: attention: q %v against k %v (batch, head dim, or Hq not a multiple of Hkv): %w", q, k, tensor.ErrShape)
	}
	kvLen := p.KVLen
	if kvLen == 0 {
		kvLen = p.QStart + T
	}
	if kvLen > S || p.QStart < 0 {
		return fmt.Errorf("cpu: attention: %d slots in use (QStart %d) but k holds %d: %w", kvLen, p.QStart, S, tensor.ErrShape)
	}
	if p.KeyStart != nil && len(p.KeyStart) != B {
		return fmt.Errorf("cpu: attention: KeyStart has %d entries for batch %d: %w", len(p.KeyStart), B, tensor.ErrShape)
	}
	var lse []float32
	if p.LSE != nil {
		if lse, err = b.f32(op, "LSE", p.LSE); err != nil {
			return err
		}
		if len(lse) != B*hq*T {
			return fmt.Errorf("cpu: attention: LSE %v, want [%d %d %d]: %w", p.LSE, B, hq, T, tensor.ErrShape)
		}
	}
	group := hq / hkv
	scratch := make([][]float32, b.workers)
	b.parallel(B*hq*T, func(worker, task int) {
		t := task % T
		h := (task / T) % hq
		bi := task / (T * hq)
		kh := h / group
		qrow := qs[((bi*T+t)*hq+h)*d : ((bi*T+t)*hq+h+1)*d]
		orow := o[((bi*T+t)*hq+h)*d : ((bi*T+t)*hq+h+1)*d]
		slot := p.QStart + t
		lo, hi := 0, min(slot, kvLen-1)
		if p.KeyStart != nil {
			lo = p.KeyStart[bi]
		}
		if p.Window > 0 {
			lo = max(lo, slot-p.Window+1)
		}
		clear(orow)
		if lo > hi {
			if lse != nil {
				lse[(bi*hq+h)*T+t] = float32(math.Inf(-1))
			}
			return
		}
		if cap(scratch[worker]) < S {
			scratch[worker] = make([]float32, S)
		}
		sc := scratch[worker][:hi-lo+1]
		stride := hkv * d
		base := (bi*S*hkv + kh) * d
		j := lo
		for ; j+4 <= hi+1; j += 4 {
			o0 := base + j*stride
			s0, s1, s2, s3 := dot4(qrow, ks[o0:o0+d], ks[o0+stride:o0+stride+d], ks[o0+2*stride:o0+2*stride+d], ks[o0+3*stride:o0+3*stride+d])
			sc[j-lo], sc[j-lo+1], sc[j-lo+2], sc[j-lo+3] = p.Scale*float32(s0), p.Scale*float32(s1), p.Scale*float32(s2), p.Scale*float32(s3)
		}
		for ; j <= hi; j++ {
			sc[j-lo] = p.Scale * float32(dot64(qrow, ks[base+j*stride:base+j*stride+d]))
		}
		l := softmaxRow(sc, sc)
		if lse != nil {
			lse[(bi*hq+h)*T+t] = float32(l)
		}
		for j := lo; j <= hi; j++ {
			w := sc[j-lo]
			vr := vs[base+j*stride : base+j*stride+d]
			for i, x := range vr {
				orow[i] += w * x
			}
		}
	})
	return nil
}
