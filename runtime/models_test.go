package runtime

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelsTinyLifecycle(t *testing.T) {
	var r Models
	ctx := context.Background()
	lm, err := r.Load(ctx, "tiny", TinyModelPath, ModelOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
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
	if _, err := r.Load(ctx, "tiny", TinyModelPath, ModelOptions{Device: "cpu"}); err != nil {
		t.Fatal(err)
	}
	if lm.Model != nil || b.MemStats().Current != before {
		t.Errorf("replaced model not freed: %v, memory %d → %d", lm, before, b.MemStats().Current)
	}
	if got := r.Names(); len(got) != 1 || got[0] != "tiny" {
		t.Errorf("Names = %v", got)
	}
	if err := r.Free("tiny"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get("tiny"); err == nil {
		t.Error("Get after Free succeeded")
	}
}

func TestLoadModelDirectoryWithoutTokenizer(t *testing.T) {
	lm, err := LoadModel(context.Background(), filepath.Join("model", "testdata", "tiny-qwen3"), ModelOptions{Device: "cpu", DType: "bf16"})
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
	if _, err := LoadModel(context.Background(), "no/such/dir", ModelOptions{Device: "cpu"}); err == nil {
		t.Error("LoadModel of a missing directory succeeded")
	}
}
