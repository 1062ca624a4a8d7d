package cpu

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// visibleRange returns the key slots [lo, hi) query slot qs of sequence bi sees under p (see
// tensor.AttentionParams); lo >= hi means none.
func visibleRange(p tensor.AttentionParams, bi, qs, kvLen int) (lo, hi int) {
	if p.KeyStart != nil {
		lo = p.KeyStart[bi]
	}
	if p.Window > 0 {
		lo = max(lo, qs-p.Window+1)
	}
	hi = min(qs+1, kvLen)
	return lo, hi
}

// AttentionBackward recomputes each row's softmax P over the visible slots, then with
// dP = dout·vᵀ and dS = P⊙(dP − Σ dout⊙out): dq = scale·dS·k, dk += scale·dSᵀ·q, dv += Pᵀ·dout.
// Work is split over (sequence, kv head) pairs, each owning its dk/dv rows and its query heads' dq.
func (b *Backend) AttentionBackward(dq, dk, dv, dout, q, k, v, out *tensor.Tensor, p tensor.AttentionParams) error {
	const op = "attention backward"
	dqs, qs, gos, err := b.same3(op, dq, q, dout)
	if err != nil {
		return err
	}
	os, err := b.f32(op, "out", out)
	if err != nil {
		return err
	}
	dks, ks, vs, err := b.same3(op, dk, k, v)
	if err != nil {
		return err
	}
	dvs, err := b.f32(op, "dv", dv)
	if err != nil {
		return err
	}
	if q.Rank() != 4 || k.Rank() != 4 || len(os) != len(qs) || len(dvs) != len(ks) {
		return fmt.Errorf("cpu: %s: q %v, k %v, v %v, out %v: %w", op, q, k, v, out, tensor.ErrShape)
	}
	B, T, Hq, D := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	S, Hkv := k.Dim(1), k.Dim(2)
	if k.Dim(0) != B || k.Dim(3) != D || Hkv == 0 || Hq%Hkv != 0 || !tensor.SameShape(dk.Shape(), k.Shape()) ||
		!tensor.SameShape(dv.Shape(), k.Shape()) || !tensor.SameShape(dq.Shape(), q.Shape()) || (p.KeyStart != nil && len(p.KeyStart) != B) {
		return fmt.Errorf("cpu: %s: q %v, k %v, dq %v, dk %v, dv %v: %w", op, q, k, dq, dk, dv, tensor.ErrShape)
	}
	kvLen := p.KVLen
	if kvLen == 0 {
		kvLen = p.QStart + T
	}
	if kvLen > S {
		return fmt.Errorf("cpu: %s: KVLen %d > %d slots: %w", op, kvLen, S, tensor.ErrShape)
	}
	group := Hq / Hkv
	clear(dks)
	clear(dvs)
	clear(dqs)
	b.parallel(B*Hkv, func(_, task int) {
		bi, hk := task/Hkv, task%Hkv
		prob := make([]float64, S)
		dp := make([]float64, S)
		qoff := func(t, h int) int { return ((bi*T+t)*Hq + h) * D }
		koff := func(j int) int { return ((bi*S+j)*Hkv + hk) * D }
		for h := hk * group; h < (hk+1)*group; h++ {
			for t := 0; t < T; t++ {
				lo, hi := visibleRange(p, bi, p.QStart+t, kvLen)
				if lo >= hi {
					continue
				}
				qr := qs[qoff(t, h) : qoff(t, h)+D]
				mx := math.Inf(-1)
				for j := lo; j < hi; j++ {
					var s float64
					kr := ks[koff(j) : koff(j)+D]
					for i, x := range qr {
						s += float64(x) * float64(kr[i])
					}
					prob[j] = s * float64(p.Scale)
					mx = math.Max(mx, prob[j])
				}
				var sum float64
				for j := lo; j < hi; j++ {
					prob[j] = math.Exp(prob[j] - mx)
					sum += prob[j]
				}
				gr := gos[qoff(t, h) : qoff(t, h)+D]
				or := os[qoff(t, h) : qoff(t, h)+D]
				var rowDot float64 // Σ dout⊙out
				for i, g := range gr {
					rowDot += float64(g) * float64(or[i])
				}
				for j := lo; j < hi; j++ {
					prob[j] /= sum
					var s float64
					vr := vs[koff(j) : koff(j)+D]
					for i, g := range gr {
						s += float64(g) * float64(vr[i])
					}
					dp[j] = prob[j] * (s - rowDot) * float64(p.Scale) // dS·scale
				}
				dqr := dqs[qoff(t, h) : qoff(t, h)+D]
				for j := lo; j < hi; j++ {
					ds, pj := float32(dp[j]), float32(prob[j])
					kr := ks[koff(j) : koff(j)+D]
					dkr := dks[koff(j) : koff(j)+D]
					dvr := dvs[koff(j) : koff(j)+D]
					for i := 0; i < D; i++ {
						dqr[i] += ds * kr[i]
						dkr[i] += ds * qr[i]
						dvr[i] += pj * gr[i]
					}
				}
			}
		}
	})
	return nil
}
