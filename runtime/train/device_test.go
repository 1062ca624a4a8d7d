package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/lora"
	_ "github.com/finlora/finlora/runtime/cuda" // registers "cuda" for FINLORA_DEVICE
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// deviceBase loads the tiny Llama on the backend named by FINLORA_DEVICE. It skips when that is
// unset or "cpu" (the CPU parity tests cover it) or the device does not open, unless
// FINLORA_REQUIRE_GPU=1, which makes it a failure.
func deviceBase(t *testing.T) *Base {
	t.Helper()
	name := os.Getenv("FINLORA_DEVICE")
	if name == "" || name == "cpu" {
		if os.Getenv("FINLORA_REQUIRE_GPU") == "1" {
			name = "cuda"
		} else {
			t.Skip("FINLORA_DEVICE is not a device backend")
		}
	}
	b, err := tensor.Get(name)
	if err != nil {
		if os.Getenv("FINLORA_REQUIRE_GPU") == "1" {
			t.Fatalf("FINLORA_REQUIRE_GPU=1 but %s does not open: %v", name, err)
		}
		t.Skipf("%s: %v", name, err)
	}
	m, err := LoadBase(b, "testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGradientsMatchPEFTDevice is TestGradientsMatchPEFT on the device: the fixture is float32, so
// the GPU runs float32 products and the same bounds hold (loss 1e-5, gradients 1e-4 relative).
func TestGradientsMatchPEFTDevice(t *testing.T) {
	base := deviceBase(t)
	for _, fx := range fixtures {
		for _, recompute := range []bool{false, true} {
			ref := readReference(t, fx)
			a, err := lora.Load(filepath.Join(fx, "adapter_start"))
			if err != nil {
				t.Fatal(err)
			}
			loss, grads, err := Gradients(base, a, ref.rows(), recompute)
			if err != nil {
				t.Fatal(err)
			}
			if r := math.Abs(loss-ref.Losses[0]) / ref.Losses[0]; r > 1e-5 {
				t.Errorf("%s: step-0 loss %.7f, reference %.7f (rel %.2g)", fx, loss, ref.Losses[0], r)
			}
			f, err := safetensors.Open(filepath.Join(fx, "grads_step0.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for _, n := range f.Names() {
				want, _ := f.Float32(n)
				got, ok := grads[n]
				if !ok {
					t.Errorf("%s: no gradient for %s", fx, n)
					continue
				}
				r := relErr(got, want)
				worst = math.Max(worst, r)
				if r > 1e-4 {
					t.Errorf("%s: %s: relative error %.3g", fx, n, r)
				}
			}
			f.Close()
			t.Logf("%s on %s recompute=%v: loss %.7f (ref %.7f), worst gradient relative error %.3g",
				fx, base.Backend.Name(), recompute, loss, ref.Losses[0], worst)
		}
	}
}

// TestTrainMatchesPEFTDevice runs the reference's AdamW steps on the device.
func TestTrainMatchesPEFTDevice(t *testing.T) {
	base := deviceBase(t)
	for _, fx := range fixtures {
		ref := readReference(t, fx)
		a, err := lora.Load(filepath.Join(fx, "adapter_start"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := lora.Load(filepath.Join(fx, "adapter_end"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{AdamW: AdamWConfig{LR: ref.LR, Betas: ref.Betas, Eps: ref.Eps, WeightDecay: ref.WeightDecay},
			BatchSize: len(ref.InputIDs), Steps: ref.Steps}
		tr, err := NewTrainer(base, a, ref.rows(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		for i, m := range tr.Metrics() {
			r := math.Abs(m.Loss-ref.Losses[i]) / ref.Losses[i]
			t.Logf("%s step %d: loss %.7f ref %.7f rel %.2g", fx, m.Step, m.Loss, ref.Losses[i], r)
			if r > 1e-5 {
				t.Errorf("%s step %d: loss %.7f, reference %.7f (rel %.2g)", fx, m.Step, m.Loss, ref.Losses[i], r)
			}
		}
		worst := 0.0
		for p, wm := range want.Modules {
			gm := a.Modules[p]
			for _, x := range []struct {
				name      string
				got, want []float32
			}{{lora.KeyA(p), gm.A, wm.A}, {lora.KeyB(p), gm.B, wm.B}} {
				r := relErr(x.got, x.want)
				worst = math.Max(worst, r)
				if r > 1e-4 {
					t.Errorf("%s: %s after %d steps: relative error %.3g", fx, x.name, ref.Steps, r)
				}
			}
		}
		t.Logf("%s on %s: adapter_end worst relative error %.3g", fx, base.Backend.Name(), worst)
	}
}
