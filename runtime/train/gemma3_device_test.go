package train

import (
	"math"
	"os"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// TestGemma3GradientsDevice: the Gemma 3 training graph on the device backend (FINLORA_DEVICE,
// skipped like deviceBase) gives the CPU's loss and adapter gradients on the tiny random Gemma 3
// (float32 weights: 1e-5 relative on the loss, 1e-4 on the gradients), with and without recompute.
func TestGemma3GradientsDevice(t *testing.T) {
	name := os.Getenv("FINLORA_DEVICE")
	if name == "" || name == "cpu" {
		if os.Getenv("FINLORA_REQUIRE_GPU") != "1" {
			t.Skip("FINLORA_DEVICE is not a device backend")
		}
		name = "cuda"
	}
	b, err := tensor.Get(name)
	if err != nil {
		if os.Getenv("FINLORA_REQUIRE_GPU") == "1" {
			t.Fatalf("FINLORA_REQUIRE_GPU=1 but %s does not open: %v", name, err)
		}
		t.Skipf("%s: %v", name, err)
	}
	for _, addOne := range []bool{false, true} {
		cpuBase, err := NewGemma3Base(tinyGemma3(t, addOne), 64)
		if err != nil {
			t.Fatal(err)
		}
		defer cpuBase.Close()
		devBase, err := NewGemma3Base(tinyGemma3On(t, b, addOne), 64)
		if err != nil {
			t.Fatal(err)
		}
		defer devBase.Close()
		a := gemmaAdapter(t, cpuBase, 4, 0, 3)
		wantLoss, want, err := Gradients(cpuBase, a, gemmaRows(), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, recompute := range []bool{false, true} {
			loss, got, err := Gradients(devBase, a, gemmaRows(), recompute)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for k, w := range want {
				worst = math.Max(worst, relErr(got[k], w))
			}
			t.Logf("%s addOne=%v recompute=%v: loss %.7f (cpu %.7f), worst gradient relative error %.3g", b.Name(), addOne, recompute, loss, wantLoss, worst)
			if math.Abs(loss-wantLoss) > 1e-5*wantLoss || worst > 1e-4 {
				t.Errorf("%s addOne=%v recompute=%v: loss %.7f vs cpu %.7f, gradients rel %.3g", b.Name(), addOne, recompute, loss, wantLoss, worst)
			}
		}
	}
}
