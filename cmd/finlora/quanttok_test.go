package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// byteTokenizerJSON is a byte-level BPE tokenizer.json without merges: ids 0-2 are <unk>, <s>,
// </s>, ids 3-258 the 256 bytes (GPT-2's byte-to-unicode alphabet), so every id fits the tiny
// fixtures' vocabulary of 384.
func byteTokenizerJSON(t *testing.T) []byte {
	t.Helper()
	vocab := map[string]int{}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
			r = rune(256 + n)
			n++
		}
		vocab[string(r)] = 3 + b
	}
	vocab["<unk>"], vocab["<s>"], vocab["</s>"] = 0, 1, 2
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 0, "content": "<unk>", "special": true},
			{"id": 1, "content": "<s>", "special": true},
			{"id": 2, "content": "</s>", "special": true},
		},
		"normalizer":    nil,
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":           []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}}},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{}, "unk_token": nil},
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// modelWithTokenizer copies a tiny fixture directory into a temporary one with a byte tokenizer.
func modelWithTokenizer(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), byteTokenizerJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// finlora generate runs on bitsandbytes checkpoints and with --quant (greedy decoding of the
// random tiny model: the quantized models run end to end through the KV-cache path).
func TestGenerateQuantized(t *testing.T) {
	for _, c := range [][]string{
		{"--model", modelWithTokenizer(t, filepath.Join(qtd, "tiny-llama-bnb-nf4"))},
		{"--model", modelWithTokenizer(t, filepath.Join(qtd, "tiny-llama")), "--quant", "int8"},
		{"--model", modelWithTokenizer(t, filepath.Join(qtd, "tiny-llama")), "--quant", "fp4"},
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
		{"--model", modelWithTokenizer(t, filepath.Join(qtd, "tiny-llama")), "--quant", "nf4"},
		{"--model", modelWithTokenizer(t, filepath.Join(qtd, "tiny-llama-bnb-int8"))},
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
