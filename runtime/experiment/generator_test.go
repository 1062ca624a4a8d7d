package experiment

import (
	"context"
	"github.com/finlora/finlora/runtime/modeltest"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	_ "github.com/finlora/finlora/runtime/tensor/cpu"
)

// installedGemma returns the installed Gemma 3 270M file (modeltest.Require: skipped without one,
// failing with FINLORA_REQUIRE_MODEL=1, as in CI).
func installedGemma(t *testing.T) string { return modeltest.Require(t, "gemma3-270m") }

// Batched, left-padded greedy generation gives each prompt the text it gets alone.
func TestGemma3GeneratorBatchEqualsSingle(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := context.Background()
	bb, err := LoadBackbone(ctx, installedGemma(t), nil, tensor.BF16)
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	prompts := []string{
		"Instruction: What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}.\nInput: Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.\nAnswer: ",
		"The capital of France is",
		"Instruction: What is the sentiment of this tweet? Please choose an answer from {negative/neutral/positive}.\nInput: $AAPL down 3%\nAnswer: ",
	}
	gen, _, err := bb.Generator(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := gen.GenerateGreedy(ctx, prompts, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		one, err := gen.GenerateGreedy(ctx, []string{p}, 8)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d: batch %q, alone %q", i, batch[i], one[0])
		if one[0] != batch[i] {
			t.Errorf("prompt %d: batched %q, alone %q", i, batch[i], one[0])
		}
	}
}
