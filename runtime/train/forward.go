package train

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/finlora/finlora/runtime/tensor"
)

// graph runs the training forward and backward of one micro-batch on the base's backend.
// Shapes: B sequences of T tokens, N = B·T rows, H hidden, Hq/Hkv heads of D, I MLP width, V vocab.
type graph struct {
	base *Base
	b    tensor.Backend
	bw   tensor.Backward
	ad   *devAdapter // nil: the bare base model
	// recompute drops each layer's activations after its forward and recomputes them in its
	// backward (gradient checkpointing): only the layer inputs [N, H] stay alive.
	recompute bool
	live      liveBytes // activation bytes held by the arenas (memory.go)
}

// microBatch is one forward/backward unit, already on the backend.
type microBatch struct {
	B, T    int
	ids     *tensor.Tensor // I32 [B, T]
	pos     *tensor.Tensor // I32 [B, T]: positions 0..T−1 (right padding)
	targets *tensor.Tensor // I32 [N]: labels shifted left by one (HF), −100 where no loss
	seed    uint64         // dropout stream of this micro-batch
}

// doraForward turns out = x·Wᵀ into PEFT's DoRA output (bias excluded):
//
//	out = x·Wᵀ + (mscale−1)⊙(x_d·Wᵀ) + mscale⊙s·(x_d·Aᵀ)·Bᵀ
//
// with x_d the dropped-out input (x without dropout, when this is mscale⊙(x·Wᵀ + s·x·Aᵀ·Bᵀ)). It
// saves pre = x_d·Wᵀ + s·x_d·Aᵀ·Bᵀ for the magnitude's gradient.
func (g *graph) doraForward(ar *arena, dm *devModule, la *linActs, w frozen, out *tensor.Tensor) error {
	var err error
	if la.pre, err = ar.f32(out.Shape()...); err != nil {
		return err
	}
	if la.mask != nil {
		err = w.forward(g.b, la.pre, la.xm)
	} else {
		err = g.b.Copy(la.pre, out)
	}
	if err != nil {
		return err
	}
	if err := g.b.Add(out, out, la.pre, -1); err != nil { // x·Wᵀ − x_d·Wᵀ
		return err
	}
	if err := g.loraGemm(w, la.pre, la.xa, dm.B, false, true, dm.mod.Scale, 1); err != nil {
		return err
	}
	scaled, err := ar.f32(out.Shape()...)
	if err != nil {
		return err
	}
	if err := g.bw.MulCols(scaled, la.pre, dm.mscale); err != nil {
		return err
	}
	return g.b.Add(out, out, scaled, 1)
}

// linActs are the saved activations of one LoRA-adapted linear layer.
type linActs struct {
	xm   *tensor.Tensor // the LoRA branch input x⊙mask [N, in] (x itself without dropout)
	mask *tensor.Tensor // dropout mask [N, in] (values 0 or 1/(1−p)); nil without dropout
	xa   *tensor.Tensor // xm·Aᵀ [N, r]
	pre  *tensor.Tensor // DoRA: xm·Wᵀ + s·xa·Bᵀ [N, out] before the magnitude scaling; nil otherwise
}

// layerActs are the saved activations of one decoder layer.
type layerActs struct {
	xn, xn2       *tensor.Tensor // attention / MLP norm outputs [N, H] (xn2 nil unless an adapter on gate/up_proj keeps it)
	qPre, kPre    *tensor.Tensor // Qwen3: projections before the per-head norm; nil otherwise
	q, k, v       *tensor.Tensor // after norm and rotary: [B, T, Hq, D], [B, T, Hkv, D] ×2
	attn          *tensor.Tensor // attention output [B, T, Hq, D]
	lse           *tensor.Tensor // F32 [B, Hq, T]: the forward's log-sum-exp, given to AttentionBackward (nil: it recomputes)
	h2            *tensor.Tensor // residual after attention [N, H]
	gate, up, act *tensor.Tensor // MLP [N, I] (act nil unless an adapter on down_proj keeps it)
	lin           map[string]*linActs
	gemma         *gemmaActs // Gemma 3 only (gemma3.go)
}

// dropoutMask fills a mask for linear `name` of layer l in this micro-batch: deterministic in
// (seed, l, name), so a recomputed forward draws the same mask.
func dropoutMask(mask []float32, p float64, seed uint64, l int, name string) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", l, name)
	g := rand.New(rand.NewPCG(seed, h.Sum64()))
	keep := float32(1 / (1 - p))
	for i := range mask {
		if g.Float64() < p {
			mask[i] = 0
		} else {
			mask[i] = keep
		}
	}
}

// linear computes out [N, out] = x·Wᵀ (+ LoRA, DoRA scaling, bias) for linear `name` of layer l.
func (g *graph) linear(ar *arena, mb *microBatch, l int, name string, x, out *tensor.Tensor, acts *layerActs) error {
	ly := &g.base.Layers[l]
	w := ly.weight(name)
	if err := w.forward(g.b, out, x); err != nil {
		return fmt.Errorf("train: layer %d %s: %w", l, name, err)
	}
	if g.ad != nil {
		if dm := g.ad.mods[ModulePath(l, name)]; dm != nil {
			la := &linActs{xm: x}
			n := x.Rows()
			if p := g.ad.dropout; p > 0 {
				host := make([]float32, x.Numel())
				dropoutMask(host, p, mb.seed, l, name)
				mask, err := g.b.FromFloat32(tensor.F32, x.Shape(), host)
				if err != nil {
					return err
				}
				la.mask = ar.keep(mask)
				if la.xm, err = ar.f32(x.Shape()...); err != nil {
					return err
				}
				if err := g.b.Mul(la.xm, x, mask); err != nil {
					return err
				}
			}
			var err error
			if la.xa, err = ar.f32(n, dm.mod.R); err != nil {
				return err
			}
			if err := g.loraGemm(w, la.xa, la.xm, dm.A, false, true, 1, 0); err != nil {
				return fmt.Errorf("train: layer %d %s lora_A: %w", l, name, err)
			}
			if dm.mscale == nil {
				if err := g.loraGemm(w, out, la.xa, dm.B, false, true, dm.mod.Scale, 1); err != nil {
					return fmt.Errorf("train: layer %d %s lora_B: %w", l, name, err)
				}
			} else if err := g.doraForward(ar, dm, la, w, out); err != nil {
				return fmt.Errorf("train: layer %d %s DoRA: %w", l, name, err)
			}
			acts.lin[name] = la
		}
	}
	bias := ly.bias(name)
	if bias != nil {
		if err := g.b.AddBias(out, bias); err != nil {
			return fmt.Errorf("train: layer %d %s bias: %w", l, name, err)
		}
	}
	return nil
}

// attnParams are those of layer l: causal, scale 1/sqrt(D), the layer's sliding window. Batches
// are right-padded, so no key needs masking: real tokens never see the padding after them.
func (g *graph) attnParams(l int) tensor.AttentionParams {
	if gp := g.base.Gemma; gp != nil { // Gemma 3: query_pre_attn_scalar^-1/2
		return tensor.AttentionParams{Scale: gp.AttnScale, Window: g.base.Layers[l].Window}
	}
	return tensor.AttentionParams{Scale: float32(1 / math.Sqrt(float64(g.base.Arch.HeadDim))), Window: g.base.Layers[l].Window}
}

// layerForward runs decoder layer l on h [N, H] into hOut [N, H], saving activations in ar. A nil
// hOut (gradient checkpointing's recomputation) computes only what layerBackward reads: without an
// adapter on down_proj the MLP stops after gate/up (no SwiGLU, down_proj or residual add).
func (g *graph) layerForward(ar *arena, mb *microBatch, l int, h, hOut *tensor.Tensor) (*layerActs, error) {
	if g.base.Gemma != nil {
		return g.gemmaLayerForward(ar, mb, l, h, hOut)
	}
	a := g.base.Arch
	ly := &g.base.Layers[l]
	B, T, N := mb.B, mb.T, mb.B*mb.T
	acts := &layerActs{lin: map[string]*linActs{}}
	var err error
	alloc := func(shape ...int) *tensor.Tensor { // every tensor below is overwritten by the op that fills it
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = ar.out(shape...)
		return t
	}
	acts.xn = alloc(N, a.Hidden)
	q, k, v := alloc(B, T, a.Heads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim)
	acts.attn = alloc(B, T, a.Heads, a.HeadDim)
	acts.lse = alloc(B, a.Heads, T)
	acts.h2 = alloc(N, a.Hidden)
	acts.gate, acts.up = alloc(N, a.Intermediate), alloc(N, a.Intermediate)
	// xn2 (the MLP norm output) and act (silu(gate)⊙up) are read by the backward only through an
	// adapter's saved input (linActs.xm): without adapters on gate/up resp. down_proj they live in a
	// scratch arena freed when this forward returns (−N·(H+I) floats per layer kept), and the acts
	// field is nil.
	scratch := &arena{b: g.b, live: &g.live}
	defer scratch.free()
	keepIn := func(names ...string) func(shape ...int) *tensor.Tensor {
		for _, n := range names {
			if g.ad != nil && g.ad.mods[ModulePath(l, n)] != nil {
				return alloc
			}
		}
		return func(shape ...int) *tensor.Tensor {
			if err != nil {
				return nil
			}
			var t *tensor.Tensor
			t, err = scratch.out(shape...)
			return t
		}
	}
	xn2 := keepIn("gate_proj", "up_proj")(N, a.Hidden)
	if err != nil {
		return nil, err
	}
	if err := g.b.RMSNorm(acts.xn, h, ly.AttnNorm, a.Eps, false); err != nil {
		return nil, fmt.Errorf("train: layer %d input norm: %w", l, err)
	}
	for _, x := range []struct {
		name string
		out  *tensor.Tensor
	}{{"q_proj", q}, {"k_proj", k}, {"v_proj", v}} {
		if err := g.linear(ar, mb, l, x.name, acts.xn, x.out.MustView(N, -1), acts); err != nil {
			return nil, err
		}
	}
	acts.q, acts.k, acts.v = q, k, v
	if ly.QNorm != nil { // Qwen3: RMSNorm per head before rotary
		acts.qPre, acts.kPre = q, k
		acts.q, acts.k = alloc(q.Shape()...), alloc(k.Shape()...)
		if err != nil {
			return nil, err
		}
		if err := g.b.RMSNorm(acts.q.MustView(-1, a.HeadDim), q.MustView(-1, a.HeadDim), ly.QNorm, a.Eps, false); err != nil {
			return nil, fmt.Errorf("train: layer %d q_norm: %w", l, err)
		}
		if err := g.b.RMSNorm(acts.k.MustView(-1, a.HeadDim), k.MustView(-1, a.HeadDim), ly.KNorm, a.Eps, false); err != nil {
			return nil, fmt.Errorf("train: layer %d k_norm: %w", l, err)
		}
	}
	if err := g.b.Rope(acts.q, mb.pos, g.base.Cos, g.base.Sin); err != nil {
		return nil, fmt.Errorf("train: layer %d rope q: %w", l, err)
	}
	if err := g.b.Rope(acts.k, mb.pos, g.base.Cos, g.base.Sin); err != nil {
		return nil, fmt.Errorf("train: layer %d rope k: %w", l, err)
	}
	pa := g.attnParams(l)
	pa.LSE = acts.lse
	if err := g.b.Attention(acts.attn, acts.q, acts.k, acts.v, pa); err != nil {
		return nil, fmt.Errorf("train: layer %d attention: %w", l, err)
	}
	o := keepIn()(N, a.Hidden) // read by h2 = h + o only (adapters keep what they need, never o)
	if err != nil {
		return nil, err
	}
	if err := g.linear(ar, mb, l, "o_proj", acts.attn.MustView(N, -1), o, acts); err != nil {
		return nil, err
	}
	if err := g.b.Add(acts.h2, h, o, 1); err != nil {
		return nil, err
	}
	if err := g.b.RMSNorm(xn2, acts.h2, ly.MLPNorm, a.Eps, false); err != nil {
		return nil, fmt.Errorf("train: layer %d post-attention norm: %w", l, err)
	}
	if err := g.linear(ar, mb, l, "gate_proj", xn2, acts.gate, acts); err != nil {
		return nil, err
	}
	if err := g.linear(ar, mb, l, "up_proj", xn2, acts.up, acts); err != nil {
		return nil, err
	}
	if !scratch.owns(xn2) {
		acts.xn2 = xn2
	}
	if hOut == nil { // a recomputation: the layer output is not needed, only what the backward reads
		if g.ad == nil || g.ad.mods[ModulePath(l, "down_proj")] == nil {
			return acts, nil // act and down_proj's output are read by nothing
		}
		if hOut = alloc(N, a.Hidden); err != nil {
			return nil, err
		}
	}
	act := keepIn("down_proj")(N, a.Intermediate)
	if err != nil {
		return nil, err
	}
	if err := g.b.SwiGLU(act, acts.gate, acts.up); err != nil {
		return nil, err
	}
	if err := g.linear(ar, mb, l, "down_proj", act, hOut, acts); err != nil {
		return nil, err
	}
	if !scratch.owns(act) {
		acts.act = act
	}
	if err := g.b.Add(hOut, hOut, acts.h2, 1); err != nil {
		return nil, err
	}
	return acts, nil
}
