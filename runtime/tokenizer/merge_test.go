package tokenizer

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMergeHeapEqualsScan checks the two merge loops agree on random words of the Llama 3.1 vocabulary.
func TestMergeHeapEqualsScan(t *testing.T) {
	m := llama(t).model
	r := rand.New(rand.NewSource(3))
	alphabets := []string{"abcdefghij", "aaab", "the quick", "ééàü", "0123456789", "ab\xff\xfe", "xyz日本"}
	for i := 0; i < 3000; i++ {
		a := alphabets[i%len(alphabets)]
		var sb strings.Builder
		for n := 2 + r.Intn(120); n > 0; n-- {
			sb.WriteByte(a[r.Intn(len(a))])
		}
		w := sb.String()
		syms := func() []int32 {
			out := make([]int32, len(w))
			for j := 0; j < len(w); j++ {
				out[j] = m.byteID[w[j]]
			}
			return out
		}
		if got, want := m.mergeHeap(syms()), m.mergeScan(syms()); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: heap %v, scan %v", w, got, want)
		}
	}
}

// TestLongWordIsNotQuadratic encodes a 200 kB run of letters (one pre-token): with the heap it takes
// milliseconds; the scan loop would take about a minute.
func TestLongWordIsNotQuadratic(t *testing.T) {
	tk := llama(t)
	s := strings.Repeat("ab", 100000)
	start := time.Now()
	ids := tk.Encode(s, false)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("200 kB word took %v", d)
	}
	if tk.Decode(ids, false) != s {
		t.Error("round trip failed")
	}
}
