package train

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// gemmaRun is graph.run for a Gemma 3 base: the embeddings are scaled by sqrt(hidden), the layers
// are Gemma's, the final norm may add one, and the tied LM head (262144 rows for Gemma 3) is
// applied only to the rows that carry a label: the loss and its gradient are exactly those of
// the full logits (other rows contribute nothing), at a fraction of the cost.
func (g *graph) gemmaRun(mb *microBatch, scale float32, backward bool) (float64, error) {
	a := g.base.Arch
	gp := g.base.Gemma
	N := mb.B * mb.T
	keep := &arena{b: g.b, live: &g.live}
	defer keep.free()
	hs := make([]*tensor.Tensor, a.Layers+1)
	var err error
	for i := range hs {
		if hs[i], err = keep.f32(N, a.Hidden); err != nil {
			return 0, err
		}
	}
	if err := g.b.Embedding(hs[0], g.base.Embed, mb.ids); err != nil {
		return 0, fmt.Errorf("train: embedding: %w", err)
	}
	if err := g.b.Scale(hs[0], hs[0], gp.EmbedScale); err != nil {
		return 0, fmt.Errorf("train: embedding scale: %w", err)
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
		if acts[l], err = g.gemmaLayerForward(layerArenas[l], mb, l, hs[l], hs[l+1]); err != nil {
			return 0, err
		}
		if g.recompute || !backward {
			layerArenas[l].free()
			acts[l] = nil
		}
	}
	hn, err := keep.f32(N, a.Hidden)
	if err != nil {
		return 0, err
	}
	if err := g.b.RMSNorm(hn, hs[a.Layers], g.base.FinalNorm, a.Eps, gp.NormAddOne); err != nil {
		return 0, fmt.Errorf("train: final norm: %w", err)
	}
	// the labelled rows
	tg, err := g.b.ToInt32(mb.targets)
	if err != nil {
		return 0, err
	}
	var rows, labels []int32
	for i, t := range tg {
		if t != IgnoreIndex {
			rows, labels = append(rows, int32(i)), append(labels, t)
		}
	}
	dh, err := keep.f32(N, a.Hidden)
	if err != nil {
		return 0, err
	}
	var sum float64
	if n := len(rows); n > 0 {
		if sum, err = g.gemmaHead(keep, hn, dh, rows, labels, scale, backward); err != nil {
			return 0, err
		}
	}
	if !backward {
		return sum, nil
	}
	if err := g.bw.RMSNormBackward(dh, dh, hs[a.Layers], g.base.FinalNorm, a.Eps, gp.NormAddOne); err != nil {
		return 0, fmt.Errorf("train: final norm backward: %w", err)
	}
	dIn, err := keep.f32(N, a.Hidden)
	if err != nil {
		return 0, err
	}
	for l := a.Layers - 1; l >= 0; l-- {
		if acts[l] == nil { // recompute this layer's forward (same dropout masks)
			layerArenas[l] = &arena{b: g.b, live: &g.live}
			scratch, err := layerArenas[l].f32(N, a.Hidden)
			if err != nil {
				return 0, err
			}
			if acts[l], err = g.gemmaLayerForward(layerArenas[l], mb, l, hs[l], scratch); err != nil {
				return 0, err
			}
		}
		bwd := &arena{b: g.b, live: &g.live}
		err := g.gemmaLayerBackward(bwd, mb, l, hs[l], acts[l], dh, dIn)
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

// gemmaHead gathers the labelled rows of hn [N, H], applies the LM head and the cross-entropy, and
// returns the sum of their losses; with backward set it writes ∂(scale·loss)/∂hn into dh [N, H]
// (zero on unlabelled rows).
func (g *graph) gemmaHead(ar *arena, hn, dh *tensor.Tensor, rows, labels []int32, scale float32, backward bool) (float64, error) {
	a := g.base.Arch
	n := len(rows)
	idx, err := g.b.FromInt32([]int{n}, rows)
	if err != nil {
		return 0, err
	}
	ar.keep(idx)
	lab, err := g.b.FromInt32([]int{n}, labels)
	if err != nil {
		return 0, err
	}
	ar.keep(lab)
	sel, err := ar.f32(n, a.Hidden)
	if err != nil {
		return 0, err
	}
	if err := g.b.Embedding(sel, hn, idx); err != nil { // gather rows of hn
		return 0, fmt.Errorf("train: gather labelled rows: %w", err)
	}
	logits, err := ar.f32(n, a.Vocab)
	if err != nil {
		return 0, err
	}
	if err := g.b.Gemm(logits, sel, g.base.LMHead, false, true, 1, 0); err != nil {
		return 0, fmt.Errorf("train: lm head: %w", err)
	}
	lossT, err := ar.f32(n)
	if err != nil {
		return 0, err
	}
	if err := g.b.CrossEntropy(lossT, logits, lab); err != nil {
		return 0, fmt.Errorf("train: loss: %w", err)
	}
	losses, err := g.b.ToFloat32(lossT)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range losses {
		sum += float64(v)
	}
	if !backward {
		return sum, nil
	}
	if err := g.bw.CrossEntropyBackward(logits, logits, lab, scale); err != nil {
		return 0, fmt.Errorf("train: loss backward: %w", err)
	}
	if err := g.b.Gemm(sel, logits, g.base.LMHead, false, false, 1, 0); err != nil {
		return 0, fmt.Errorf("train: lm head backward: %w", err)
	}
	// scatter the rows back (on the host: n·H values)
	sv, err := g.b.ToFloat32(sel)
	if err != nil {
		return 0, err
	}
	full := make([]float32, dh.Numel())
	for i, r := range rows {
		copy(full[int(r)*a.Hidden:(int(r)+1)*a.Hidden], sv[i*a.Hidden:(i+1)*a.Hidden])
	}
	return sum, copyHost(g.b, dh, full)
}
