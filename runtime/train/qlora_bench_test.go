package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/qmodel"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// BenchmarkQLoRAStep reports training tokens/s and the memory by component of one optimizer step
// (batch 4 × 128 tokens, LoRA r=8 alpha=32 on q,k,v as in issue 6's targets) on a 4-layer model
// of SmolLM2-135M's layer shape (hidden 576, MLP 1536, 9/3 heads; vocabulary 8192) with random
// weights held in F32, BF16, NF4 (double quant) or LLM.int8:
//
//	go test -run - -bench QLoRAStep -benchtime 3x ./runtime/train/
func BenchmarkQLoRAStep(b *testing.B) {
	cfg := &model.Config{ModelType: "llama", VocabSize: 8192, HiddenSize: 576, IntermediateSize: 1536, NumLayers: 4,
		NumHeads: 9, NumKVHeads: 3, HeadDim: 64, RMSNormEps: 1e-5, Rope: model.Rope{Theta: 100000, Type: "default"},
		MaxPositionEmbeddings: 2048}
	const rowsN, T = 4, 128
	g := rand.New(rand.NewPCG(1, 1))
	var rows []Example
	for r := 0; r < rowsN; r++ {
		e := Example{InputIDs: make([]int32, T), Labels: make([]int32, T)}
		for i := range e.InputIDs {
			e.InputIDs[i] = int32(g.IntN(cfg.VocabSize))
			e.Labels[i] = e.InputIDs[i]
		}
		rows = append(rows, e)
	}
	for _, p := range []string{"f32", "bf16", "nf4", "int8"} {
		b.Run(p, func(b *testing.B) {
			be := cpu.New(0)
			dt := tensor.F32
			if p == "bf16" {
				dt = tensor.BF16
			}
			m, err := model.Random(be, cfg, 1, dt)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Free()
			if p == "nf4" || p == "int8" {
				if err := qmodel.Quantize(m, qmodel.Precision(p)); err != nil {
					b.Fatal(err)
				}
			}
			base, err := NewBase(m, T)
			if err != nil {
				b.Fatal(err)
			}
			defer base.Close()
			lc := lora.DefaultConfig()
			lc.R, lc.LoraAlpha = 8, 32
			lc.TargetModules = lora.Targets{Names: []string{"q_proj", "k_proj", "v_proj"}}
			lins, err := base.Linears(false)
			if err != nil {
				b.Fatal(err)
			}
			a, err := lora.New(lc, lins, 1)
			if err != nil {
				b.Fatal(err)
			}
			tr, err := NewTrainer(base, a, rows, Config{BatchSize: rowsN, Steps: b.N})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			b.ResetTimer()
			if err := tr.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(rowsN*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
			mem := tr.Memory()
			b.ReportMetric(float64(mem.QuantizedLinears+mem.DenseLinears)/1e6, "MB-linears")
			b.ReportMetric(float64(mem.Total())/1e6, "MB-total")
			if testing.Verbose() {
				fmt.Print(mem)
			}
		})
	}
}
