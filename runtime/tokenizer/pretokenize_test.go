package tokenizer

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// TestSplitMatchesRegex checks the hand-written scanners against the splits the Python regex module
// computes with the original patterns (testdata/splits.json, made by testdata/make_splits.py).
func TestSplitMatchesRegex(t *testing.T) {
	raw, err := os.ReadFile("testdata/splits.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	pats := map[string]splitPattern{"llama3": patLlama3, "qwen2": patQwen2, "gpt2": patGPT2}
	bad := 0
	for _, row := range rows {
		text := row["text"].(string)
		for name, p := range pats {
			want := []string{}
			for _, w := range row[name].([]any) {
				want = append(want, w.(string))
			}
			got := []string{}
			runSplit(p, text, func(s string) { got = append(got, s) })
			if !reflect.DeepEqual(got, want) {
				bad++
				if bad < 10 {
					t.Errorf("%s %q:\n got %q\nwant %q", name, text, got, want)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d splits differ", bad, 3*len(rows))
	}
}

// FuzzSplit checks that the scanners never panic and cover their input exactly, with non-empty pieces.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"Hello world", "I'm  \n\n x", "a\xffb", "123456", " \t\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []splitPattern{patLlama3, patQwen2, patGPT2} {
			var all string
			runSplit(p, s, func(piece string) {
				if piece == "" {
					t.Fatalf("pattern %d: empty piece in %q", p, s)
				}
				all += piece
			})
			if all != s {
				t.Fatalf("pattern %d: pieces of %q join to %q", p, s, all)
			}
		}
	})
}
