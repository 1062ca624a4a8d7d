package model

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// LoadOptions choose where and how weights are placed.
type LoadOptions struct {
	// Backend receives the weights; nil means tensor.Default().
	Backend tensor.Backend
	// DType converts every weight to F32, F16 or BF16; Invalid keeps each tensor's stored dtype
	// (dtypes the backend cannot take as weights, e.g. F64, become F32).
	DType tensor.DType
	// Linear, when set, is asked first for the weight of every linear layer (the decoder layers'
	// projections and the LM head): it returns a PackedWeight to hold instead of the dense weight
	// (quantized base weights, made on the backend: see runtime/qmodel), or nil to load the weight
	// dense as usual. name is the module name ("model.layers.0.self_attn.q_proj", "lm_head"); the
	// weight is [out, in]. The Model owns what it returns (Model.Free frees it).
	Linear func(name string, in, out int) (PackedWeight, error)
}

// Load reads a Hugging Face model directory: config.json and model.safetensors (or the shards of
// model.safetensors.index.json). The caller frees the model with Free. ctx is checked between
// tensors.
func Load(ctx context.Context, dir string, opts LoadOptions) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	defer set.Close()
	m, err := FromSource(ctx, cfg, set, opts)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m.Source = dir
	return m, nil
}

// FromSource builds a model of architecture cfg from the tensors of src named as in HF checkpoints
// ("model.layers.0.self_attn.q_proj.weight", ...). Other formats (GGUF) plug in through a
// safetensors.Source adapter that serves those names. Weights are copied to the backend, so src may
// be closed afterwards. Unknown tensors in src are ignored.
func FromSource(ctx context.Context, cfg *Config, src safetensors.Source, opts LoadOptions) (*Model, error) {
	b := opts.Backend
	if b == nil {
		var err error
		if b, err = tensor.Default(); err != nil {
			return nil, err
		}
	}
	if opts.DType != tensor.Invalid && !opts.DType.IsFloat() {
		return nil, fmt.Errorf("load options: dtype %s is not a float type", opts.DType)
	}
	l := &loader{ctx: ctx, b: b, src: src, want: opts.DType, hook: opts.Linear}
	m := &Model{Config: cfg, Backend: b, Source: "(tensors)"}
	ok := false
	defer func() {
		if !ok {
			l.freeAll()
		}
	}()
	c := cfg
	d, hd := c.HiddenSize, c.HeadDim
	m.Embed = l.get("model.embed_tokens.weight", c.VocabSize, d)
	m.Norm = l.get("model.norm.weight", d)
	for i := 0; i < c.NumLayers && l.err == nil; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ly := &Layer{Index: i, Window: c.LayerWindow(i)}
		ly.InputNorm = l.get(p+"input_layernorm.weight", d)
		ly.PostAttnNorm = l.get(p+"post_attention_layernorm.weight", d)
		ly.Q = l.linear(p+"self_attn.q_proj", d, c.NumHeads*hd, c.AttentionBias)
		ly.K = l.linear(p+"self_attn.k_proj", d, c.NumKVHeads*hd, c.AttentionBias)
		ly.V = l.linear(p+"self_attn.v_proj", d, c.NumKVHeads*hd, c.AttentionBias)
		ly.O = l.linear(p+"self_attn.o_proj", c.NumHeads*hd, d, c.AttentionOutBias)
		if c.QKNorm {
			ly.QNorm = l.get(p+"self_attn.q_norm.weight", hd)
			ly.KNorm = l.get(p+"self_attn.k_norm.weight", hd)
		}
		ly.Gate = l.linear(p+"mlp.gate_proj", d, c.IntermediateSize, c.MLPBias)
		ly.Up = l.linear(p+"mlp.up_proj", d, c.IntermediateSize, c.MLPBias)
		ly.Down = l.linear(p+"mlp.down_proj", c.IntermediateSize, d, c.MLPBias)
		m.Layers = append(m.Layers, ly)
	}
	if c.TieWordEmbeddings {
		m.LMHead = &Linear{Name: "lm_head", In: d, Out: c.VocabSize, Weight: m.Embed}
	} else {
		if _, has := src.Info("lm_head.weight"); !has && l.err == nil {
			l.err = fmt.Errorf("tensor lm_head.weight missing and tie_word_embeddings is false")
		}
		m.LMHead = l.linear("lm_head", d, c.VocabSize, false)
	}
	if l.err != nil {
		return nil, l.err
	}
	m.DType = m.Embed.DType()
	if w := m.Layers[0].Q.Weight; w != nil { // packed (quantized) layers: the embeddings' dtype
		m.DType = w.DType()
	}
	if err := m.ensureRope(min(max(c.MaxPositionEmbeddings, 256), 4096)); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// loader copies named tensors to the backend, remembering the first error and what it made.
type loader struct {
	ctx  context.Context
	b    tensor.Backend
	src  safetensors.Source
	want tensor.DType
	made []*tensor.Tensor
	err  error

	hook   func(name string, in, out int) (PackedWeight, error) // LoadOptions.Linear
	packed []PackedWeight
}

func (l *loader) freeAll() {
	tensor.FreeAll(l.made...)
	for _, p := range l.packed {
		p.Free()
	}
}

func (l *loader) linear(name string, in, out int, bias bool) *Linear {
	lin := &Linear{Name: name, In: in, Out: out}
	if l.hook != nil && l.err == nil {
		if err := l.ctx.Err(); err != nil {
			l.err = err
			return lin
		}
		p, err := l.hook(name, in, out)
		if err != nil {
			l.err = fmt.Errorf("linear %s: %w", name, err)
			return lin
		}
		if p != nil {
			l.packed = append(l.packed, p)
			lin.Packed = p
		}
	}
	if lin.Packed == nil {
		lin.Weight = l.get(name+".weight", out, in)
	}
	if bias {
		lin.Bias = l.get(name+".bias", out)
	}
	return lin
}

// get loads one tensor and checks its shape; after the first error it does nothing.
func (l *loader) get(name string, shape ...int) *tensor.Tensor {
	if l.err != nil {
		return nil
	}
	if err := l.ctx.Err(); err != nil {
		l.err = err
		return nil
	}
	info, ok := l.src.Info(name)
	if !ok {
		l.err = fmt.Errorf("tensor %s missing", name)
		return nil
	}
	if !tensor.SameShape(info.Shape, shape) {
		l.err = fmt.Errorf("tensor %s has shape %v, config.json implies %v", name, info.Shape, shape)
		return nil
	}
	stored, _ := tensor.ParseDType(string(info.DType))
	target := l.want
	if target == tensor.Invalid {
		target = stored
		if !target.IsFloat() {
			target = tensor.F32
		}
	}
	var t *tensor.Tensor
	var err error
	if stored == target {
		var raw []byte
		if raw, err = l.src.Bytes(name); err == nil {
			t, err = l.b.FromHost(target, shape, raw)
		}
	} else {
		var v []float32
		if v, err = l.src.Float32(name); err == nil {
			t, err = l.b.FromFloat32(target, shape, v)
		}
	}
	if err != nil {
		l.err = fmt.Errorf("tensor %s (%s%v): %w", name, info.DType, info.Shape, err)
		return nil
	}
	l.made = append(l.made, t)
	return t
}
