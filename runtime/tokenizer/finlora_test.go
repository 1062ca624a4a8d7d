package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// sharedFinLoRA is FinLoRA's data folder in ../shared beside the repository (CI has it; a bare
// clone may not).
const sharedFinLoRA = "../../../shared/data/finlora"

// eachJSONLRow calls fn with the 1-based line number and the decoded object of every line of the
// JSONL file at path; a line that is not a JSON object fails the test.
func eachJSONLRow(tb testing.TB, path string, fn func(line int, row map[string]any)) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			tb.Fatalf("%s:%d: %v", path, line, err)
		}
		fn(line, row)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// TestFinLoRARoundTrip encodes every context and target of the FinLoRA test and train files in
// ../shared (skipped when absent) and checks decode(encode(x)) == x and that no id leaves the
// vocabulary. The ids themselves are checked against HF in TestLlama31MatchesHF.
func TestFinLoRARoundTrip(t *testing.T) {
	files, _ := filepath.Glob(sharedFinLoRA + "/*/*.jsonl")
	if len(files) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI without ../shared/data/finlora")
		}
		t.Skip("../shared/data/finlora not found")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	tk := llama(t)
	texts, bytes := 0, 0
	for _, path := range files {
		eachJSONLRow(t, path, func(line int, row map[string]any) {
			for _, field := range []string{"context", "target"} {
				s, ok := row[field].(string)
				if !ok {
					continue
				}
				ids := tk.Encode(s, true)
				for _, id := range ids {
					if id < 0 || id >= tk.VocabSize() {
						t.Fatalf("%s:%d %s: id %d out of range", path, line, field, id)
					}
				}
				if got := tk.Decode(ids[1:], false); got != s {
					t.Errorf("%s:%d %s: round trip differs", path, line, field)
				}
				texts++
				bytes += len(s)
			}
		})
	}
	t.Logf("%d texts, %d bytes from %d files", texts, bytes, len(files))
}
