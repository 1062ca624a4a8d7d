package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tokenizer/tokenizertest"
)

// finlora generate runs on bitsandbytes checkpoints and with --quant (greedy decoding of the
// random tiny model: the quantized models run end to end through the KV-cache path).
func TestGenerateQuantized(t *testing.T) {
	for _, c := range [][]string{
		{"--model", tokenizertest.ModelDirWithTokenizer(t, filepath.Join(qtd, "tiny-llama-bnb-nf4"))},
		{"--model", tokenizertest.ModelDirWithTokenizer(t, filepath.Join(qtd, "tiny-llama")), "--quant", "int8"},
		{"--model", tokenizertest.ModelDirWithTokenizer(t, filepath.Join(qtd, "tiny-llama")), "--quant", "fp4"},
	} {
		if err := runGenerate(append(c, "--prompt", "Revenue rose", "--max-new-tokens", "5")); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

// finlora eval --quant nf4 and on the int8 checkpoint: the FinLoRA evaluation runs on quantized
// bases (the random model's answers are noise; the model line names the precision).
func TestEvalQuantized(t *testing.T) {
	data := filepath.Join("..", "..", "runtime", "eval", "testdata", "fpb_12.jsonl")
	for _, c := range [][]string{
		{"--model", tokenizertest.ModelDirWithTokenizer(t, filepath.Join(qtd, "tiny-llama")), "--quant", "nf4"},
		{"--model", tokenizertest.ModelDirWithTokenizer(t, filepath.Join(qtd, "tiny-llama-bnb-int8"))},
	} {
		got, err := captureStdout(t, func() error {
			return runEval(append(c, "--task", "fpb", "--data", data, "--limit", "4", "--batch-size", "2", "--max-new-tokens", "3"))
		})
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if !strings.Contains(got, "questions         4") || (len(c) == 4 && !strings.Contains(got, "(nf4)")) {
			t.Errorf("%v: output\n%s", c, got)
		}
	}
}
