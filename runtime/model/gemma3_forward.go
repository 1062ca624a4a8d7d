package model

import (
	"context"
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// Forward runs Gemma 3 on in, appending to cache when non-nil, and returns logits F32 [B, T, V]
// (caller frees). Padding and cache rules are those of Model.Forward.
func (m *Gemma3) Forward(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error) {
	h, err := m.Hidden(ctx, in, cache)
	if err != nil {
		return nil, err
	}
	defer h.Free()
	return m.Logits(h)
}

// LastLogits is Forward keeping each sequence's last position: logits F32 [B, V] (caller frees).
func (m *Gemma3) LastLogits(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error) {
	h, err := m.Hidden(ctx, in, cache)
	if err != nil {
		return nil, err
	}
	defer h.Free()
	return lastPositionLogits(m.Backend, h, m.Logits)
}

// Logits applies the tied LM head (and the final soft-cap, if configured) to h [.., D]: F32 [.., V].
func (m *Gemma3) Logits(h *tensor.Tensor) (*tensor.Tensor, error) {
	shape := h.Shape()
	shape[len(shape)-1] = m.Config.VocabSize
	out, err := m.Backend.Alloc(tensor.F32, shape...)
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	if err := m.LMHead.Forward(m.Backend, h, out); err != nil {
		out.Free()
		return nil, fmt.Errorf("logits: %w", err)
	}
	if capv := m.Config.FinalLogitSoftcap; capv > 0 {
		if err := m.hostMap(out, func(x float64) float64 { return capv * math.Tanh(x/capv) }); err != nil {
			out.Free()
			return nil, fmt.Errorf("logit softcap: %w", err)
		}
	}
	return out, nil
}

// Hidden runs the scaled embedding, every layer and the final norm: F32 [B, T, D] (caller frees).
func (m *Gemma3) Hidden(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed {
		return nil, fmt.Errorf("forward: model %s was freed", m.Source)
	}
	c, be := m.Config, m.Backend
	st, err := m.newStep(in, cache)
	if err != nil {
		return nil, err
	}
	defer st.free()
	if len(in.IDs) == 0 || in.B <= 0 || len(in.IDs)%in.B != 0 {
		return nil, fmt.Errorf("forward: %d ids for %d sequences", len(in.IDs), in.B)
	}
	idt, err := be.FromInt32([]int{st.B, st.T}, in.IDs)
	if err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	defer idt.Free()
	x, err := be.Alloc(tensor.F32, st.B, st.T, c.HiddenSize)
	if err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	fail := func(e error) (*tensor.Tensor, error) { x.Free(); return nil, e }
	if err := be.Embedding(x, m.Embed, idt); err != nil {
		return fail(fmt.Errorf("embedding: %w", err))
	}
	if err := be.Scale(x, x, float32(math.Sqrt(float64(c.HiddenSize)))); err != nil {
		return fail(fmt.Errorf("embedding scale: %w", err))
	}
	for _, l := range m.Layers {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := m.layerForward(st, l, x); err != nil {
			return fail(fmt.Errorf("forward layer %d: %w", l.Index, err))
		}
	}
	if err := be.RMSNorm(x, x, m.Norm, float32(c.RMSNormEps), c.NormAddOne); err != nil {
		return fail(fmt.Errorf("forward final norm: %w", err))
	}
	if cache != nil {
		cache.Len += st.T
	}
	return x, nil
}

// newStep validates the input against the cache, computes positions and allocates scratch (the
// step type of the Llama path is reused; its cos/sin fields stay unused).
func (m *Gemma3) newStep(in Input, cache *Cache) (*step, error) {
	c := m.Config
	checkCache := func(cache *Cache) error {
		if cache.B != in.B || len(cache.K) != c.NumLayers {
			return fmt.Errorf("forward: cache for %d sequences and %d layers, input has %d sequences", cache.B, len(cache.K), in.B)
		}
		return nil
	}
	dims := stepDims{Hidden: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim, Inter: c.IntermediateSize}
	return setupStep(m.Backend, dims, in, cache, checkCache, m.ensureRope)
}

// layerForward updates the residual stream x [B, T, D] in place through layer l.
func (m *Gemma3) layerForward(st *step, l *Gemma3Layer, x *tensor.Tensor) error {
	c, be := m.Config, m.Backend
	eps, one := float32(c.RMSNormEps), c.NormAddOne
	B, T := st.B, st.T
	if err := be.RMSNorm(st.h, x, l.InputNorm, eps, one); err != nil {
		return fmt.Errorf("input_layernorm: %w", err)
	}
	for _, p := range []struct {
		lin *Linear
		out *tensor.Tensor
	}{
		{l.Q, st.q.MustView(B, T, c.NumHeads*c.HeadDim)},
		{l.K, st.k.MustView(B, T, c.NumKVHeads*c.HeadDim)},
		{l.V, st.v.MustView(B, T, c.NumKVHeads*c.HeadDim)},
	} {
		if err := p.lin.Forward(be, st.h, p.out); err != nil {
			return err
		}
	}
	if err := be.RMSNorm(st.q, st.q, l.QNorm, eps, one); err != nil {
		return fmt.Errorf("q_norm: %w", err)
	}
	if err := be.RMSNorm(st.k, st.k, l.KNorm, eps, one); err != nil {
		return fmt.Errorf("k_norm: %w", err)
	}
	cos, sin := m.cosL, m.sinL
	if l.Global {
		cos, sin = m.cosG, m.sinG
	}
	if err := be.Rope(st.q, st.pos, cos, sin); err != nil {
		return fmt.Errorf("rope q: %w", err)
	}
	if err := be.Rope(st.k, st.pos, cos, sin); err != nil {
		return fmt.Errorf("rope k: %w", err)
	}
	p := tensor.AttentionParams{
		Scale:    float32(1 / math.Sqrt(c.QueryPreAttnScalar)),
		QStart:   st.qStart,
		KeyStart: st.keyStart,
		Window:   l.Window,
	}
	k, v := st.k, st.v
	if st.cache != nil {
		ck, cv := st.cache.K[l.Index], st.cache.V[l.Index]
		if err := be.SetSlice(ck, st.k, 1, st.qStart); err != nil {
			return fmt.Errorf("cache k: %w", err)
		}
		if err := be.SetSlice(cv, st.v, 1, st.qStart); err != nil {
			return fmt.Errorf("cache v: %w", err)
		}
		k, v = ck, cv
		p.KVLen = st.qStart + T
	}
	if err := be.Attention(st.att, st.q, k, v, p); err != nil {
		return fmt.Errorf("attention: %w", err)
	}
	if err := l.O.Forward(be, st.att.MustView(B, T, c.NumHeads*c.HeadDim), st.o); err != nil {
		return err
	}
	if err := be.RMSNorm(st.o, st.o, l.PostAttnNorm, eps, one); err != nil {
		return fmt.Errorf("post_attention_layernorm: %w", err)
	}
	if err := be.Add(x, x, st.o, 1); err != nil {
		return fmt.Errorf("residual: %w", err)
	}
	if err := be.RMSNorm(st.h, x, l.PreFFNorm, eps, one); err != nil {
		return fmt.Errorf("pre_feedforward_layernorm: %w", err)
	}
	if err := l.Gate.Forward(be, st.h, st.gate); err != nil {
		return err
	}
	if err := l.Up.Forward(be, st.h, st.up); err != nil {
		return err
	}
	if err := m.geglu(st.gate, st.up); err != nil {
		return fmt.Errorf("geglu: %w", err)
	}
	if err := l.Down.Forward(be, st.gate, st.o); err != nil {
		return err
	}
	if err := be.RMSNorm(st.o, st.o, l.PostFFNorm, eps, one); err != nil {
		return fmt.Errorf("post_feedforward_layernorm: %w", err)
	}
	if err := be.Add(x, x, st.o, 1); err != nil {
		return fmt.Errorf("residual: %w", err)
	}
	return nil
}

// GeluTanh is the tanh approximation of GELU (transformers' gelu_pytorch_tanh):
// 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
func GeluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// geglu sets gate = gelu_tanh(gate)·up, with the backend's GeGLU when it has one, else on the host.
func (m *Gemma3) geglu(gate, up *tensor.Tensor) error {
	if g, ok := m.Backend.(gegluBackend); ok {
		return g.GeGLU(gate, gate, up)
	}
	gv, err := m.Backend.ToFloat32(gate)
	if err != nil {
		return err
	}
	uv, err := m.Backend.ToFloat32(up)
	if err != nil {
		return err
	}
	for i := range gv {
		gv[i] = float32(GeluTanh(float64(gv[i]))) * uv[i]
	}
	return m.upload(gate, gv)
}

// hostMap applies f to every element of t through the host.
func (m *Gemma3) hostMap(t *tensor.Tensor, f func(float64) float64) error {
	v, err := m.Backend.ToFloat32(t)
	if err != nil {
		return err
	}
	for i := range v {
		v[i] = float32(f(float64(v[i])))
	}
	return m.upload(t, v)
}

// upload overwrites F32 tensor dst with v.
func (m *Gemma3) upload(dst *tensor.Tensor, v []float32) error {
	tmp, err := m.Backend.FromFloat32(tensor.F32, dst.Shape(), v)
	if err != nil {
		return err
	}
	defer tmp.Free()
	return m.Backend.Copy(dst, tmp)
}
