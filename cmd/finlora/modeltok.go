package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/finlora/finlora/runtime/tokenizer"
)

// modelTokenizer loads the tokenizer of the Hugging Face model directory dir (its tokenizer.json)
// or of a .gguf file (from its metadata) for the subcommand cmd; a directory without
// tokenizer.json is an error saying that cmd needs it.
func modelTokenizer(cmd, dir string) (tokenizer.Tokenizer, error) {
	if isGGUF(dir) {
		return tokenizer.LoadGGUF(dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		return nil, fmt.Errorf("model directory %s has no tokenizer.json: %s needs the model's tokenizer", dir, cmd)
	}
	return tokenizer.LoadDir(dir)
}
