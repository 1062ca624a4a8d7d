package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/cuda"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// TestLowRankTF32Device: with a bf16 base (the benchmark's and PEFT's bf16 training) the adapter
// products run on TF32 (runtime/cuda GemmLowRank). On the PEFT fixtures' tiny Llama loaded in
// bf16, the loss and adapter gradients with TF32 adapter products differ from those with exact
// float32 ones by well under the difference the bf16 base itself makes against PEFT's float32
// reference (at most half of it, and at most 1e-4 relative on the loss), with and without
// recompute. Skipped like deviceBase.
func TestLowRankTF32Device(t *testing.T) {
	f32 := deviceBase(t) // skips without a device
	cb, ok := f32.Backend.(*cuda.Backend)
	if !ok {
		t.Skipf("%s has no TF32 adapter products", f32.Backend.Name())
	}
	m, err := model.Load(context.Background(), "testdata/tiny-llama", model.LoadOptions{Backend: cb, DType: tensor.BF16})
	if err != nil {
		t.Fatal(err)
	}
	base, err := NewBase(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { base.Close(); m.Free() }()
	defer func(v bool) { cb.LowRankTF32 = v }(cb.LowRankTF32)
	for _, fx := range fixtures {
		ref := readReference(t, fx)
		a, err := lora.Load(filepath.Join(fx, "adapter_start"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.Open(filepath.Join(fx, "grads_step0.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		for _, recompute := range []bool{false, true} {
			cb.LowRankTF32 = false
			lossX, gradsX, err := Gradients(base, a, ref.rows(), recompute)
			if err != nil {
				t.Fatal(err)
			}
			cb.LowRankTF32 = true
			lossT, gradsT, err := Gradients(base, a, ref.rows(), recompute)
			if err != nil {
				t.Fatal(err)
			}
			tf32Err, bf16Err := 0.0, 0.0
			for _, n := range f.Names() {
				want, _ := f.Float32(n)
				tf32Err = math.Max(tf32Err, relErr(gradsT[n], gradsX[n]))
				bf16Err = math.Max(bf16Err, relErr(gradsX[n], want))
			}
			lossRel := math.Abs(lossT-lossX) / math.Abs(lossX)
			t.Logf("%s recompute=%v: loss TF32 %.7f exact %.7f (rel %.2g; float32 reference %.7f); gradients TF32 vs exact %.3g, bf16 base vs float32 reference %.3g",
				fx, recompute, lossT, lossX, lossRel, ref.Losses[0], tf32Err, bf16Err)
			if lossRel > 1e-4 || tf32Err > bf16Err/2 || math.IsNaN(tf32Err) {
				t.Errorf("%s recompute=%v: TF32 adapter products moved the loss by %.2g and the gradients by %.3g (bf16 base vs reference: %.3g)",
					fx, recompute, lossRel, tf32Err, bf16Err)
			}
		}
		f.Close()
	}
}
