package model

import (
	"context"
	"fmt"
	"math"

	"github.com/finlora/finlora/runtime/tensor"
)

// Input is the tokens of one forward call: B sequences of T tokens each.
type Input struct {
	IDs []int32 // [B·T] row-major token ids
	B   int     // sequences; T = len(IDs)/B
	// Pad is, per sequence, the number of left-padding tokens at the start of its row (their ids are
	// ignored: use any valid id, e.g. the pad or EOS id). Only the first call on a cache (Len 0), or a
	// call without a cache, may set it; nil means no padding.
	Pad []int
}

// T is the tokens per sequence.
func (in Input) T() int {
	if in.B <= 0 {
		return 0
	}
	return len(in.IDs) / in.B
}

// Forward runs the decoder on in, appending to cache when non-nil (nil: a plain full-sequence pass),
// and returns logits F32 [B, T, V], which the caller frees.
func (m *Model) Forward(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error) {
	h, err := m.Hidden(ctx, in, cache)
	if err != nil {
		return nil, err
	}
	defer h.Free()
	return m.Logits(h)
}

// LastLogits is Forward keeping only each sequence's last position: logits F32 [B, V] (caller frees).
// This is the step of generation; the LM head runs on B rows instead of B·T.
func (m *Model) LastLogits(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error) {
	h, err := m.Hidden(ctx, in, cache)
	if err != nil {
		return nil, err
	}
	defer h.Free()
	return lastPositionLogits(m.Backend, h, m.Logits)
}

// lastPositionLogits applies logits (an LM head) to the last position of each sequence of the
// hidden states h F32 [B, T, D] and returns F32 [B, V], which the caller frees; h stays the
// caller's. Model and Gemma3 share it.
func lastPositionLogits(b tensor.Backend, h *tensor.Tensor, logits func(*tensor.Tensor) (*tensor.Tensor, error)) (*tensor.Tensor, error) {
	B, T, D := h.Dim(0), h.Dim(1), h.Dim(2)
	last, err := b.Alloc(tensor.F32, B, 1, D)
	if err != nil {
		return nil, err
	}
	defer last.Free()
	if err := b.Slice(last, h, 1, T-1); err != nil {
		return nil, err
	}
	return logits(last.MustView(B, D))
}

// Logits applies the LM head to final hidden states h [.., D]: logits F32 [.., V] (caller frees).
func (m *Model) Logits(h *tensor.Tensor) (*tensor.Tensor, error) {
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
	return out, nil
}

// Hidden runs embedding, every layer and the final norm: hidden states F32 [B, T, D] (caller
// frees). With a cache, the tokens are placed at slots [cache.Len, cache.Len+T) and cache.Len
// advances by T on success. ctx is checked between layers.
func (m *Model) Hidden(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed {
		return nil, fmt.Errorf("forward: model %s was freed", m.Source)
	}
	st, err := m.newStep(in, cache)
	if err != nil {
		return nil, err
	}
	defer st.free()
	x, err := m.Embedding(in.IDs, in.B)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if err := ctx.Err(); err != nil {
			x.Free()
			return nil, err
		}
		if err := m.layerForward(st, l, x); err != nil {
			x.Free()
			return nil, fmt.Errorf("forward layer %d: %w", l.Index, err)
		}
	}
	if err := m.Backend.RMSNorm(x, x, m.Norm, float32(m.Config.RMSNormEps), false); err != nil {
		x.Free()
		return nil, fmt.Errorf("forward final norm: %w", err)
	}
	if cache != nil {
		cache.Len += st.T
	}
	return x, nil
}

// Embedding looks up ids ([B·T] row-major) and returns F32 [B, T, D] (caller frees).
func (m *Model) Embedding(ids []int32, B int) (*tensor.Tensor, error) {
	if B <= 0 || len(ids) == 0 || len(ids)%B != 0 {
		return nil, fmt.Errorf("embedding: %d ids for %d sequences", len(ids), B)
	}
	T := len(ids) / B
	idt, err := m.Backend.FromInt32([]int{B, T}, ids)
	if err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	defer idt.Free()
	x, err := m.Backend.Alloc(tensor.F32, B, T, m.Config.HiddenSize)
	if err != nil {
		return nil, fmt.Errorf("embedding: %w", err)
	}
	if err := m.Backend.Embedding(x, m.Embed, idt); err != nil {
		x.Free()
		return nil, fmt.Errorf("embedding: %w", err)
	}
	return x, nil
}

// step holds the per-call state and scratch tensors of one forward pass.
type step struct {
	B, T     int
	cache    *Cache
	keyStart []int
	qStart   int
	pos      *tensor.Tensor // I32 [B, T]
	cos, sin *tensor.Tensor
	h        *tensor.Tensor // [B, T, D] normed input
	q, att   *tensor.Tensor // [B, T, Hq, HD]
	k, v     *tensor.Tensor // [B, T, Hkv, HD]
	o        *tensor.Tensor // [B, T, D]
	gate, up *tensor.Tensor // [B, T, I]
	scratch  []*tensor.Tensor
}

func (s *step) free() { tensor.FreeAll(s.scratch...) }

// newStep validates the input against the cache, computes positions, makes the rope tables cover
// them and allocates scratch (see setupStep).
func (m *Model) newStep(in Input, cache *Cache) (*step, error) {
	c := m.Config
	checkCache := func(cache *Cache) error {
		if cache.B != in.B {
			return fmt.Errorf("forward: cache for %d sequences, input has %d", cache.B, in.B)
		}
		if cache.K == nil {
			return fmt.Errorf("forward: cache was freed")
		}
		return nil
	}
	dims := stepDims{Hidden: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim, Inter: c.IntermediateSize}
	st, err := setupStep(m.Backend, dims, in, cache, checkCache, m.ensureRope)
	if err != nil {
		return nil, err
	}
	st.cos, st.sin = m.ropeCos, m.ropeSin
	return st, nil
}

// stepDims are the model sizes that shape a step's scratch tensors.
type stepDims struct {
	Hidden, Heads, KVHeads, HeadDim, Inter int
}

// setupStep is the step setup shared by the Llama and Gemma 3 forwards: it validates in (ids, padding)
// and, when cache is non-nil, checks it with checkCache (the model's own rules) and against its
// capacity, takes the key starts and query start from it, computes the positions, calls ensureRope
// with the number of positions needed, and allocates the scratch tensors on be.
func setupStep(be tensor.Backend, d stepDims, in Input, cache *Cache, checkCache func(*Cache) error, ensureRope func(n int) error) (*step, error) {
	if in.B <= 0 || len(in.IDs) == 0 || len(in.IDs)%in.B != 0 {
		return nil, fmt.Errorf("forward: %d ids for %d sequences", len(in.IDs), in.B)
	}
	st := &step{B: in.B, T: len(in.IDs) / in.B, cache: cache}
	if in.Pad != nil && len(in.Pad) != in.B {
		return nil, fmt.Errorf("forward: %d padding counts for %d sequences", len(in.Pad), in.B)
	}
	for b, p := range in.Pad {
		if p < 0 || p >= st.T {
			return nil, fmt.Errorf("forward: sequence %d has %d padding tokens of %d", b, p, st.T)
		}
	}
	if cache != nil {
		if err := checkCache(cache); err != nil {
			return nil, err
		}
		if cache.Len+st.T > cache.Capacity {
			return nil, fmt.Errorf("forward: %d tokens after %d exceed the cache capacity %d", st.T, cache.Len, cache.Capacity)
		}
		if in.Pad != nil {
			if cache.Len != 0 {
				return nil, fmt.Errorf("forward: padding given after %d cached tokens (only the first call pads)", cache.Len)
			}
			copy(cache.KeyStart, in.Pad)
		}
		st.keyStart, st.qStart = cache.KeyStart, cache.Len
	} else {
		st.keyStart = in.Pad
	}
	pos := make([]int32, st.B*st.T)
	maxPos := 0
	for b := 0; b < st.B; b++ {
		ks := 0
		if st.keyStart != nil {
			ks = st.keyStart[b]
		}
		for t := 0; t < st.T; t++ {
			p := max(0, st.qStart+t-ks)
			pos[b*st.T+t] = int32(p)
			maxPos = max(maxPos, p)
		}
	}
	if err := ensureRope(maxPos + 1); err != nil {
		return nil, err
	}
	var err error
	alloc := func(shape ...int) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		if t, err = be.Alloc(tensor.F32, shape...); err == nil {
			st.scratch = append(st.scratch, t)
		}
		return t
	}
	B, T := st.B, st.T
	st.h = alloc(B, T, d.Hidden)
	st.q = alloc(B, T, d.Heads, d.HeadDim)
	st.att = alloc(B, T, d.Heads, d.HeadDim)
	st.k = alloc(B, T, d.KVHeads, d.HeadDim)
	st.v = alloc(B, T, d.KVHeads, d.HeadDim)
	st.o = alloc(B, T, d.Hidden)
	st.gate = alloc(B, T, d.Inter)
	st.up = alloc(B, T, d.Inter)
	if err == nil {
		if st.pos, err = be.FromInt32([]int{B, T}, pos); err == nil {
			st.scratch = append(st.scratch, st.pos)
		}
	}
	if err != nil {
		st.free()
		return nil, fmt.Errorf("forward: scratch: %w", err)
	}
	return st, nil
}

// layerForward updates the residual stream x [B, T, D] in place through layer l.
func (m *Model) layerForward(st *step, l *Layer, x *tensor.Tensor) error {
	c, be := m.Config, m.Backend
	eps := float32(c.RMSNormEps)
	B, T := st.B, st.T
	qf := st.q.MustView(B, T, c.NumHeads*c.HeadDim)
	kf := st.k.MustView(B, T, c.NumKVHeads*c.HeadDim)
	vf := st.v.MustView(B, T, c.NumKVHeads*c.HeadDim)
	if err := projectQKV(be, l, x, st.h, &tensor.RMSNormSpec{W: l.InputNorm, Eps: eps}, qf, kf, vf); err != nil {
		return err
	}
	if l.QNorm != nil {
		if err := be.RMSNorm(st.q, st.q, l.QNorm, eps, false); err != nil {
			return fmt.Errorf("q_norm: %w", err)
		}
		if err := be.RMSNorm(st.k, st.k, l.KNorm, eps, false); err != nil {
			return fmt.Errorf("k_norm: %w", err)
		}
	}
	p := tensor.AttentionParams{
		Scale:    float32(1 / math.Sqrt(float64(c.HeadDim))),
		QStart:   st.qStart,
		KeyStart: st.keyStart,
		Window:   l.Window,
	}
	k, v := st.k, st.v
	if st.cache != nil {
		ck, cv := st.cache.K[l.Index], st.cache.V[l.Index]
		if err := ropeAndCache(be, st, ck, cv); err != nil {
			return err
		}
		k, v = ck, cv // st.k is not read again in this layer
		p.KVLen = st.qStart + T
	} else {
		if err := be.Rope(st.q, st.pos, st.cos, st.sin); err != nil {
			return fmt.Errorf("rope q: %w", err)
		}
		if err := be.Rope(st.k, st.pos, st.cos, st.sin); err != nil {
			return fmt.Errorf("rope k: %w", err)
		}
	}
	if err := be.Attention(st.att, st.q, k, v, p); err != nil {
		return fmt.Errorf("attention: %w", err)
	}
	// x += o_proj(att): the residual add rides on the product (Linear.ForwardAdd); st.o is the
	// scratch of the fallback path.
	if err := l.O.forwardAdd(be, st.att.MustView(B, T, c.NumHeads*c.HeadDim), x, st.o); err != nil {
		return fmt.Errorf("residual: %w", err)
	}
	if err := gateUp(be, l, x, st.h, &tensor.RMSNormSpec{W: l.PostAttnNorm, Eps: eps}, st.gate, st.up); err != nil {
		return err
	}
	if err := l.Down.forwardAdd(be, st.gate, x, st.o); err != nil { // x += down_proj(...)
		return fmt.Errorf("residual: %w", err)
	}
	return nil
}

// projectQKV sets q, k, v = h·Wᵀ (+ bias, + adapter delta) for the layer's three projections, with
// h = RMSNorm(x) by norm (input_layernorm; h is the caller's scratch). When all three weights are
// quantized (QuantizedWeight) and the backend has tensor.QuantSharedXer, the three base products
// are one op (on the GPU one launch for a decode row) — with the norm folded in too when no
// projection has an adapter (which reads h) — then each Linear's bias and adapter follow as in
// Linear.Forward; otherwise, or when the backend declines, the norm and three Forwards.
func projectQKV(be tensor.Backend, l *Layer, x, h *tensor.Tensor, norm *tensor.RMSNormSpec, q, k, v *tensor.Tensor) error {
	lins, outs := []*Linear{l.Q, l.K, l.V}, []*tensor.Tensor{q, k, v}
	sx, ok := be.(tensor.QuantSharedXer)
	var ws []*tensor.QTensor
	adapters := false
	for _, lin := range lins {
		if qw, isQ := lin.Packed.(QuantizedWeight); isQ {
			ws = append(ws, qw.QWeight())
		}
		adapters = adapters || lin.Adapter != nil
	}
	ok = ok && len(ws) == len(lins)
	finish := func(in *tensor.Tensor) error {
		for i, lin := range lins {
			if err := lin.afterProduct(be, in, outs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if ok && !adapters {
		done, err := sx.QuantMatMulSharedX(outs, x, ws, norm)
		if err != nil {
			return fmt.Errorf("%s, %s, %s: normalized shared-input products: %w", l.Q.Name, l.K.Name, l.V.Name, err)
		}
		if done {
			return finish(nil) // no adapter reads the input
		}
	}
	if err := be.RMSNorm(h, x, norm.W, norm.Eps, norm.AddOne); err != nil {
		return fmt.Errorf("input_layernorm: %w", err)
	}
	if ok {
		done, err := sx.QuantMatMulSharedX(outs, h, ws, nil)
		if err != nil {
			return fmt.Errorf("%s, %s, %s: shared-input products: %w", l.Q.Name, l.K.Name, l.V.Name, err)
		}
		if done {
			return finish(h)
		}
	}
	for i, lin := range lins {
		if err := lin.Forward(be, h, outs[i]); err != nil {
			return err
		}
	}
	return nil
}

// gateUp sets gate = silu(h·Gateᵀ) ⊙ (h·Upᵀ), the first half of the SwiGLU MLP, with
// h = RMSNorm(x) by norm (post_attention_layernorm; h and up are the caller's scratch). When both
// weights are quantized (QuantizedWeight) without bias or adapter and the backend has
// tensor.QuantSwiGLUer, that is one op with the norm folded in (on the GPU one launch for a decode
// row); otherwise, or when the backend declines, the norm, the two products and SwiGLU.
func gateUp(be tensor.Backend, l *Layer, x, h *tensor.Tensor, norm *tensor.RMSNormSpec, gate, up *tensor.Tensor) error {
	if fs, ok := be.(tensor.QuantSwiGLUer); ok && l.Gate.Bias == nil && l.Up.Bias == nil && l.Gate.Adapter == nil && l.Up.Adapter == nil {
		gq, gok := l.Gate.Packed.(QuantizedWeight)
		uq, uok := l.Up.Packed.(QuantizedWeight)
		if gok && uok {
			done, err := fs.QuantSwiGLU(gate, x, gq.QWeight(), uq.QWeight(), norm)
			if err != nil {
				return fmt.Errorf("%s, %s: fused norm and swiglu: %w", l.Gate.Name, l.Up.Name, err)
			}
			if done {
				return nil
			}
		}
	}
	if err := be.RMSNorm(h, x, norm.W, norm.Eps, norm.AddOne); err != nil {
		return fmt.Errorf("post_attention_layernorm: %w", err)
	}
	if err := l.Gate.Forward(be, h, gate); err != nil {
		return err
	}
	if err := l.Up.Forward(be, h, up); err != nil {
		return err
	}
	if err := be.SwiGLU(gate, gate, up); err != nil {
		return fmt.Errorf("swiglu: %w", err)
	}
	return nil
}

// ropeAndCache rotates st.q and st.k by the step's positions and writes the rotated keys and the
// values st.v into the layer's cache ck, cv at slots st.qStart..: one op on a backend with
// tensor.RopeCacher (one launch on the GPU), else Rope, Rope and two SetSlices, the same values.
func ropeAndCache(be tensor.Backend, st *step, ck, cv *tensor.Tensor) error {
	if rc, ok := be.(tensor.RopeCacher); ok {
		if err := rc.RopeQKCache(st.q, st.k, st.v, st.pos, st.cos, st.sin, ck, cv, st.qStart); err != nil {
			return fmt.Errorf("rope q, k and cache: %w", err)
		}
		return nil
	}
	if err := be.Rope(st.q, st.pos, st.cos, st.sin); err != nil {
		return fmt.Errorf("rope q: %w", err)
	}
	if err := be.Rope(st.k, st.pos, st.cos, st.sin); err != nil {
		return fmt.Errorf("rope k: %w", err)
	}
	if err := be.SetSlice(ck, st.k, 1, st.qStart); err != nil {
		return fmt.Errorf("cache k: %w", err)
	}
	if err := be.SetSlice(cv, st.v, 1, st.qStart); err != nil {
		return fmt.Errorf("cache v: %w", err)
	}
	return nil
}
