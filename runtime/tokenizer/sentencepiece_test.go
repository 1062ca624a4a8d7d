package tokenizer

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// tinySPM is a hand-made SentencePiece vocabulary: ids 0-2 control, 3-4 user-defined, byte tokens
// for 'A' (0x41) and the bytes of "é" (0xC3 0xA9) only, and a few pieces whose scores make the
// merge order observable.
func tinySPM(t *testing.T, prefix bool) *SentencePiece {
	t.Helper()
	type e struct {
		tok   string
		score float32
		typ   int32
	}
	vocab := []e{
		{"<unk>", 0, TokenTypeUnknown}, {"<s>", 0, TokenTypeControl}, {"</s>", 0, TokenTypeControl},
		{"<sep>", 0, TokenTypeUserDefined}, {"\n\n", 0, TokenTypeUserDefined},
		{"<0x41>", 0, TokenTypeByte}, {"<0xC3>", 0, TokenTypeByte}, {"<0xA9>", 0, TokenTypeByte},
		{"▁", -1, 1}, {"a", -1, 1}, {"b", -1, 1}, {"c", -1, 1},
		{"ab", -5, 1},   // 12
		{"bc", -2, 1},   // 13: scores higher than ab, so "abc" merges b+c first
		{"abc", -3, 1},  // 14
		{"▁a", -4, 1},   // 15
		{"▁abc", -6, 1}, // 16: reachable only as ▁a + bc? no: pieces must be ▁a|bc (not a token) or ▁|abc
	}
	cfg := SentencePieceConfig{BOS: 1, EOS: 2, Unknown: 0, Pad: -1, AddBOS: true, AddSpacePrefix: prefix}
	for _, v := range vocab {
		cfg.Tokens = append(cfg.Tokens, v.tok)
		cfg.Scores = append(cfg.Scores, v.score)
		cfg.Types = append(cfg.Types, v.typ)
	}
	tok, err := NewSentencePiece(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSentencePieceTiny(t *testing.T) {
	tok := tinySPM(t, false)
	cases := []struct {
		text    string
		special bool
		want    []int
	}{
		{"abc", false, []int{14}},             // b+c (score -2) first, then a+bc → abc (-3)
		{"ab", false, []int{12}},              //
		{" abc", false, []int{16}},            // ▁ + abc → ▁abc
		{"a abc", true, []int{1, 9, 16}},      // BOS added
		{"ab<sep>c", false, []int{12, 3, 11}}, // user-defined token cut out first
		{"a</s>b", false, []int{9, 2, 10}},    // control tokens recognized in text
		{"a\n\nb", false, []int{9, 4, 10}},    //
		{"A", false, []int{5}},                // byte fallback
		{"é", false, []int{6, 7}},             // two byte tokens
		{"Z", false, []int{0}},                // no byte token for 'Z': unknown
		{"ZZZa", false, []int{0, 9}},          // consecutive unknowns fuse
		{"\xff", false, []int{0}},             // invalid UTF-8 byte without a byte token
		{"", true, []int{1}},
		{"", false, nil},
	}
	for _, c := range cases {
		got := tok.Encode(c.text, c.special)
		if !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("Encode(%q, %v) = %v, want %v", c.text, c.special, got, c.want)
		}
	}
	pre := tinySPM(t, true)
	if got := pre.Encode("abc", false); !reflect.DeepEqual(got, []int{16}) {
		t.Errorf("with space prefix: Encode(abc) = %v, want [16]", got)
	}
	if got := pre.Encode("<sep>abc", false); !reflect.DeepEqual(got, []int{3, 14}) {
		t.Errorf("with space prefix after a special token: %v, want [3 14] (prefix only at the start)", got)
	}
	decodes := []struct {
		ids  []int
		skip bool
		want string
	}{
		{[]int{1, 9, 16}, false, "<s>a abc"},
		{[]int{1, 9, 16, 2}, true, "a abc"},
		{[]int{6, 7, 9}, false, "éa"},
		{[]int{6, 9}, false, "\uFFFDa"},               // a lone lead byte
		{[]int{6, 6, 7}, false, "\uFFFD\uFFFD\uFFFD"}, // invalid run: one U+FFFD per byte
		{[]int{3, 99, -1, 4}, false, "<sep>\n\n"},     // unknown ids skipped
	}
	for _, d := range decodes {
		if got := tok.Decode(d.ids, d.skip); got != d.want {
			t.Errorf("Decode(%v, %v) = %q, want %q", d.ids, d.skip, got, d.want)
		}
	}
	if id, ok := tok.TokenID("▁abc"); !ok || id != 16 {
		t.Errorf("TokenID(▁abc) = %d, %v", id, ok)
	}
	if tok.VocabSize() != 17 || tok.BOS() != 1 || !reflect.DeepEqual(tok.EOS(), []int{2}) || tok.Pad() != -1 {
		t.Errorf("VocabSize %d BOS %d EOS %v Pad %d", tok.VocabSize(), tok.BOS(), tok.EOS(), tok.Pad())
	}
}

func TestSentencePieceConfigErrors(t *testing.T) {
	base := func() SentencePieceConfig {
		return SentencePieceConfig{Tokens: []string{"a", "b"}, Scores: []float32{0, 0}, BOS: -1, EOS: -1, Unknown: -1, Pad: -1}
	}
	bad := []func(*SentencePieceConfig){
		func(c *SentencePieceConfig) { c.Tokens = nil; c.Scores = nil },
		func(c *SentencePieceConfig) { c.Scores = []float32{0} },
		func(c *SentencePieceConfig) { c.Types = []int32{1} },
		func(c *SentencePieceConfig) { c.BOS = 2 },
		func(c *SentencePieceConfig) { c.ExtraEOS = []int{5} },
	}
	for i, f := range bad {
		c := base()
		f(&c)
		if _, err := NewSentencePiece(c); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}

// FuzzGemmaEncode: Encode never panics, returns ids inside the vocabulary, and for valid UTF-8
// without ▁ decoding gives the text back.
func FuzzGemmaEncode(f *testing.F) {
	tok := loadGGUFVocab(f, "gemma3-270m")
	for _, s := range []string{"Hello world", "  a\n\n\tb <start_of_turn>user\n", "héllo 😀", "\xff\xfe", "<0x41>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d outside the vocabulary", id)
			}
		}
		if utf8.ValidString(s) && !strings.Contains(s, "▁") {
			if got := tok.Decode(ids[1:], false); got != s {
				t.Fatalf("round trip of %q gave %q (ids %v)", s, got, ids)
			}
		}
	})
}

func BenchmarkGemmaEncode(b *testing.B) {
	tok := loadGGUFVocab(b, "gemma3-270m")
	text := strings.Repeat("Operating income rose 3.6% to $348 million in Q2 FY2024, while diluted EPS was $1.25. ", 20)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = tok.Encode(text, true)
	}
	_ = fmt.Sprint()
}
