package runtime

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

func TestSessionModelLifecycle(t *testing.T) {
	s := NewSession()
	ctx := context.Background()
	cpuBackend, err := tensor.Get("cpu")
	if err != nil {
		t.Fatal(err)
	}
	empty := cpuBackend.MemStats().Current
	lm, err := s.LoadModel(ctx, "tiny", TinyModelPath, ModelOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Model("tiny"); err != nil || got != lm {
		t.Fatalf("Model(tiny) = %v, %v", got, err)
	}
	ids, err := lm.Tokenize("EPS")
	if err != nil || len(ids) != 4 {
		t.Fatalf("Tokenize: %v, %v", ids, err)
	}
	if s, _ := lm.Decode(ids); s != "EPS" {
		t.Errorf("Decode = %q", s)
	}
	a, err := lm.Generate(ctx, "Revenue", GenerateOptions{MaxNewTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := lm.GenerateBatch(ctx, []string{"x", "Revenue"}, GenerateOptions{MaxNewTokens: 5})
	if err != nil || len(outs) != 2 || outs[1] != a {
		t.Errorf("GenerateBatch = %q, %v; alone %q", outs, err, a)
	}
	h := lm.HTML()
	for _, want := range []string{"<table", "LlamaForCausalLM", "parameters", "F32", "cpu"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q:\n%s", want, h)
		}
	}
	b := lm.Model.Backend
	before := b.MemStats().Current
	// Replacing a name frees the old model.
	if _, err := s.LoadModel(ctx, "tiny", TinyModelPath, ModelOptions{Device: "cpu"}); err != nil {
		t.Fatal(err)
	}
	if lm.Model != nil || b.MemStats().Current != before {
		t.Errorf("replaced model not freed: %v, memory %d → %d", lm, before, b.MemStats().Current)
	}
	if err := s.Free("tiny"); err != nil {
		t.Fatal(err)
	}
	if got := b.MemStats().Current; got != empty {
		t.Errorf("backend memory after Free: %d bytes, %d before the first load", got, empty)
	}
	if _, err := s.Model("tiny"); err == nil {
		t.Error("Model after Free succeeded")
	}
}

func TestOpenModelDirectoryWithoutTokenizer(t *testing.T) {
	lm, err := OpenModel(context.Background(), filepath.Join("model", "testdata", "tiny-qwen3"), ModelOptions{Device: "cpu", DType: "bf16"})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Free()
	if _, err := lm.Generate(context.Background(), "x", GenerateOptions{}); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("Generate without a tokenizer: %v", err)
	}
	if !strings.Contains(lm.HTML(), "per-head q/k RMSNorm") || !strings.Contains(lm.String(), "BF16") {
		t.Errorf("summary: %s\n%s", lm, lm.HTML())
	}
	if _, err := OpenModel(context.Background(), "no/such/dir", ModelOptions{Device: "cpu"}); err == nil {
		t.Error("OpenModel of a missing directory succeeded")
	}
}
