package train

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/qmodel"
	st "github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// quantBase loads testdata/tiny-llama at precision p (quantized on load, held quantized) and wraps it.
func quantBase(t *testing.T, b tensor.Backend, p qmodel.Precision) *Base {
	t.Helper()
	m, err := qmodel.Load(context.Background(), "testdata/tiny-llama", qmodel.Options{Backend: b, Precision: p})
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewBase(m, 0)
	if err != nil {
		m.Free()
		t.Fatal(err)
	}
	base.ownsModel = true
	t.Cleanup(func() { base.Close() })
	return base
}

// dequantizedBase is the explicitly dequantized float32 model of the same quantization (every
// quantized weight decoded to float32 on load by quant.OnLoadSource): dense Gemms on the values
// the quantized matmuls dequantize on the fly.
func dequantizedBase(t *testing.T, b tensor.Backend, c quant.Config) *Base {
	t.Helper()
	cfg, err := model.LoadConfig("testdata/tiny-llama/config.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := st.OpenDir("testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	on, err := quant.NewOnLoadSource(set, c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.FromSource(context.Background(), cfg, on, model.LoadOptions{Backend: b, DType: tensor.F32})
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewBase(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	base.ownsModel = true
	t.Cleanup(func() { base.Close() })
	return base
}

// TestQLoRAGradientsEqualDequantized: training through a frozen quantized base (NF4 with double
// quantization, FP4, LLM.int8) gives the gradients of the explicitly dequantized float32 model, to
// 1e-5 relative (the math is identical), for LoRA on every linear, with dropout, with gradient
// checkpointing, and for DoRA (whose norm reads the dequantized weight).
func TestQLoRAGradientsEqualDequantized(t *testing.T) {
	b := cpu.New(0)
	rows := rows4(t)
	for _, c := range []struct {
		p   qmodel.Precision
		cfg quant.Config
	}{
		{qmodel.NF4, quant.Config{Format: quant.FormatNF4, DoubleQuant: true}},
		{qmodel.FP4, quant.Config{Format: quant.FormatFP4, DoubleQuant: true}},
		{qmodel.Int8, quant.Config{Format: quant.FormatInt8}},
	} {
		qb, db := quantBase(t, b, c.p), dequantizedBase(t, b, c.cfg)
		for _, l := range qb.Layers {
			for i := range l.Packed {
				if l.Packed[i] == nil || l.W[i] != nil {
					t.Fatalf("%s: layer weights not held quantized", c.p)
				}
			}
		}
		for _, v := range []struct {
			name      string
			dropout   float64
			recompute bool
			dora      bool
		}{{"lora", 0, false, false}, {"lora+dropout", 0.2, false, false}, {"lora+recompute", 0, true, false}, {"dora", 0, false, true}} {
			t.Run(fmt.Sprintf("%s/%s", c.p, v.name), func(t *testing.T) {
				mk := func(base *Base) *lora.Adapter {
					a := startAdapter(t, fixtures[1], v.dropout)
					if v.dora {
						a.Config.UseDoRA = true
						for _, m := range a.Modules {
							w, err := base.frozenWeight(m.Path)
							if err != nil {
								t.Fatal(err)
							}
							wf, err := w.float32(base.Backend)
							if err != nil {
								t.Fatal(err)
							}
							m.Magnitude = m.WeightNorm(wf)
							for i := range m.Magnitude {
								m.Magnitude[i] *= 1.1
							}
						}
					}
					return a
				}
				lq, gq, err := Gradients(qb, mk(qb), rows, v.recompute)
				if err != nil {
					t.Fatal(err)
				}
				ld, gd, err := Gradients(db, mk(db), rows, v.recompute)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(lq-ld) > 1e-6*ld {
					t.Errorf("loss %v, dequantized model %v", lq, ld)
				}
				worst := 0.0
				for k, g := range gd {
					worst = math.Max(worst, relErr(gq[k], g))
				}
				t.Logf("loss %.6f; %d gradients, worst relative difference %.3g", lq, len(gd), worst)
				if worst > 1e-5 || len(gq) != len(gd) {
					t.Errorf("gradients differ from the dequantized model's by %.3g (relative)", worst)
				}
			})
		}
	}
}

// TestQLoRATrainingAndPrecisions trains LoRA on a NF4 base (the loss goes down; the memory report
// counts the quantized layers, the adapter, the optimizer and the activations), then evaluates the
// same adapter on the int8 base and the bf16 base of the same model (it attaches unchanged and
// lowers the loss there too: the adapter is independent of the base precision).
func TestQLoRATrainingAndPrecisions(t *testing.T) {
	b := cpu.New(0)
	rows := rows4(t)
	nf4 := quantBase(t, b, qmodel.NF4)
	a := startAdapter(t, fixtures[1], 0)
	start := a.Clone()
	tr := run(t, nf4, a, rows, Config{AdamW: AdamWConfig{LR: 1e-2, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}, BatchSize: 4, Steps: 12})
	ms := tr.Metrics()
	first, last := ms[0].Loss, ms[len(ms)-1].Loss
	t.Logf("NF4 QLoRA: loss %.4f -> %.4f over %d steps", first, last, len(ms))
	if !(last < first-0.1) {
		t.Errorf("loss did not go down: %.4f -> %.4f", first, last)
	}
	mem := tr.Memory()
	t.Logf("%s", mem)
	dense := ModelMemory(loadTiny(t).Model)
	if mem.QuantizedCount != 14 || mem.DenseLinears != 0 || mem.QuantizedLinears <= 0 || mem.QuantizedLinears*5 > dense.DenseLinears ||
		mem.Adapters <= 0 || mem.Optimizer != 8*int64(a.NumParams()) || mem.Activations <= 0 || mem.Embeddings != dense.Embeddings {
		t.Errorf("memory report %+v (dense model %+v)", mem, dense)
	}
	for _, p := range []qmodel.Precision{qmodel.Int8, qmodel.BF16, qmodel.NF4} {
		eb := quantBase(t, b, p)
		before, err := Loss(eb, start, rows)
		if err != nil {
			t.Fatal(err)
		}
		after, err := Loss(eb, a, rows)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("evaluated on the %s base: loss %.4f with the start adapter, %.4f with the NF4-trained one", p, before, after)
		if !(after < before-0.1) {
			t.Errorf("%s base: the NF4-trained adapter does not transfer (loss %.4f -> %.4f)", p, before, after)
		}
		if p == qmodel.NF4 && math.Abs(after-last) > 0.2 {
			t.Errorf("NF4 eval loss %.4f far from the last training loss %.4f", after, last)
		}
	}
}
