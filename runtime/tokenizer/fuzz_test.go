package tokenizer

import (
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks on the Llama 3.1 tokenizer that Encode never panics, that decode(encode(x)) == x
// (for any bytes: the byte-level alphabet covers all of them), and that every id is in range.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello world", "I'm  \n\n x", "a\xffb", "<|eot_id|>x<|begin_of_text|>", "naïve 😀 123456",
		"\t\r\n \u3000", "$AAPL @ 189.82 — €3.4bn"} {
		f.Add(s)
	}
	tk := llama(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, special := range []bool{false, true} {
			ids := tk.Encode(s, special)
			for _, id := range ids {
				if id < 0 || id >= tk.VocabSize() {
					t.Fatalf("id %d out of range for %q", id, s)
				}
			}
			if special {
				if len(ids) == 0 || ids[0] != tk.BOS() {
					t.Fatalf("encode(%q, true) does not start with BOS: %v", s, ids)
				}
				ids = ids[1:]
			}
			got := tk.Decode(ids, false)
			if got != s {
				t.Fatalf("decode(encode(%q, %v)) = %q (valid UTF-8: %v)", s, special, got, utf8.ValidString(s))
			}
		}
	})
}
