package model

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"

	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// TinyConfig is the architecture of TinyRandom: a 2-layer Llama (GQA 4/2 heads of 16, hidden 64,
// MLP 160) over ByteTokenizer's 259-id vocabulary, about 0.1 M parameters.
func TinyConfig() *Config {
	return &Config{
		ModelType: "llama", Architectures: []string{"LlamaForCausalLM"},
		VocabSize: ByteVocabSize, HiddenSize: 64, IntermediateSize: 160, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 16, RMSNormEps: 1e-5,
		Rope:                  Rope{Theta: 10000, Type: "default"},
		MaxPositionEmbeddings: 2048, DType: tensor.F32,
		BOSTokenID: ByteBOS, EOSTokenIDs: []int{ByteEOS}, PadTokenID: BytePad,
	}
}

// TinyRandom builds the embedded default model used when no real model is installed:
// Random(b, TinyConfig(), seed, F32). It is NOT a trained language model: before finetuning its
// output is noise, and whatever it learns in a demo is learned from the demo's data alone. Pair it
// with ByteTokenizer. b nil means tensor.Default(). The caller frees it with Free.
func TinyRandom(b tensor.Backend, seed uint64) (*Model, error) {
	m, err := Random(b, TinyConfig(), seed, tensor.F32)
	if err != nil {
		return nil, err
	}
	m.Source = fmt.Sprintf("TinyRandom(seed=%d)", seed)
	return m, nil
}

// Random builds a model of architecture cfg with random weights, for demos and benchmarks (e.g.
// the Llama-3.1-8B shape of 'finlora bench'): matrices and embeddings from N(0, 0.02²) (HF's
// initializer_range), norm weights 1 + N(0, 0.1²), biases N(0, 0.02²). Each tensor has its own
// generator seeded by (seed, its name), so equal seeds give identical models. dtype is the weight
// dtype (F32, F16 or BF16). b nil means tensor.Default(). The caller frees it with Free.
func Random(b tensor.Backend, cfg *Config, seed uint64, dtype tensor.DType) (*Model, error) {
	if b == nil {
		var err error
		if b, err = tensor.Default(); err != nil {
			return nil, err
		}
	}
	c := cfg
	src := randomSource{seed: seed, specs: map[string]randomSpec{}}
	add := func(name string, std, mean float64, shape ...int) {
		src.specs[name] = randomSpec{shape: shape, std: std, mean: mean}
	}
	linear := func(name string, in, out int, bias bool) {
		add(name+".weight", 0.02, 0, out, in)
		if bias {
			add(name+".bias", 0.02, 0, out)
		}
	}
	d, hd := c.HiddenSize, c.HeadDim
	add("model.embed_tokens.weight", 0.02, 0, c.VocabSize, d)
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", 0.1, 1, d)
		add(p+"post_attention_layernorm.weight", 0.1, 1, d)
		linear(p+"self_attn.q_proj", d, c.NumHeads*hd, c.AttentionBias)
		linear(p+"self_attn.k_proj", d, c.NumKVHeads*hd, c.AttentionBias)
		linear(p+"self_attn.v_proj", d, c.NumKVHeads*hd, c.AttentionBias)
		linear(p+"self_attn.o_proj", c.NumHeads*hd, d, c.AttentionOutBias)
		if c.QKNorm {
			add(p+"self_attn.q_norm.weight", 0.1, 1, hd)
			add(p+"self_attn.k_norm.weight", 0.1, 1, hd)
		}
		linear(p+"mlp.gate_proj", d, c.IntermediateSize, c.MLPBias)
		linear(p+"mlp.up_proj", d, c.IntermediateSize, c.MLPBias)
		linear(p+"mlp.down_proj", c.IntermediateSize, d, c.MLPBias)
	}
	add("model.norm.weight", 0.1, 1, d)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", 0.02, 0, c.VocabSize, d)
	}
	m, err := FromSource(context.Background(), c, src, LoadOptions{Backend: b, DType: dtype})
	if err != nil {
		return nil, fmt.Errorf("random model: %w", err)
	}
	m.Source = fmt.Sprintf("Random(%s, seed=%d)", c.ModelType, seed)
	return m, nil
}

type randomSpec struct {
	shape     []int
	std, mean float64
}

// randomSource generates each tensor on demand (nothing is kept), as a safetensors.Source of F32.
type randomSource struct {
	seed  uint64
	specs map[string]randomSpec
}

func (s randomSource) Names() []string {
	names := make([]string, 0, len(s.specs))
	for n := range s.specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s randomSource) Info(name string) (safetensors.TensorInfo, bool) {
	sp, ok := s.specs[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return safetensors.TensorInfo{Name: name, DType: safetensors.F32, Shape: sp.shape, End: int64(4 * tensor.Numel(sp.shape))}, true
}

func (s randomSource) Float32(name string) ([]float32, error) {
	sp, ok := s.specs[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(s.seed, h.Sum64()))
	v := make([]float32, tensor.Numel(sp.shape))
	for i := range v {
		v[i] = float32(sp.mean + sp.std*r.NormFloat64())
	}
	return v, nil
}

func (s randomSource) Bytes(name string) ([]byte, error) {
	v, err := s.Float32(name)
	if err != nil {
		return nil, err
	}
	return safetensors.Float32Bytes(v), nil
}
