package model

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// Gemma3Config is the architecture of a Gemma 3 text decoder (transformers' Gemma3TextConfig).
type Gemma3Config struct {
	VocabSize        int
	HiddenSize       int // D
	IntermediateSize int
	NumLayers        int
	NumHeads         int
	NumKVHeads       int
	HeadDim          int
	RMSNormEps       float64
	// RopeGlobal is the rotary base of the global (full-attention) layers, RopeLocal that of the
	// sliding-window layers; RopeGlobalFactor divides the global frequencies (linear scaling, 1 = none).
	RopeGlobal, RopeLocal, RopeGlobalFactor float64
	// SlidingWindow is the window of the local layers in tokens; SlidingWindowPattern makes layer i
	// global when (i+1) % pattern == 0 (6: five local layers, then one global).
	SlidingWindow, SlidingWindowPattern int
	// QueryPreAttnScalar: attention scores are scaled by QueryPreAttnScalar^-1/2.
	QueryPreAttnScalar float64
	// FinalLogitSoftcap, when > 0, maps logits to cap·tanh(logits/cap).
	FinalLogitSoftcap     float64
	MaxPositionEmbeddings int
	// NormAddOne: the norm weights are stored as in HF checkpoints (applied as 1+w). GGUF files from
	// llama.cpp's converter store 1+w already (false).
	NormAddOne bool

	BOSTokenID  int
	EOSTokenIDs []int
	PadTokenID  int
}

// IsGlobal reports whether layer i attends to every earlier token (else: the sliding window).
func (c *Gemma3Config) IsGlobal(i int) bool {
	return c.SlidingWindowPattern > 0 && (i+1)%c.SlidingWindowPattern == 0
}

// String summarizes the architecture in one line.
func (c *Gemma3Config) String() string {
	return fmt.Sprintf("gemma3: %d layers, hidden %d, heads %d/%d x %d, mlp %d, vocab %d, rope θ=%g global / %g local, window %d (1 global in %d)",
		c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize, c.VocabSize,
		c.RopeGlobal, c.RopeLocal, c.SlidingWindow, c.SlidingWindowPattern)
}

// Gemma3ConfigFromGGUF reads the gemma3.* metadata of a GGUF file. Keys llama.cpp's converter does
// not write take Gemma 3's defaults as llama.cpp applies them: local rope base 10000, sliding
// pattern 6, query scale 1/sqrt(key_length) (1/sqrt(D/heads) for the 62-layer 27B).
func Gemma3ConfigFromGGUF(f *gguf.File) (*Gemma3Config, error) {
	md := f.Metadata()
	arch, err := md.Arch()
	if err != nil {
		return nil, err
	}
	if arch != "gemma3" {
		return nil, fmt.Errorf("gguf architecture %q is not gemma3", arch)
	}
	c := &Gemma3Config{RMSNormEps: 1e-6, RopeGlobal: 1e6, RopeLocal: 10000, RopeGlobalFactor: 1,
		SlidingWindowPattern: 6}
	for _, k := range []struct {
		key      string
		dst      *int
		required bool
	}{
		{"embedding_length", &c.HiddenSize, true},
		{"feed_forward_length", &c.IntermediateSize, true},
		{"block_count", &c.NumLayers, true},
		{"attention.head_count", &c.NumHeads, true},
		{"attention.head_count_kv", &c.NumKVHeads, false},
		{"attention.key_length", &c.HeadDim, false},
		{"attention.sliding_window", &c.SlidingWindow, false},
		{"context_length", &c.MaxPositionEmbeddings, false},
	} {
		if !md.Has("gemma3." + k.key) {
			if k.required {
				return nil, fmt.Errorf("gguf metadata: missing gemma3.%s", k.key)
			}
			continue
		}
		v, err := md.Uint("gemma3." + k.key)
		if err != nil {
			return nil, err
		}
		*k.dst = int(v)
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.NumHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 {
		return nil, fmt.Errorf("gguf metadata: %d heads, %d kv heads", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim == 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if v, ok := f.Tensor("blk.0.attn_v.weight"); ok && int(v.Dims[1]) != c.NumKVHeads*c.HeadDim {
		return nil, fmt.Errorf("gguf: attn_v has %d rows, want kv heads %d x value length %d", v.Dims[1], c.NumKVHeads, c.HeadDim)
	}
	floats := []struct {
		key string
		dst *float64
	}{
		{"attention.layer_norm_rms_epsilon", &c.RMSNormEps},
		{"rope.freq_base", &c.RopeGlobal},
		{"rope.local.freq_base", &c.RopeLocal}, // not written by current converters
		{"final_logit_softcapping", &c.FinalLogitSoftcap},
	}
	for _, k := range floats {
		if md.Has("gemma3." + k.key) {
			if *k.dst, err = md.Float("gemma3." + k.key); err != nil {
				return nil, err
			}
		}
	}
	if st, err := md.String("gemma3.rope.scaling.type"); err == nil && st == "linear" {
		if c.RopeGlobalFactor, err = md.Float("gemma3.rope.scaling.factor"); err != nil {
			return nil, err
		}
	}
	c.QueryPreAttnScalar = float64(c.HeadDim)
	if c.NumLayers == 62 {
		c.QueryPreAttnScalar = float64(c.HiddenSize / c.NumHeads)
	}
	if c.VocabSize, err = ggufVocabSize(f, arch); err != nil {
		return nil, err
	}
	if _, has := f.Tensor("output.weight"); has {
		return nil, fmt.Errorf("gguf: gemma3 with an untied output.weight is not supported")
	}
	c.BOSTokenID, c.PadTokenID = ggufID(md, "bos_token_id"), ggufID(md, "padding_token_id")
	if e := ggufID(md, "eos_token_id"); e >= 0 {
		c.EOSTokenIDs = []int{e}
	}
	return c, nil
}

// Gemma3 is a loaded Gemma 3 text decoder. Per layer (transformers' Gemma3DecoderLayer):
//
//	h = x + post_attention_norm(attn(input_norm(x)))         attention: q/k RMSNorm per head, RoPE
//	x' = h + post_feedforward_norm(mlp(pre_feedforward_norm(h)))   mlp: down(gelu_tanh(gate)·up)
//
// with the input embeddings scaled by sqrt(D), RMSNorm x·rsqrt(mean(x²)+eps)·(1+w) (w stored as 1+w
// in GGUF), sliding-window layers (RopeLocal) and global layers (RopeGlobal), and the LM head tied
// to the embedding. It owns its weights and rotary tables (Free); it does not own the backend. One
// forward pass runs at a time.
type Gemma3 struct {
	Config  *Gemma3Config
	Backend tensor.Backend
	Source  string

	Embed  *tensor.Tensor // [V, D]
	Layers []*Gemma3Layer
	Norm   *tensor.Tensor // [D]
	LMHead *Linear        // tied: Weight is Embed

	mu         sync.Mutex
	ropeRows   int
	cosG, sinG *tensor.Tensor // [P, HD/2] global layers
	cosL, sinL *tensor.Tensor // [P, HD/2] local layers
	freed      bool
	host       bool // GeGLU computed on the host (no backend op)
}

// Gemma3Layer is one decoder block of Gemma 3.
type Gemma3Layer struct {
	Index                      int
	Global                     bool           // full attention (else sliding window)
	Window                     int            // 0 for global layers
	InputNorm, PostAttnNorm    *tensor.Tensor // [D]
	PreFFNorm, PostFFNorm      *tensor.Tensor // [D]
	QNorm, KNorm               *tensor.Tensor // [HD]
	Q, K, V, O, Gate, Up, Down *Linear
}

// Linears returns the layer's projections in HF order: q, k, v, o, gate, up, down.
func (l *Gemma3Layer) Linears() []*Linear { return []*Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} }

// LoadGemma3GGUF loads a Gemma 3 GGUF file. Quantized weights are dequantized to opts.DType (F32
// when Invalid; BF16 halves the memory: the 270M model's 262144×640 embedding is 671 MB in F32).
// The file is closed before returning; the caller frees the model.
func LoadGemma3GGUF(ctx context.Context, path string, opts LoadOptions) (*Gemma3, error) {
	m, err := WithGemma3GGUF(path, func(cfg *Gemma3Config, src *GGUFSource) (*Gemma3, error) {
		return Gemma3FromSource(ctx, cfg, src, opts)
	})
	if err != nil {
		return nil, err
	}
	m.Source = path
	return m, nil
}

// Gemma3FromSource builds the model from tensors under HF names (model.layers.N.pre_feedforward_layernorm.weight, ...).
// opts.Linear, when set, supplies the projections' weights as for FromSource (runtime/qmodel's
// quantization on load); the model owns and frees them.
func Gemma3FromSource(ctx context.Context, cfg *Gemma3Config, src safetensors.Source, opts LoadOptions) (*Gemma3, error) {
	b := opts.Backend
	if b == nil {
		var err error
		if b, err = tensor.Default(); err != nil {
			return nil, err
		}
	}
	l := &loader{ctx: ctx, b: b, src: src, want: opts.DType, hook: opts.Linear}
	ok := false
	defer func() {
		if !ok {
			l.freeAll()
		}
	}()
	c := cfg
	d, hd := c.HiddenSize, c.HeadDim
	m := &Gemma3{Config: cfg, Backend: b, Source: "(tensors)"}
	m.Embed = l.get("model.embed_tokens.weight", c.VocabSize, d)
	m.Norm = l.get("model.norm.weight", d)
	for i := 0; i < c.NumLayers && l.err == nil; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ly := &Gemma3Layer{Index: i, Global: c.IsGlobal(i)}
		if !ly.Global {
			ly.Window = c.SlidingWindow
		}
		ly.InputNorm = l.get(p+"input_layernorm.weight", d)
		ly.PostAttnNorm = l.get(p+"post_attention_layernorm.weight", d)
		ly.PreFFNorm = l.get(p+"pre_feedforward_layernorm.weight", d)
		ly.PostFFNorm = l.get(p+"post_feedforward_layernorm.weight", d)
		ly.QNorm = l.get(p+"self_attn.q_norm.weight", hd)
		ly.KNorm = l.get(p+"self_attn.k_norm.weight", hd)
		ly.Q = l.linear(p+"self_attn.q_proj", d, c.NumHeads*hd, false)
		ly.K = l.linear(p+"self_attn.k_proj", d, c.NumKVHeads*hd, false)
		ly.V = l.linear(p+"self_attn.v_proj", d, c.NumKVHeads*hd, false)
		ly.O = l.linear(p+"self_attn.o_proj", c.NumHeads*hd, d, false)
		ly.Gate = l.linear(p+"mlp.gate_proj", d, c.IntermediateSize, false)
		ly.Up = l.linear(p+"mlp.up_proj", d, c.IntermediateSize, false)
		ly.Down = l.linear(p+"mlp.down_proj", c.IntermediateSize, d, false)
		m.Layers = append(m.Layers, ly)
	}
	if l.err != nil {
		return nil, l.err
	}
	m.LMHead = &Linear{Name: "lm_head", In: d, Out: c.VocabSize, Weight: m.Embed}
	if err := m.ensureRope(512); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// gegluBackend is implemented by backends with a fused GeGLU: out = gelu_tanh(gate)·up.
type gegluBackend interface {
	GeGLU(out, gate, up *tensor.Tensor) error
}

// Linears returns every projection (layer order, then q, k, v, o, gate, up, down), then the LM head.
func (m *Gemma3) Linears() []*Linear {
	var out []*Linear
	for _, l := range m.Layers {
		out = append(out, l.Linears()...)
	}
	return append(out, m.LMHead)
}

// ensureRope grows the global and local rotary tables to at least n positions.
func (m *Gemma3) ensureRope(n int) error {
	if n <= m.ropeRows {
		return nil
	}
	rows := max(n, 2*m.ropeRows)
	c := m.Config
	half := c.HeadDim / 2
	build := func(base, factor float64) (*tensor.Tensor, *tensor.Tensor, error) {
		cv, sv := make([]float32, rows*half), make([]float32, rows*half)
		for i := 0; i < half; i++ {
			// transformers: inv_freq = 1/base^(arange(0, HD, 2)/HD) in float32, angle = inv_freq·pos in float32.
			inv := float32(1 / math.Pow(base, float64(2*i)/float64(c.HeadDim)) / factor)
			for p := 0; p < rows; p++ {
				a := inv * float32(p)
				cv[p*half+i] = float32(math.Cos(float64(a)))
				sv[p*half+i] = float32(math.Sin(float64(a)))
			}
		}
		ct, err := m.Backend.FromFloat32(tensor.F32, []int{rows, half}, cv)
		if err != nil {
			return nil, nil, err
		}
		st, err := m.Backend.FromFloat32(tensor.F32, []int{rows, half}, sv)
		if err != nil {
			ct.Free()
			return nil, nil, err
		}
		return ct, st, nil
	}
	cg, sg, err := build(c.RopeGlobal, c.RopeGlobalFactor)
	if err != nil {
		return fmt.Errorf("rope tables: %w", err)
	}
	cl, sl, err := build(c.RopeLocal, 1)
	if err != nil {
		tensor.FreeAll(cg, sg)
		return fmt.Errorf("rope tables: %w", err)
	}
	tensor.FreeAll(m.cosG, m.sinG, m.cosL, m.sinL)
	m.cosG, m.sinG, m.cosL, m.sinL, m.ropeRows = cg, sg, cl, sl, rows
	return nil
}

// NewCache allocates a KV cache for batch sequences of up to capacity slots (see Cache).
func (m *Gemma3) NewCache(batch, capacity int) (*Cache, error) {
	c := m.Config
	return newCache(m.Backend, batch, capacity, c.NumLayers, c.NumKVHeads, c.HeadDim)
}

// Free releases every weight and table; idempotent.
func (m *Gemma3) Free() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed {
		return nil
	}
	m.freed = true
	ts := []*tensor.Tensor{m.Embed, m.Norm, m.cosG, m.sinG, m.cosL, m.sinL}
	for _, l := range m.Layers {
		ts = append(ts, l.InputNorm, l.PostAttnNorm, l.PreFFNorm, l.PostFFNorm, l.QNorm, l.KNorm)
		for _, p := range l.Linears() {
			ts = append(ts, p.Weight, p.Bias)
			if p.Packed != nil { // LoadOptions.Linear's weights (quantized layers) are the model's too
				if err := p.Packed.Free(); err != nil {
					return fmt.Errorf("free model %s: %s: %w", m.Source, p.Name, err)
				}
			}
		}
	}
	if err := tensor.FreeAll(ts...); err != nil {
		return fmt.Errorf("free model %s: %w", m.Source, err)
	}
	return nil
}

// Params counts the parameters (the tied LM head once).
func (m *Gemma3) Params() int64 {
	n := int64(m.Embed.Numel() + m.Norm.Numel())
	for _, l := range m.Layers {
		for _, t := range []*tensor.Tensor{l.InputNorm, l.PostAttnNorm, l.PreFFNorm, l.PostFFNorm, l.QNorm, l.KNorm} {
			n += int64(t.Numel())
		}
		for _, p := range l.Linears() {
			n += int64(p.Weight.Numel())
		}
	}
	return n
}

// Bytes is the storage of the weights (the tied LM head once), rotary tables excluded.
func (m *Gemma3) Bytes() int64 {
	n := m.Embed.Bytes() + m.Norm.Bytes()
	for _, l := range m.Layers {
		for _, t := range []*tensor.Tensor{l.InputNorm, l.PostAttnNorm, l.PreFFNorm, l.PostFFNorm, l.QNorm, l.KNorm} {
			n += t.Bytes()
		}
		for _, p := range l.Linears() {
			n += p.Bytes()
		}
	}
	return n
}
