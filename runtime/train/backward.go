package train

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// linearBackward propagates dy [N, out] through linear `name` of layer l whose input was x, and
// accumulates the adapter's gradients. With dy' = dy (LoRA) or dy⊙mscale (DoRA), dxa = s·dy'·B:
//
//	dB += s·dy'ᵀ·xa,  dA += dxaᵀ·xm,  dMagnitude += Σ_rows dy⊙pre / ‖W + s·B·A‖ (DoRA)
//	dx (+)= dy·W + ((dy' − dy)·W + dxa·A)⊙mask
//
// (the (dy'−dy)·W term is DoRA's (mscale−1)⊙x_d·Wᵀ; the norm is a constant, as PEFT detaches it).
// With accumulate set dx is added to, else overwritten. x (the layer's input) is not read: the
// adapter's saved input is; it may be nil.
func (g *graph) linearBackward(ar *arena, l int, name string, dy, x, dx *tensor.Tensor, acts *layerActs, accumulate bool) error {
	w := g.base.Layers[l].weight(name)
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	if err := w.backward(g.b, dx, dy, beta); err != nil {
		return fmt.Errorf("train: layer %d %s backward: %w", l, name, err)
	}
	la := acts.lin[name]
	if la == nil {
		return nil
	}
	dm := g.ad.mods[ModulePath(l, name)]
	var err error
	alloc := func(shape ...int) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = ar.f32(shape...)
		return t
	}
	// plain LoRA without dropout adds dxa·A straight into dx (one GEMM with beta 1, no temporary)
	direct := la.mask == nil && dm.mscale == nil
	var tmp *tensor.Tensor
	if !direct {
		tmp = alloc(dx.Shape()...)
	}
	dxa := alloc(dy.Rows(), dm.mod.R)
	var prod, col, dyScaled *tensor.Tensor
	if dm.mscale != nil {
		prod, col, dyScaled = alloc(dy.Shape()...), alloc(dm.mod.Out), alloc(dy.Shape()...)
	}
	if err != nil {
		return err
	}
	// tmp: the branch's input gradient before the mask, (dy'−dy)·W + dxa·A
	dyB := dy // dy' in the formulas
	if dm.mscale != nil {
		if err := g.b.Mul(prod, dy, la.pre); err != nil {
			return err
		}
		if err := g.bw.SumRows(col, prod, 0); err != nil {
			return err
		}
		if err := g.b.Mul(col, col, dm.invNorm); err != nil {
			return err
		}
		if err := g.b.Add(dm.dMag, dm.dMag, col, 1); err != nil {
			return err
		}
		dyB = dyScaled
		if err := g.bw.MulCols(dyB, dy, dm.mscale); err != nil {
			return err
		}
		if err := g.b.Add(prod, dyB, dy, -1); err != nil { // dy' − dy
			return err
		}
		if err := w.backward(g.b, tmp, prod, 0); err != nil {
			return err
		}
	}
	s := dm.mod.Scale
	if err := g.loraGemm(w, dxa, dyB, dm.B, false, false, s, 0); err != nil {
		return err
	}
	if err := g.loraGemm(w, dm.dB, dyB, la.xa, true, false, s, 1); err != nil {
		return fmt.Errorf("train: layer %d %s lora_B grad: %w", l, name, err)
	}
	if err := g.loraGemm(w, dm.dA, dxa, la.xm, true, false, 1, 1); err != nil {
		return fmt.Errorf("train: layer %d %s lora_A grad: %w", l, name, err)
	}
	if direct {
		return g.loraGemm(w, dx, dxa, dm.A, false, false, 1, 1)
	}
	tbeta := float32(0)
	if dm.mscale != nil {
		tbeta = 1
	}
	if err := g.loraGemm(w, tmp, dxa, dm.A, false, false, 1, tbeta); err != nil {
		return err
	}
	if la.mask != nil {
		if err := g.b.Mul(tmp, tmp, la.mask); err != nil {
			return err
		}
	}
	return g.b.Add(dx, dx, tmp, 1)
}

// layerBackward takes dOut = ∂L/∂(layer output) [N, H] and writes ∂L/∂(layer input) into dh.
func (g *graph) layerBackward(ar *arena, mb *microBatch, l int, h *tensor.Tensor, acts *layerActs, dOut, dh *tensor.Tensor) error {
	if g.base.Gemma != nil {
		return g.gemmaLayerBackward(ar, mb, l, h, acts, dOut, dh)
	}
	a := g.base.Arch
	ly := &g.base.Layers[l]
	B, T, N := mb.B, mb.T, mb.B*mb.T
	var err error
	alloc := func(shape ...int) *tensor.Tensor { // every tensor below is overwritten by the op that fills it
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = ar.out(shape...)
		return t
	}
	dact, dgate, dup := alloc(N, a.Intermediate), alloc(N, a.Intermediate), alloc(N, a.Intermediate)
	dxn2, dh2 := alloc(N, a.Hidden), alloc(N, a.Hidden)
	dattn := alloc(B, T, a.Heads, a.HeadDim)
	dq, dk, dv := alloc(B, T, a.Heads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim)
	dxn := alloc(N, a.Hidden)
	if err != nil {
		return err
	}
	// MLP: out = h2 + down(silu(gate(xn2))⊙up(xn2)), xn2 = norm(h2)
	if err := g.linearBackward(ar, l, "down_proj", dOut, acts.act, dact, acts, false); err != nil {
		return err
	}
	if err := g.bw.SwiGLUBackward(dgate, dup, dact, acts.gate, acts.up); err != nil {
		return fmt.Errorf("train: layer %d swiglu backward: %w", l, err)
	}
	if err := g.linearBackward(ar, l, "gate_proj", dgate, acts.xn2, dxn2, acts, false); err != nil {
		return err
	}
	if err := g.linearBackward(ar, l, "up_proj", dup, acts.xn2, dxn2, acts, true); err != nil {
		return err
	}
	if err := g.bw.RMSNormBackward(dh2, dxn2, acts.h2, ly.MLPNorm, a.Eps, false); err != nil {
		return fmt.Errorf("train: layer %d post-attention norm backward: %w", l, err)
	}
	if err := g.b.Add(dh2, dh2, dOut, 1); err != nil {
		return err
	}
	// attention: h2 = h + o(attn(rope(q(xn)), rope(k(xn)), v(xn))), xn = norm(h)
	if err := g.linearBackward(ar, l, "o_proj", dh2, acts.attn.MustView(N, -1), dattn.MustView(N, -1), acts, false); err != nil {
		return err
	}
	pa := g.attnParams(l)
	pa.LSE = acts.lse // the forward's (nil: the backend recomputes it)
	if err := g.bw.AttentionBackward(dq, dk, dv, dattn, acts.q, acts.k, acts.v, acts.attn, pa); err != nil {
		return fmt.Errorf("train: layer %d attention backward: %w", l, err)
	}
	if err := g.b.Rope(dq, mb.pos, g.base.Cos, g.base.NegSin); err != nil {
		return fmt.Errorf("train: layer %d rope backward: %w", l, err)
	}
	if err := g.b.Rope(dk, mb.pos, g.base.Cos, g.base.NegSin); err != nil {
		return fmt.Errorf("train: layer %d rope backward: %w", l, err)
	}
	if ly.QNorm != nil {
		dqp, dkp := alloc(dq.Shape()...), alloc(dk.Shape()...)
		if err != nil {
			return err
		}
		if err := g.bw.RMSNormBackward(dqp.MustView(-1, a.HeadDim), dq.MustView(-1, a.HeadDim), acts.qPre.MustView(-1, a.HeadDim), ly.QNorm, a.Eps, false); err != nil {
			return fmt.Errorf("train: layer %d q_norm backward: %w", l, err)
		}
		if err := g.bw.RMSNormBackward(dkp.MustView(-1, a.HeadDim), dk.MustView(-1, a.HeadDim), acts.kPre.MustView(-1, a.HeadDim), ly.KNorm, a.Eps, false); err != nil {
			return fmt.Errorf("train: layer %d k_norm backward: %w", l, err)
		}
		dq, dk = dqp, dkp
	}
	for i, x := range []struct {
		name string
		d    *tensor.Tensor
	}{{"q_proj", dq}, {"k_proj", dk}, {"v_proj", dv}} {
		if err := g.linearBackward(ar, l, x.name, x.d.MustView(N, -1), acts.xn, dxn, acts, i > 0); err != nil {
			return err
		}
	}
	if err := g.bw.RMSNormBackward(dh, dxn, h, ly.AttnNorm, a.Eps, false); err != nil {
		return fmt.Errorf("train: layer %d input norm backward: %w", l, err)
	}
	return g.b.Add(dh, dh, dh2, 1)
}

// run does the forward of one micro-batch and, with backward set, its backward, accumulating the
// adapter gradients of loss·scale (scale = 1/(counted labels of the whole step) gives HF's mean).
// It returns the sum of the per-token cross-entropies over counted labels.
func (g *graph) run(mb *microBatch, scale float32, backward bool) (float64, error) {
	if g.base.Gemma != nil {
		return g.gemmaRun(mb, scale, backward) // gemma3_run.go
	}
	a := g.base.Arch
	N := mb.B * mb.T
	keep := &arena{b: g.b, live: &g.live} // lives for the whole micro-batch
	defer keep.free()
	hs := make([]*tensor.Tensor, a.Layers+1)
	var err error
	for i := range hs { // hs[0] by the embedding, hs[l+1] by layer l
		if hs[i], err = keep.out(N, a.Hidden); err != nil {
			return 0, err
		}
	}
	if err := g.b.Embedding(hs[0], g.base.Embed, mb.ids); err != nil {
		return 0, fmt.Errorf("train: embedding: %w", err)
	}
	acts := make([]*layerActs, a.Layers)
	layerArenas := make([]*arena, a.Layers)
	defer func() {
		for _, la := range layerArenas {
			if la != nil {
				la.free()
			}
		}
	}()
	for l := 0; l < a.Layers; l++ {
		layerArenas[l] = &arena{b: g.b, live: &g.live}
		if acts[l], err = g.layerForward(layerArenas[l], mb, l, hs[l], hs[l+1]); err != nil {
			return 0, err
		}
		if g.recompute || !backward {
			layerArenas[l].free()
			acts[l] = nil
		}
	}
	hn, err := keep.out(N, a.Hidden)
	if err != nil {
		return 0, err
	}
	if err := g.b.RMSNorm(hn, hs[a.Layers], g.base.FinalNorm, a.Eps, false); err != nil {
		return 0, fmt.Errorf("train: final norm: %w", err)
	}
	sum, err := g.head(keep, mb, hn, scale, backward) // with backward, hn now holds ∂L/∂hn
	if err != nil || !backward {
		return sum, err
	}
	dh, err := keep.out(N, a.Hidden)
	if err != nil {
		return 0, err
	}
	if err := g.bw.RMSNormBackward(dh, hn, hs[a.Layers], g.base.FinalNorm, a.Eps, false); err != nil {
		return 0, fmt.Errorf("train: final norm backward: %w", err)
	}
	dIn, err := keep.out(N, a.Hidden) // written by layerBackward
	if err != nil {
		return 0, err
	}
	holder, _ := g.b.(dequantHolder)
	for l := a.Layers - 1; l >= 0; l-- {
		hold := false
		if acts[l] == nil { // recompute this layer's forward (same dropout masks)
			if hold = holder != nil && g.base.Layers[l].hasPacked(); hold {
				holder.HoldDequantized(true) // until this layer's backward has read them again
			}
			layerArenas[l] = &arena{b: g.b, live: &g.live}
			var err error
			if acts[l], err = g.layerForward(layerArenas[l], mb, l, hs[l], nil); err != nil {
				if hold {
					holder.HoldDequantized(false)
				}
				return 0, err
			}
		}
		bwd := &arena{b: g.b, live: &g.live}
		err := g.layerBackward(bwd, mb, l, hs[l], acts[l], dh, dIn)
		if hold {
			holder.HoldDequantized(false)
		}
		bwd.free()
		layerArenas[l].free()
		acts[l] = nil
		if err != nil {
			return 0, err
		}
		dh, dIn = dIn, dh
	}
	return sum, nil
}

// headChunkRows is the most rows the LM head and the loss take at once: only [headChunkRows, V]
// F32 logits (and their bf16 copy for the GEMM) are alive, not [N, V] (1 GiB at N = 2048 and
// V = 128256).
var headChunkRows = 512 // a variable for tests

// head runs the LM head and the cross-entropy over hn [N, H] in chunks of headChunkRows rows and
// returns the sum of the per-token losses over counted labels; with backward it overwrites hn with
// ∂(loss·scale)/∂hn. Chunks are copied out of hn (Slice) and their input gradients written back
// (SetSlice) into the rows just consumed; one chunk (N ≤ headChunkRows) works on hn directly.
func (g *graph) head(keep *arena, mb *microBatch, hn *tensor.Tensor, scale float32, backward bool) (float64, error) {
	a := g.base.Arch
	N := hn.Dim(0)
	lossAll, err := keep.out(N) // every row by the cross-entropy of its chunk
	if err != nil {
		return 0, err
	}
	for r0 := 0; r0 < N; r0 += headChunkRows {
		n := min(headChunkRows, N-r0)
		ar := &arena{b: g.b, live: &g.live}
		err := func() error {
			defer ar.free()
			x, tg, loss := hn, mb.targets, lossAll
			if n < N {
				var err error
				if x, err = ar.out(n, a.Hidden); err != nil {
					return err
				}
				if err := g.b.Slice(x, hn, 0, r0); err != nil {
					return fmt.Errorf("train: lm head rows %d..%d: %w", r0, r0+n, err)
				}
				if tg, err = ar.alloc(tensor.I32, n); err != nil {
					return err
				}
				if err := g.b.Slice(tg, mb.targets, 0, r0); err != nil {
					return fmt.Errorf("train: labels rows %d..%d: %w", r0, r0+n, err)
				}
				if loss, err = ar.out(n); err != nil {
					return err
				}
			}
			logits, err := ar.out(n, a.Vocab)
			if err != nil {
				return err
			}
			if err := g.b.Gemm(logits, x, g.base.LMHead, false, true, 1, 0); err != nil {
				return fmt.Errorf("train: lm head: %w", err)
			}
			if err := g.b.CrossEntropy(loss, logits, tg); err != nil {
				return fmt.Errorf("train: loss: %w", err)
			}
			if loss != lossAll {
				if err := g.b.SetSlice(lossAll, loss, 0, r0); err != nil {
					return err
				}
			}
			if !backward {
				return nil
			}
			if err := g.bw.CrossEntropyBackward(logits, logits, tg, scale); err != nil {
				return fmt.Errorf("train: loss backward: %w", err)
			}
			if err := g.b.Gemm(x, logits, g.base.LMHead, false, false, 1, 0); err != nil { // x now holds ∂L/∂x
				return fmt.Errorf("train: lm head backward: %w", err)
			}
			if x != hn {
				return g.b.SetSlice(hn, x, 0, r0)
			}
			return nil
		}()
		if err != nil {
			return 0, err
		}
	}
	losses, err := g.b.ToFloat32(lossAll)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range losses {
		sum += float64(v)
	}
	return sum, nil
}

// dequantHolder is implemented by backends that can keep the dense copies they dequantize
// quantized weights into (runtime/cuda's HoldDequantized): with gradient checkpointing, a layer's
// recomputed forward and its backward read the same frozen weights back to back, so the trainer
// holds the copies from the one through the other (one layer's bf16 weights of extra memory) and
// releases them before the next layer.
type dequantHolder interface {
	HoldDequantized(on bool)
}

// hasPacked reports whether any linear weight of the layer is quantized (packed).
func (ly *Layer) hasPacked() bool {
	for _, p := range ly.Packed {
		if p != nil {
			return true
		}
	}
	return false
}
