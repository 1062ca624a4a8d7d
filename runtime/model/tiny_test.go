package model

import (
	"testing"

	"github.com/finlora/finlora/runtime/tensor/cpu"
)

func TestTinyRandomDeterministic(t *testing.T) {
	b := cpu.New(0)
	logits := func(seed uint64) []float32 {
		m, err := TinyRandom(b, seed)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		ids := ByteTokenizer{}.Encode("Revenue rose 5%.", true)
		in := make([]int32, len(ids))
		for i, id := range ids {
			in[i] = int32(id)
		}
		return hostLogits(t, m, Input{IDs: in, B: 1}, nil)
	}
	a, a2, c := logits(1), logits(1), logits(2)
	if maxRelErr(a, a2) != 0 {
		t.Error("TinyRandom(1) twice gives different logits")
	}
	if maxRelErr(a, c) == 0 {
		t.Error("TinyRandom(1) and TinyRandom(2) give equal logits")
	}
	if len(a) != 17*ByteVocabSize {
		t.Errorf("%d logits", len(a))
	}
}

func TestByteTokenizer(t *testing.T) {
	tk := ByteTokenizer{}
	for _, s := range []string{"", "plain", "héllo ✓", "a</s>b<pad>", "\xff\x00"} {
		ids := tk.Encode(s, true)
		if ids[0] != ByteBOS {
			t.Errorf("Encode(%q) does not start with BOS: %v", s, ids)
		}
		if got := tk.Decode(ids[1:], false); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	if got := tk.Decode(tk.Encode("a</s>b", false), true); got != "ab" {
		t.Errorf("skipSpecial: %q", got)
	}
}
