package model

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/finlora/finlora/runtime/cuda" // registers "cuda" for FINLORA_DEVICE
	"github.com/finlora/finlora/runtime/npy"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// deviceBackend returns the backend named by FINLORA_DEVICE for the device variants of the parity
// tests. It skips when FINLORA_DEVICE is unset or "cpu" (the CPU tests cover it) or when the device
// does not open, unless FINLORA_REQUIRE_GPU=1, which turns that into a failure.
func deviceBackend(t *testing.T) tensor.Backend {
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
	return b
}

// TestReferenceLogitsDevice is TestReferenceLogits on the FINLORA_DEVICE backend: the fixture
// logits (transformers, float32) must match at 1e-4 with the stored float32 weights; with weights
// rounded to bf16 (and, on the GPU, activations rounded to bf16 inside the products) the GPU must
// stay within the CPU's bf16 sanity bound and close to the CPU backend on the same bf16 weights.
func TestReferenceLogitsDevice(t *testing.T) {
	b := deviceBackend(t)
	ref := cpu.New(0)
	for _, name := range []string{"tiny-llama", "tiny-qwen3"} {
		dir := filepath.Join("testdata", name)
		want, err := npy.ReadFile(filepath.Join(dir, "reference_logits.npy"))
		if err != nil {
			t.Fatal(err)
		}
		ids := referenceIDs(t, dir)
		for _, dt := range []tensor.DType{tensor.Invalid, tensor.BF16} {
			label := dt.String()
			if dt == tensor.Invalid {
				label = "stored"
			}
			t.Run(name+"/"+label, func(t *testing.T) {
				logits := func(be tensor.Backend) []float32 {
					m, err := Load(context.Background(), dir, LoadOptions{Backend: be, DType: dt})
					if err != nil {
						t.Fatal(err)
					}
					defer m.Free()
					lg, err := m.Forward(context.Background(), Input{IDs: ids, B: 1}, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer lg.Free()
					v, err := be.ToFloat32(lg)
					if err != nil {
						t.Fatal(err)
					}
					return v
				}
				got := logits(b)
				rel := maxRelErr(got, want.Data)
				tol := 1e-4
				if dt == tensor.BF16 {
					tol = 3e-2
				}
				t.Logf("%s: max |Δlogit| / max |logit| vs transformers = %.3g", b.Name(), rel)
				if rel > tol {
					t.Errorf("logits differ from transformers: relative error %.3g > %g", rel, tol)
				}
				if dt == tensor.BF16 {
					cpuRel := maxRelErr(got, logits(ref))
					t.Logf("%s vs cpu on the same bf16 weights: %.3g", b.Name(), cpuRel)
					if cpuRel > 1e-2 {
						t.Errorf("bf16 logits differ from the CPU backend's: %.3g > 1e-2", cpuRel)
					}
				}
			})
		}
	}
}
