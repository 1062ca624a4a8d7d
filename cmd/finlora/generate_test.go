package main

import (
	"path/filepath"
	"testing"
)

func TestGenerateCommandNeedsTokenizer(t *testing.T) {
	dir := filepath.Join("..", "..", "runtime", "model", "testdata", "tiny-llama")
	if err := runGenerate([]string{"--model", dir, "--prompt", "hi"}); err == nil {
		t.Error("generate without tokenizer.json: no error")
	}
	if err := runGenerate([]string{"--prompt", "Revenue", "--max-new-tokens", "3"}); err != nil {
		t.Errorf("generate with the embedded model: %v", err)
	}
}
