package qmodel

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// TestAdapterOnQuantizedModel: LoRA and DoRA adapters attached (lora.Attach, the inference hook)
// to the NF4 model held quantized give the logits of the same adapters on the explicitly
// dequantized float32 model, and change them.
func TestAdapterOnQuantizedModel(t *testing.T) {
	b := cpu.New(0)
	ctx := context.Background()
	const dir = "tiny-llama-bnb-nf4"
	ids := refIDs(t, dir)
	q, err := Load(ctx, "testdata/"+dir, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Free()
	d := dequantizedModel(t, b, dir)
	defer d.Free()
	for _, dora := range []bool{false, true} {
		var lins []lora.Linear
		for _, l := range d.Linears() {
			if l.Name == "lm_head" {
				continue
			}
			w, err := b.ToFloat32(l.Weight)
			if err != nil {
				t.Fatal(err)
			}
			lins = append(lins, lora.Linear{Path: l.Name, In: l.In, Out: l.Out, Weight: w})
		}
		cfg := lora.DefaultConfig()
		cfg.UseDoRA = dora
		a, err := lora.New(cfg, lins, 5)
		if err != nil {
			t.Fatal(err)
		}
		g := rand.New(rand.NewPCG(9, 9))
		for _, m := range a.Modules {
			for i := range m.B {
				m.B[i] = float32(g.NormFloat64()) * 0.1
			}
		}
		bare := logitsOf(t, q, ids)
		detach, err := lora.Attach(q, a)
		if err != nil {
			t.Fatalf("dora=%v: attach to the quantized model: %v", dora, err)
		}
		got := logitsOf(t, q, ids)
		detach()
		detach, err = lora.Attach(d, a)
		if err != nil {
			t.Fatal(err)
		}
		want := logitsOf(t, d, ids)
		detach()
		if rel := maxRelErr(got, want); rel > 1e-6 {
			t.Errorf("dora=%v: logits differ from the dequantized model's by %.3g", dora, rel)
		}
		if maxRelErr(got, bare) < 1e-3 {
			t.Errorf("dora=%v: the adapter changed nothing", dora)
		}
	}
}
