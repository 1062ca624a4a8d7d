package generate

import (
	"context"
	"fmt"
	"os"
	"testing"

	_ "github.com/finlora/finlora/runtime/cuda" // registers "cuda" for FINLORA_DEVICE
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// TestGreedyMatchesCPUDevice: batched greedy generation with the KV cache (left padding, prefill
// then one-token steps) on the FINLORA_DEVICE backend gives the CPU's tokens on the same random
// float32 model. Skips unless FINLORA_DEVICE names a device backend or FINLORA_REQUIRE_GPU=1 (then
// a device that does not open fails).
func TestGreedyMatchesCPUDevice(t *testing.T) {
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
	opts := Options{MaxNewTokens: 16}
	run := func(be tensor.Backend) *Result {
		m, err := model.TinyRandom(be, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		res, err := Generate(context.Background(), m, prompts(), opts, tok)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want, got := run(cpu.New(0)), run(b)
	for i := range want.Tokens {
		if fmt.Sprint(got.Tokens[i]) != fmt.Sprint(want.Tokens[i]) {
			t.Errorf("prompt %d on %s: %v, cpu %v", i, b.Name(), got.Tokens[i], want.Tokens[i])
		}
	}
	t.Logf("%s: %d prompts x %d tokens equal to the CPU's", b.Name(), len(want.Tokens), opts.MaxNewTokens)
}
