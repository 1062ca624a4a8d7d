package model

import (
	"context"
	"fmt"
	"math/rand/v2"

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

// TinyRandom builds the embedded default model used when no real model is installed: TinyConfig
// with weights drawn from N(0, 0.02²) (norm weights 1 + N(0, 0.1²)) by a PCG generator seeded with
// seed, so equal seeds give identical models. It is NOT a trained language model: before finetuning
// its output is noise, and whatever it learns in a demo is learned from the demo's data alone. Pair
// it with ByteTokenizer. The caller frees it with Free.
func TinyRandom(b tensor.Backend, seed uint64) (*Model, error) {
	if b == nil {
		var err error
		if b, err = tensor.Default(); err != nil {
			return nil, err
		}
	}
	c := TinyConfig()
	r := rand.New(rand.NewPCG(seed, 0x7469_6e79)) // "tiny"
	src := memSource{}
	normal := func(name string, std, mean float64, shape ...int) {
		v := make([]float32, tensor.Numel(shape))
		for i := range v {
			v[i] = float32(mean + std*r.NormFloat64())
		}
		src[name] = memTensor{shape: shape, data: v}
	}
	d, hd := c.HiddenSize, c.HeadDim
	normal("model.embed_tokens.weight", 0.02, 0, c.VocabSize, d)
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		normal(p+"input_layernorm.weight", 0.1, 1, d)
		normal(p+"post_attention_layernorm.weight", 0.1, 1, d)
		normal(p+"self_attn.q_proj.weight", 0.02, 0, c.NumHeads*hd, d)
		normal(p+"self_attn.k_proj.weight", 0.02, 0, c.NumKVHeads*hd, d)
		normal(p+"self_attn.v_proj.weight", 0.02, 0, c.NumKVHeads*hd, d)
		normal(p+"self_attn.o_proj.weight", 0.02, 0, d, c.NumHeads*hd)
		normal(p+"mlp.gate_proj.weight", 0.02, 0, c.IntermediateSize, d)
		normal(p+"mlp.up_proj.weight", 0.02, 0, c.IntermediateSize, d)
		normal(p+"mlp.down_proj.weight", 0.02, 0, d, c.IntermediateSize)
	}
	normal("model.norm.weight", 0.1, 1, d)
	normal("lm_head.weight", 0.02, 0, c.VocabSize, d)
	m, err := FromSource(context.Background(), c, src, LoadOptions{Backend: b})
	if err != nil {
		return nil, fmt.Errorf("tiny random model: %w", err)
	}
	m.Source = fmt.Sprintf("TinyRandom(seed=%d)", seed)
	return m, nil
}
