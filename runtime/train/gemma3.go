package train

import (
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// Gemma3Parts are what a Gemma 3 decoder adds to the Llama-shaped Base (nil on a Llama-family base).
// The training graph of a Gemma 3 layer is runtime/model.Gemma3's forward:
//
//	xn = norm(h, AttnNorm)                       q/k/v = linears(xn); q, k RMSNorm per head; RoPE
//	h2 = h + norm(o_proj(attn(q, k, v)), PostAttnNorm[l])   scores scaled by AttnScale, window per layer
//	out = h2 + norm(down(gelu_tanh(gate(xn2))·up(xn2)), PostFFNorm[l]),  xn2 = norm(h2, MLPNorm)
//
// with the embeddings multiplied by EmbedScale, every norm x·rsqrt(mean(x²)+eps)·w (or ·(1+w) when
// NormAddOne: HF checkpoints; GGUF files store 1+w), the local (sliding-window) layers rotating
// with CosLocal/SinLocal and the global ones with Base.Cos/Sin, and the LM head tied to Embed.
// The Base owns the local rotary tables (freed by Close); the norms are borrowed from the model.
type Gemma3Parts struct {
	Model              *model.Gemma3
	EmbedScale         float32 // sqrt(hidden) as float32
	AttnScale          float32 // query_pre_attn_scalar^-1/2
	NormAddOne         bool
	PostAttnNorm       []*tensor.Tensor // [H] per layer
	PostFFNorm         []*tensor.Tensor // [H] per layer
	Global             []bool           // per layer: full attention with the global rotary tables
	CosLocal, SinLocal *tensor.Tensor   // F32 [P, D/2]
	NegSinLocal        *tensor.Tensor   // −SinLocal
}

// NewGemma3Base wraps a loaded Gemma 3 model for training sequences of up to maxPositions tokens
// (0: 1024). The base borrows the model's weights (the model must outlive it); Close frees the
// rotary tables only. The adaptable linears and their PEFT paths are those of Gemma3ForCausalLM
// ("model.layers.N.self_attn.q_proj", "model.layers.N.mlp.gate_proj"), as for Llama.
func NewGemma3Base(m *model.Gemma3, maxPositions int) (*Base, error) {
	c := m.Config
	if maxPositions <= 0 {
		maxPositions = 1024
	}
	if c.FinalLogitSoftcap > 0 {
		return nil, fmt.Errorf("train: gemma3 %s: final logit soft-capping is not supported for training", m.Source)
	}
	if m.LMHead.Packed != nil || m.LMHead.Bias != nil {
		return nil, fmt.Errorf("train: gemma3 %s: a packed or biased LM head is not supported for training", m.Source)
	}
	base := &Base{Backend: m.Backend, Embed: m.Embed, FinalNorm: m.Norm, LMHead: m.LMHead.Weight,
		Arch: Arch{Hidden: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
			Intermediate: c.IntermediateSize, Vocab: c.VocabSize, Layers: c.NumLayers, Eps: float32(c.RMSNormEps)}}
	gp := &Gemma3Parts{Model: m, EmbedScale: float32(math.Sqrt(float64(c.HiddenSize))),
		AttnScale: float32(1 / math.Sqrt(c.QueryPreAttnScalar)), NormAddOne: c.NormAddOne}
	for _, ml := range m.Layers {
		ly := Layer{AttnNorm: ml.InputNorm, MLPNorm: ml.PreFFNorm, QNorm: ml.QNorm, KNorm: ml.KNorm, Window: ml.Window}
		for i, lin := range ml.Linears() {
			f, err := frozenOf(&model.Model{Source: m.Source}, lin)
			if err != nil {
				return nil, err
			}
			ly.W[i], ly.Packed[i], ly.Bias[i] = f.dense, f.packed, lin.Bias
		}
		base.Layers = append(base.Layers, ly)
		gp.PostAttnNorm = append(gp.PostAttnNorm, ml.PostAttnNorm)
		gp.PostFFNorm = append(gp.PostFFNorm, ml.PostFFNorm)
		gp.Global = append(gp.Global, ml.Global)
	}
	base.Gemma = gp
	var err error
	mk := func(v []float32) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = m.Backend.FromFloat32(tensor.F32, []int{maxPositions, c.HeadDim / 2}, v)
		return t
	}
	for _, x := range []struct {
		base, factor  float64
		cos, sin, neg **tensor.Tensor
	}{
		{c.RopeGlobal, c.RopeGlobalFactor, &base.Cos, &base.Sin, &base.NegSin},
		{c.RopeLocal, 1, &gp.CosLocal, &gp.SinLocal, &gp.NegSinLocal},
	} {
		cv, sv := gemma3Rope(x.base, x.factor, c.HeadDim, maxPositions)
		neg := make([]float32, len(sv))
		for i, v := range sv {
			neg[i] = -v
		}
		*x.cos, *x.sin, *x.neg = mk(cv), mk(sv), mk(neg)
	}
	if err != nil {
		base.Close()
		return nil, fmt.Errorf("train: gemma3 rope tables: %w", err)
	}
	return base, nil
}

// gemma3Rope computes the rotary tables [rows, hd/2] exactly as runtime/model.Gemma3 does
// (transformers: inv_freq in float32, angle = inv_freq·pos in float32).
func gemma3Rope(base, factor float64, hd, rows int) (cos, sin []float32) {
	half := hd / 2
	cos, sin = make([]float32, rows*half), make([]float32, rows*half)
	for i := 0; i < half; i++ {
		inv := float32(1 / math.Pow(base, float64(2*i)/float64(hd)) / factor)
		for p := 0; p < rows; p++ {
			a := inv * float32(p)
			cos[p*half+i] = float32(math.Cos(float64(a)))
			sin[p*half+i] = float32(math.Sin(float64(a)))
		}
	}
	return cos, sin
}

// closeGemma frees the Gemma rotary tables (called by Base.Close).
func (gp *Gemma3Parts) close() error {
	if gp == nil {
		return nil
	}
	err := tensor.FreeAll(gp.CosLocal, gp.SinLocal, gp.NegSinLocal)
	gp.CosLocal, gp.SinLocal, gp.NegSinLocal = nil, nil, nil
	return err
}

// gemmaRope returns the cos, sin and −sin tables of layer l.
func (g *graph) gemmaRope(l int) (cos, sin, neg *tensor.Tensor) {
	gp := g.base.Gemma
	if gp.Global[l] {
		return g.base.Cos, g.base.Sin, g.base.NegSin
	}
	return gp.CosLocal, gp.SinLocal, gp.NegSinLocal
}

// gemmaActs are the activations a Gemma 3 layer saves beyond layerActs.
type gemmaActs struct {
	oPre *tensor.Tensor // o_proj output before post_attention_layernorm [N, H]
	dPre *tensor.Tensor // down_proj output before post_feedforward_layernorm [N, H]
}

// gemmaLayerForward runs Gemma 3 decoder layer l on h [N, H] into hOut [N, H], saving activations.
func (g *graph) gemmaLayerForward(ar *arena, mb *microBatch, l int, h, hOut *tensor.Tensor) (*layerActs, error) {
	a := g.base.Arch
	gp := g.base.Gemma
	ly := &g.base.Layers[l]
	one := gp.NormAddOne
	B, T, N := mb.B, mb.T, mb.B*mb.T
	acts := &layerActs{lin: map[string]*linActs{}, gemma: &gemmaActs{}}
	var err error
	alloc := func(shape ...int) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = ar.f32(shape...)
		return t
	}
	acts.xn = alloc(N, a.Hidden)
	acts.qPre, acts.kPre = alloc(B, T, a.Heads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim)
	acts.q, acts.k = alloc(B, T, a.Heads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim)
	acts.v = alloc(B, T, a.KVHeads, a.HeadDim)
	acts.attn = alloc(B, T, a.Heads, a.HeadDim)
	acts.gemma.oPre, acts.gemma.dPre = alloc(N, a.Hidden), alloc(N, a.Hidden)
	acts.h2, acts.xn2 = alloc(N, a.Hidden), alloc(N, a.Hidden)
	acts.gate, acts.up, acts.act = alloc(N, a.Intermediate), alloc(N, a.Intermediate), alloc(N, a.Intermediate)
	normed := alloc(N, a.Hidden)
	if err != nil {
		return nil, err
	}
	if err := g.b.RMSNorm(acts.xn, h, ly.AttnNorm, a.Eps, one); err != nil {
		return nil, fmt.Errorf("train: layer %d input_layernorm: %w", l, err)
	}
	for _, x := range []struct {
		name string
		out  *tensor.Tensor
	}{{"q_proj", acts.qPre}, {"k_proj", acts.kPre}, {"v_proj", acts.v}} {
		if err := g.linear(ar, mb, l, x.name, acts.xn, x.out.MustView(N, -1), acts); err != nil {
			return nil, err
		}
	}
	if err := g.b.RMSNorm(acts.q.MustView(-1, a.HeadDim), acts.qPre.MustView(-1, a.HeadDim), ly.QNorm, a.Eps, one); err != nil {
		return nil, fmt.Errorf("train: layer %d q_norm: %w", l, err)
	}
	if err := g.b.RMSNorm(acts.k.MustView(-1, a.HeadDim), acts.kPre.MustView(-1, a.HeadDim), ly.KNorm, a.Eps, one); err != nil {
		return nil, fmt.Errorf("train: layer %d k_norm: %w", l, err)
	}
	cos, sin, _ := g.gemmaRope(l)
	if err := g.b.Rope(acts.q, mb.pos, cos, sin); err != nil {
		return nil, fmt.Errorf("train: layer %d rope q: %w", l, err)
	}
	if err := g.b.Rope(acts.k, mb.pos, cos, sin); err != nil {
		return nil, fmt.Errorf("train: layer %d rope k: %w", l, err)
	}
	if err := g.b.Attention(acts.attn, acts.q, acts.k, acts.v, g.attnParams(l)); err != nil {
		return nil, fmt.Errorf("train: layer %d attention: %w", l, err)
	}
	if err := g.linear(ar, mb, l, "o_proj", acts.attn.MustView(N, -1), acts.gemma.oPre, acts); err != nil {
		return nil, err
	}
	if err := g.b.RMSNorm(normed, acts.gemma.oPre, gp.PostAttnNorm[l], a.Eps, one); err != nil {
		return nil, fmt.Errorf("train: layer %d post_attention_layernorm: %w", l, err)
	}
	if err := g.b.Add(acts.h2, h, normed, 1); err != nil {
		return nil, err
	}
	if err := g.b.RMSNorm(acts.xn2, acts.h2, ly.MLPNorm, a.Eps, one); err != nil {
		return nil, fmt.Errorf("train: layer %d pre_feedforward_layernorm: %w", l, err)
	}
	if err := g.linear(ar, mb, l, "gate_proj", acts.xn2, acts.gate, acts); err != nil {
		return nil, err
	}
	if err := g.linear(ar, mb, l, "up_proj", acts.xn2, acts.up, acts); err != nil {
		return nil, err
	}
	if err := GeGLU(g.b, acts.act, acts.gate, acts.up); err != nil {
		return nil, fmt.Errorf("train: layer %d geglu: %w", l, err)
	}
	if err := g.linear(ar, mb, l, "down_proj", acts.act, acts.gemma.dPre, acts); err != nil {
		return nil, err
	}
	if err := g.b.RMSNorm(normed, acts.gemma.dPre, gp.PostFFNorm[l], a.Eps, one); err != nil {
		return nil, fmt.Errorf("train: layer %d post_feedforward_layernorm: %w", l, err)
	}
	return acts, g.b.Add(hOut, acts.h2, normed, 1)
}

// gemmaLayerBackward takes dOut = ∂L/∂(layer output) [N, H] and writes ∂L/∂(layer input) into dh.
func (g *graph) gemmaLayerBackward(ar *arena, mb *microBatch, l int, h *tensor.Tensor, acts *layerActs, dOut, dh *tensor.Tensor) error {
	a := g.base.Arch
	gp := g.base.Gemma
	ly := &g.base.Layers[l]
	one := gp.NormAddOne
	B, T, N := mb.B, mb.T, mb.B*mb.T
	var err error
	alloc := func(shape ...int) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = ar.f32(shape...)
		return t
	}
	dpre := alloc(N, a.Hidden)
	dact, dgate, dup := alloc(N, a.Intermediate), alloc(N, a.Intermediate), alloc(N, a.Intermediate)
	dxn2, dh2 := alloc(N, a.Hidden), alloc(N, a.Hidden)
	dattn := alloc(B, T, a.Heads, a.HeadDim)
	dq, dk, dv := alloc(B, T, a.Heads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim)
	dqp, dkp := alloc(B, T, a.Heads, a.HeadDim), alloc(B, T, a.KVHeads, a.HeadDim)
	dxn := alloc(N, a.Hidden)
	if err != nil {
		return err
	}
	// MLP: out = h2 + norm(down(gelu_tanh(gate(xn2))·up(xn2)), post_ff), xn2 = norm(h2, pre_ff)
	if err := g.bw.RMSNormBackward(dpre, dOut, acts.gemma.dPre, gp.PostFFNorm[l], a.Eps, one); err != nil {
		return fmt.Errorf("train: layer %d post_feedforward_layernorm backward: %w", l, err)
	}
	if err := g.linearBackward(ar, l, "down_proj", dpre, acts.act, dact, acts, false); err != nil {
		return err
	}
	if err := GeGLUBackward(g.b, dgate, dup, dact, acts.gate, acts.up); err != nil {
		return fmt.Errorf("train: layer %d geglu backward: %w", l, err)
	}
	if err := g.linearBackward(ar, l, "gate_proj", dgate, acts.xn2, dxn2, acts, false); err != nil {
		return err
	}
	if err := g.linearBackward(ar, l, "up_proj", dup, acts.xn2, dxn2, acts, true); err != nil {
		return err
	}
	if err := g.bw.RMSNormBackward(dh2, dxn2, acts.h2, ly.MLPNorm, a.Eps, one); err != nil {
		return fmt.Errorf("train: layer %d pre_feedforward_layernorm backward: %w", l, err)
	}
	if err := g.b.Add(dh2, dh2, dOut, 1); err != nil {
		return err
	}
	// attention: h2 = h + norm(o(attn(rope(qn(q(xn))), rope(kn(k(xn))), v(xn))), post_attn)
	if err := g.bw.RMSNormBackward(dpre, dh2, acts.gemma.oPre, gp.PostAttnNorm[l], a.Eps, one); err != nil {
		return fmt.Errorf("train: layer %d post_attention_layernorm backward: %w", l, err)
	}
	if err := g.linearBackward(ar, l, "o_proj", dpre, acts.attn.MustView(N, -1), dattn.MustView(N, -1), acts, false); err != nil {
		return err
	}
	if err := g.bw.AttentionBackward(dq, dk, dv, dattn, acts.q, acts.k, acts.v, acts.attn, g.attnParams(l)); err != nil {
		return fmt.Errorf("train: layer %d attention backward: %w", l, err)
	}
	cos, _, neg := g.gemmaRope(l)
	if err := g.b.Rope(dq, mb.pos, cos, neg); err != nil {
		return fmt.Errorf("train: layer %d rope backward: %w", l, err)
	}
	if err := g.b.Rope(dk, mb.pos, cos, neg); err != nil {
		return fmt.Errorf("train: layer %d rope backward: %w", l, err)
	}
	if err := g.bw.RMSNormBackward(dqp.MustView(-1, a.HeadDim), dq.MustView(-1, a.HeadDim), acts.qPre.MustView(-1, a.HeadDim), ly.QNorm, a.Eps, one); err != nil {
		return fmt.Errorf("train: layer %d q_norm backward: %w", l, err)
	}
	if err := g.bw.RMSNormBackward(dkp.MustView(-1, a.HeadDim), dk.MustView(-1, a.HeadDim), acts.kPre.MustView(-1, a.HeadDim), ly.KNorm, a.Eps, one); err != nil {
		return fmt.Errorf("train: layer %d k_norm backward: %w", l, err)
	}
	for i, x := range []struct {
		name string
		d    *tensor.Tensor
	}{{"q_proj", dqp}, {"k_proj", dkp}, {"v_proj", dv}} {
		if err := g.linearBackward(ar, l, x.name, x.d.MustView(N, -1), acts.xn, dxn, acts, i > 0); err != nil {
			return err
		}
	}
	if err := g.bw.RMSNormBackward(dh, dxn, h, ly.AttnNorm, a.Eps, one); err != nil {
		return fmt.Errorf("train: layer %d input_layernorm backward: %w", l, err)
	}
	return g.b.Add(dh, dh, dh2, 1)
}

// gemma3Memory is ModelMemory for a Gemma 3 model (tied head counted with the embeddings).
func gemma3Memory(m *model.Gemma3) Memory {
	r := Memory{Backend: m.Backend.Name(), Embeddings: m.Embed.Bytes(), Norms: m.Norm.Bytes()}
	for _, l := range m.Layers {
		for _, n := range []*tensor.Tensor{l.InputNorm, l.PostAttnNorm, l.PreFFNorm, l.PostFFNorm, l.QNorm, l.KNorm} {
			r.Norms += n.Bytes()
		}
		for _, p := range l.Linears() {
			if p.Packed != nil {
				r.QuantizedLinears += p.Bytes()
				r.QuantizedCount++
			} else {
				r.DenseLinears += p.Bytes()
			}
		}
	}
	return r
}
