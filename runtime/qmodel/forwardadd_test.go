package qmodel

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// TestForwardAddQuantized: on the NF4 and LLM.int8 checkpoints held quantized, Linear.ForwardAdd
// of every o_proj and down_proj (the products layerForward folds the residual add into) equals
// Forward into a temporary then Add, up to float32 rounding order: bare (MatMulTAdd, QuantMatMul
// with beta 1), with a LoRA adapter and with a DoRA adapter attached (lora.Attach).
func TestForwardAddQuantized(t *testing.T) {
	b := cpu.New(0)
	for _, dir := range []string{"tiny-llama-bnb-nf4", "tiny-llama-bnb-int8"} {
		q, err := Load(context.Background(), "testdata/"+dir, Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Free()
		var lins []*model.Linear
		for _, l := range q.Linears() {
			if strings.HasSuffix(l.Name, "o_proj") || strings.HasSuffix(l.Name, "down_proj") {
				if _, ok := l.Packed.(model.PackedWeightAdder); !ok {
					t.Fatalf("%s: %s is packed as %T, not a model.PackedWeightAdder", dir, l.Name, l.Packed)
				}
				lins = append(lins, l)
			}
		}
		if len(lins) == 0 {
			t.Fatalf("%s: no o_proj or down_proj", dir)
		}
		for _, adapter := range []string{"none", "lora", "dora"} {
			detach := func() {}
			if adapter != "none" {
				var ll []lora.Linear
				for _, l := range lins {
					qw, err := l.Packed.(*Linear).Float32(b)
					if err != nil {
						t.Fatal(err)
					}
					ll = append(ll, lora.Linear{Path: l.Name, In: l.In, Out: l.Out, Weight: qw})
				}
				cfg := lora.DefaultConfig()
				cfg.TargetModules = lora.Targets{Names: []string{"o_proj", "down_proj"}}
				cfg.UseDoRA = adapter == "dora"
				a, err := lora.New(cfg, ll, 3)
				if err != nil {
					t.Fatal(err)
				}
				g := rand.New(rand.NewPCG(1, 2))
				for _, m := range a.Modules {
					for i := range m.B {
						m.B[i] = float32(g.NormFloat64()) * 0.1
					}
				}
				if detach, err = lora.Attach(q, a); err != nil {
					t.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(7, 7))
			for _, l := range lins {
				if (adapter == "none") != (l.Adapter == nil) {
					t.Fatalf("%s %s: adapter %T attached, want %s", dir, l.Name, l.Adapter, adapter)
				}
				const rows = 3
				mk := func(n int, scale float64) *tensor.Tensor {
					v := make([]float32, n)
					for i := range v {
						v[i] = float32(r.NormFloat64() * scale)
					}
					x, err := b.FromFloat32(tensor.F32, []int{rows, n / rows}, v)
					if err != nil {
						t.Fatal(err)
					}
					return x
				}
				x, res := mk(rows*l.In, 1), mk(rows*l.Out, 2)
				want, _ := b.Alloc(tensor.F32, rows, l.Out)
				tmp, _ := b.Alloc(tensor.F32, rows, l.Out)
				for _, err := range []error{b.Copy(want, res), l.Forward(b, x, tmp), b.Add(want, want, tmp, 1), l.ForwardAdd(b, x, res)} {
					if err != nil {
						t.Fatalf("%s %s (%s): %v", dir, l.Name, adapter, err)
					}
				}
				got, _ := b.ToFloat32(res)
				ref, _ := b.ToFloat32(want)
				if rel := maxRelErr(got, ref); rel > 1e-6 {
					t.Errorf("%s %s (%s): ForwardAdd differs from Forward + Add by %.3g relative", dir, l.Name, adapter, rel)
				}
				tensor.FreeAll(x, res, want, tmp)
			}
			detach()
		}
	}
}
