package qmodel_test

import (
	"context"
	"math"
	"testing"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/modeltest"
	"github.com/finlora/finlora/runtime/qmodel"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
	"github.com/finlora/finlora/runtime/train"
)

// LoadGemma3GGUF with nf4 on the installed Gemma 3 270M (Q4_K_M blocks): every projection is held
// quantized (the dense model's projections are not), the model frees its quantized layers, the
// last-position logits stay near the dense model's, and the trainer takes the quantized model as
// its frozen base (train.NewGemma3Base: QLoRA on Gemma 3).
func TestLoadGemma3GGUFQuantized(t *testing.T) {
	path := modeltest.Require(t, "gemma3-270m")
	ctx := context.Background()
	b := cpu.New(0)
	ids := []int32{2, 818, 5279, 529, 7001, 563, 236761}
	logits := func(m *model.Gemma3) []float32 {
		t.Helper()
		out, err := m.LastLogits(ctx, model.Input{IDs: ids, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		v, err := b.ToFloat32(out)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	dense, err := qmodel.LoadGemma3GGUF(ctx, path, qmodel.Options{Backend: b, DType: tensor.F32})
	if err != nil {
		t.Fatal(err)
	}
	defer dense.Free()
	if dense.Layers[0].Q.Packed != nil {
		t.Fatal("as stored: the projections are packed")
	}
	want := logits(dense)
	q, err := qmodel.LoadGemma3GGUF(ctx, path, qmodel.Options{Backend: b, Precision: qmodel.NF4, DType: tensor.F32})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range q.Layers {
		for _, lin := range l.Linears() {
			if lin.Packed == nil || lin.Weight != nil {
				t.Fatalf("nf4: %s is not held quantized", lin.Name)
			}
		}
	}
	if q.Bytes() >= dense.Bytes() {
		t.Errorf("nf4 model %d bytes, dense %d", q.Bytes(), dense.Bytes())
	}
	got := logits(q)
	var worst, scale float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	t.Logf("nf4 vs dense last-position logits: max |Δ| / max |logit| = %.3g", worst/scale)
	if math.IsNaN(worst) || worst/scale > 0.5 {
		t.Errorf("nf4 logits differ from the dense model's by %.3g of their scale", worst/scale)
	}
	base, err := train.NewGemma3Base(q, 64)
	if err != nil {
		t.Fatalf("QLoRA base on the nf4 Gemma 3: %v", err)
	}
	base.Close()
	if err := q.Free(); err != nil {
		t.Fatal(err)
	}
}
