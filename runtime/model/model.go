// Package model holds the Llama-family decoders (llama, mistral, qwen2, qwen3) loaded from Hugging
// Face directories (config.json + safetensors): their weights on a tensor.Backend, the forward pass
// with a KV cache, and the hook points for LoRA adapters (Linear.Adapter).
//
// Shapes use B for the batch (sequences), T for the tokens of this call per sequence, D for the
// hidden size, Hq/Hkv for query/key-value heads of width HD, I for the MLP width, V for the
// vocabulary. Activations are F32; weights keep their stored dtype unless LoadOptions.DType
// converts them.
//
// The forward pass (Model.Hidden) is, per layer l, on the residual stream x [B, T, D]:
//
//	h = RMSNorm(x, l.InputNorm)
//	q, k, v = l.Q(h) [B,T,Hq,HD], l.K(h), l.V(h) [B,T,Hkv,HD]   (Linear.Forward: x·Wᵀ + bias + adapter)
//	q, k = RMSNorm per head (qwen3: l.QNorm, l.KNorm); Rope(q), Rope(k) at each token's position
//	x += l.O(Attention(q, cache k/v))       causal, left padding masked, l.Window if set
//	h = RMSNorm(x, l.PostAttnNorm)
//	x += l.Down(silu(l.Gate(h)) ⊙ l.Up(h))
//
// then x = RMSNorm(x, Norm) and logits = LMHead(x). Positions count from each sequence's first
// real token (RopeTables gives the cos/sin tables). Training code (package train) runs the same
// steps with its own saved activations, reading the exported fields of Model and Layer.
package model

import (
	"fmt"
	"sync"

	"github.com/finlora/finlora/runtime/tensor"
)

// Model is a loaded decoder. It owns every weight tensor and the rotary tables, and frees them in
// Free; it does not own the backend or attached adapters. A Model may run one forward pass at a time
// (calls are serialized by an internal lock); Layers and Linears may be read concurrently.
type Model struct {
	Config  *Config
	Backend tensor.Backend
	DType   tensor.DType // the dtype of the dense weights
	Source  string       // where it was loaded from (directory, or a description)

	Embed  *tensor.Tensor // [V, D] model.embed_tokens.weight
	Layers []*Layer
	Norm   *tensor.Tensor // [D] model.norm.weight
	// LMHead maps [.., D] to logits [.., V]; when Config.TieWordEmbeddings its Weight is Embed.
	LMHead *Linear

	mu       sync.Mutex
	ropeCos  *tensor.Tensor // [P, HD/2]
	ropeSin  *tensor.Tensor
	ropeRows int
	freed    bool
}

// Layer is one decoder block (pre-norm attention, then pre-norm SwiGLU MLP).
type Layer struct {
	Index        int
	InputNorm    *tensor.Tensor // [D] input_layernorm.weight
	PostAttnNorm *tensor.Tensor // [D] post_attention_layernorm.weight
	Q, K, V, O   *Linear        // q_proj [Hq·HD, D], k_proj/v_proj [Hkv·HD, D], o_proj [D, Hq·HD]
	QNorm, KNorm *tensor.Tensor // [HD] per-head q_norm/k_norm (qwen3), else nil
	Gate, Up     *Linear        // [I, D]
	Down         *Linear        // [D, I]
	Window       int            // sliding window of this layer (0 = full)
}

// Linears returns the layer's seven projections in HF order: q, k, v, o, gate, up, down.
func (l *Layer) Linears() []*Linear { return []*Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} }

// TargetNames are the short names of the adaptable projections, as PEFT's target_modules spells them.
var TargetNames = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// Linears returns every projection of every layer (layer order, then q, k, v, o, gate, up, down),
// followed by the LM head. Adapters attach by setting Linear.Adapter.
func (m *Model) Linears() []*Linear {
	var out []*Linear
	for _, l := range m.Layers {
		out = append(out, l.Linears()...)
	}
	return append(out, m.LMHead)
}

// Linear finds a projection by its HF module name ("model.layers.0.self_attn.q_proj", "lm_head");
// a PEFT prefix ("base_model.model.") is accepted.
func (m *Model) Linear(name string) (*Linear, bool) {
	const peft = "base_model.model."
	if len(name) > len(peft) && name[:len(peft)] == peft {
		name = name[len(peft):]
	}
	for _, l := range m.Linears() {
		if l.Name == name {
			return l, true
		}
	}
	return nil, false
}

// Params counts the parameters held (the tied LM head once).
func (m *Model) Params() int64 { return m.Config.Params() }

// Bytes is the storage of the weights (the tied LM head once), rotary tables excluded.
func (m *Model) Bytes() int64 {
	n := m.Embed.Bytes() + m.Norm.Bytes()
	for _, l := range m.Layers {
		n += l.InputNorm.Bytes() + l.PostAttnNorm.Bytes()
		if l.QNorm != nil {
			n += l.QNorm.Bytes() + l.KNorm.Bytes()
		}
		for _, p := range l.Linears() {
			n += p.Bytes()
		}
	}
	if !m.Config.TieWordEmbeddings {
		n += m.LMHead.Bytes()
	}
	return n
}

// Free releases every weight and table on the backend. Adapters are not freed (detach them first
// or free them through their owner). Free is idempotent; the Model is unusable afterwards.
func (m *Model) Free() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed {
		return nil
	}
	m.freed = true
	ts := []*tensor.Tensor{m.Embed, m.Norm, m.ropeCos, m.ropeSin}
	var packed []PackedWeight
	add := func(ls ...*Linear) {
		for _, l := range ls {
			if l == nil {
				continue
			}
			if l.Weight != m.Embed {
				ts = append(ts, l.Weight)
			}
			ts = append(ts, l.Bias)
			if l.Packed != nil {
				packed = append(packed, l.Packed)
			}
		}
	}
	for _, l := range m.Layers {
		ts = append(ts, l.InputNorm, l.PostAttnNorm, l.QNorm, l.KNorm)
		add(l.Linears()...)
	}
	add(m.LMHead)
	err := tensor.FreeAll(ts...)
	for _, p := range packed {
		if e := p.Free(); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("free model %s: %w", m.Source, err)
	}
	return nil
}
