package tokenizer

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"
)

// TestConcurrentEncode encodes the reference texts from several goroutines at once, with the cache
// cleared between rounds, and checks every result (run with -race to check the cache's locking).
func TestConcurrentEncode(t *testing.T) {
	tk := llama(t)
	var rows []refRow
	if err := json.Unmarshal(readGzip(t, "testdata/tokenizer-llama-3.1-reference.json.gz"), &rows); err != nil {
		t.Fatal(err)
	}
	// A tokenizer without ignore_merges, so every word goes through the cache.
	s := synth{extra: []string{"ab", "Ġa"}, merges: [][2]string{{"a", "b"}, {"Ġ", "a"}}}
	small := mustLoad(t, s, "", "")
	texts := []string{"ab ab a b", "x ab", "abab abab", "a a a"}
	want := make([][]int, len(texts))
	for i, x := range texts {
		want[i] = small.Encode(x, false)
	}
	for round := 0; round < 3; round++ {
		tk.model.clearCache()
		small.model.clearCache()
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < len(rows); i += 4 {
					if got := tk.Encode(rows[i].Text, true); !reflect.DeepEqual(got, rows[i].IDs) {
						t.Errorf("row %d differs under concurrency", i)
					}
				}
				for k := 0; k < 200; k++ {
					i := (k + g) % len(texts)
					if got := small.Encode(texts[i], false); !reflect.DeepEqual(got, want[i]) {
						t.Errorf("%q: %v, want %v", texts[i], got, want[i])
					}
				}
			}()
		}
		wg.Wait()
	}
}
