package model

import (
	"context"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// smolLM2Config is the shape of SmolLM2-135M (a Llama): 30 layers, hidden 576, GQA 9/3 heads of
// 64, MLP 1536, vocabulary 49152, tied embeddings.
func smolLM2Config() *Config {
	return &Config{
		ModelType: "llama", VocabSize: 49152, HiddenSize: 576, IntermediateSize: 1536, NumLayers: 30,
		NumHeads: 9, NumKVHeads: 3, HeadDim: 64, RMSNormEps: 1e-5, TieWordEmbeddings: true,
		Rope: Rope{Theta: 100000, Type: "default"}, MaxPositionEmbeddings: 8192,
	}
}

// BenchmarkForward measures CPU tokens/s of a prefill (64 tokens, one sequence) and of cached
// decode steps (one token each, after a 64-token prompt) with random weights:
//
//	go test -run - -bench Forward -benchtime 3x ./runtime/model/
func BenchmarkForward(b *testing.B) {
	be := cpu.New(0)
	for _, tc := range []struct {
		name  string
		cfg   *Config
		dtype tensor.DType
	}{
		{"tiny-f32", TinyConfig(), tensor.F32},
		{"smollm2-135m-shape-bf16", smolLM2Config(), tensor.BF16},
		{"smollm2-135m-shape-f32", smolLM2Config(), tensor.F32},
	} {
		m, err := Random(be, tc.cfg, 1, tc.dtype)
		if err != nil {
			b.Fatal(err)
		}
		const prompt = 64
		ids := make([]int32, prompt)
		for i := range ids {
			ids[i] = int32((i*7919 + 13) % tc.cfg.VocabSize)
		}
		ctx := context.Background()
		b.Run(tc.name+"/prefill-64", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				lg, err := m.LastLogits(ctx, Input{IDs: ids, B: 1}, nil)
				if err != nil {
					b.Fatal(err)
				}
				lg.Free()
			}
			b.ReportMetric(float64(prompt*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
		b.Run(tc.name+"/decode", func(b *testing.B) {
			c, err := m.NewCache(1, prompt+b.N+1)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Free()
			lg, err := m.LastLogits(ctx, Input{IDs: ids, B: 1}, c)
			if err != nil {
				b.Fatal(err)
			}
			lg.Free()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lg, err := m.LastLogits(ctx, Input{IDs: ids[i%prompt : i%prompt+1], B: 1}, c)
				if err != nil {
					b.Fatal(err)
				}
				lg.Free()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
		m.Free()
	}
}
