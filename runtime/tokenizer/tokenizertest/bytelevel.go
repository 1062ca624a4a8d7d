// Package tokenizertest holds tokenizer fixtures shared by tests of several packages.
package tokenizertest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// ByteLevelJSON returns a byte-level BPE tokenizer.json without merges: ids 0-2 are <unk>, <s>,
// </s>, ids 3-258 the 256 bytes (GPT-2's byte-to-unicode alphabet), so every id fits the tiny
// fixtures' vocabulary of 384. The post-processor puts <s> before every sequence.
func ByteLevelJSON() []byte {
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
		panic("tokenizertest: marshal a literal document: " + err.Error()) // maps of strings and ints only
	}
	return js
}

// ModelDirWithTokenizer copies config.json and model.safetensors of the model directory src into a
// new temporary directory of t, adds ByteLevelJSON as tokenizer.json, and returns its path.
func ModelDirWithTokenizer(t testing.TB, src string) string {
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
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), ByteLevelJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
