package train

import (
	"os"
	"testing"

	_ "github.com/finlora/finlora/runtime/cuda" // registers "cuda" for FINLORA_DEVICE
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
	checkGradientsMatchPEFT(t, deviceBase(t))
}

// TestTrainMatchesPEFTDevice runs the reference's AdamW steps on the device.
func TestTrainMatchesPEFTDevice(t *testing.T) {
	checkTrainMatchesPEFT(t, deviceBase(t))
}
