package tokenizer

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// synth builds a tokenizer.json: the 256 byte tokens (id = byte value), then extra tokens (ids
// 256..), merges (string form unless arrayMerges), added tokens (ids from 1000), and the given
// JSON for normalizer, pre_tokenizer and post_processor.
type synth struct {
	extra        []string // byte-level spellings
	merges       [][2]string
	arrayMerges  bool
	ignoreMerges bool
	added        []addedToken
	normalizer   string
	pre          string
	post         string
	decoder      string
}

func (s synth) json(t *testing.T) []byte {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	for i, e := range s.extra {
		vocab[e] = 256 + i
	}
	var merges []any
	for _, m := range s.merges {
		if s.arrayMerges {
			merges = append(merges, []string{m[0], m[1]})
		} else {
			merges = append(merges, m[0]+" "+m[1])
		}
	}
	raw := func(s, def string) json.RawMessage {
		if s == "" {
			s = def
		}
		return json.RawMessage(s)
	}
	doc := map[string]any{
		"version":        "1.0",
		"added_tokens":   s.added,
		"normalizer":     raw(s.normalizer, "null"),
		"pre_tokenizer":  raw(s.pre, `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"`+jsonEsc(patternOf(patLlama3))+`"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}`),
		"post_processor": raw(s.post, "null"),
		"decoder":        raw(s.decoder, `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`),
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": s.ignoreMerges,
			"dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func patternOf(p splitPattern) string {
	for k, v := range knownPatterns {
		if v == p {
			return k
		}
	}
	panic("no pattern")
}

func jsonEsc(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func mustLoad(t *testing.T, s synth, cfg, gen string) *BPE {
	t.Helper()
	var c, g []byte
	if cfg != "" {
		c = []byte(cfg)
	}
	if gen != "" {
		g = []byte(gen)
	}
	tk, err := Load(s.json(t), c, g)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestMergesAndIgnoreMerges(t *testing.T) {
	// Tokens: 256 "ab", 257 "abc" (no merge makes it), 258 "Ġa", 259 "bc", 260 "Ġab".
	base := synth{
		extra:  []string{"ab", "abc", "Ġa", "bc", "Ġab"},
		merges: [][2]string{{"b", "c"}, {"a", "b"}, {"Ġ", "a"}, {"Ġa", "b"}},
	}
	cases := []struct {
		name   string
		ignore bool
		array  bool
		text   string
		want   []int
	}{
		// "bc" (rank 0) merges before "ab" (rank 1): a|bc.
		{"rank order", false, false, "abc", []int{'a', 259}},
		{"rank order, array merges", false, true, "abc", []int{'a', 259}},
		{"ignore_merges takes the whole word", true, false, "abc", []int{257}},
		{"ignore_merges, word not in vocab", true, false, "abca", []int{'a', 259, 'a'}},
		// leftmost among equal ranks: "abab" -> ab|ab
		{"leftmost first", false, false, "abab", []int{256, 256}},
		// " ab": "a b" (rank 1) beats "Ġ a" (rank 2), and no rule joins Ġ with ab.
		{"space prefix, lower rank first", false, false, "x ab", []int{'x', ' ', 256}},
		{"space prefix merges", false, false, "x ac", []int{'x', 258, 'c'}},
		{"unmerged bytes", false, false, "zz", []int{'z', 'z'}},
	}
	for _, c := range cases {
		s := base
		s.ignoreMerges, s.arrayMerges = c.ignore, c.array
		tk := mustLoad(t, s, "", "")
		if got := tk.Encode(c.text, false); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", c.name, c.text, got, c.want)
		}
		if got := tk.Decode(tk.Encode(c.text, false), false); got != c.text {
			t.Errorf("%s: round trip %q -> %q", c.name, c.text, got)
		}
	}
}

func TestAddedTokenRules(t *testing.T) {
	added := []addedToken{
		{ID: 1000, Content: "<s>", Special: true},
		{ID: 1001, Content: "<sep>", Special: true, LStrip: true, RStrip: true},
		{ID: 1002, Content: "word", SingleWord: true},
		{ID: 1003, Content: "<s>x", Special: false}, // longer match wins at the same start
		{ID: 1004, Content: "é", Normalized: true},
	}
	s := synth{added: added, normalizer: `{"type":"NFC"}`,
		post: `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],
		"special_tokens":{"<s>":{"id":"<s>","ids":[1000],"tokens":["<s>"]},"</s>":{"id":"</s>","ids":[1005],"tokens":["</s>"]}}}`}
	s.added = append(s.added, addedToken{ID: 1005, Content: "</s>", Special: true})
	tk := mustLoad(t, s, `{"bos_token":{"content":"<s>","lstrip":false},"eos_token":"</s>","pad_token":"<sep>"}`,
		`{"eos_token_id":[1005,1002,7],"pad_token_id":3}`)
	bytesOf := func(s string) []int {
		var out []int
		for i := 0; i < len(s); i++ {
			out = append(out, int(s[i]))
		}
		return out
	}
	cat := func(parts ...[]int) []int {
		out := []int{}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name string
		text string
		want []int
	}{
		{"special in text", "a<s>b", cat(bytesOf("a"), []int{1000}, bytesOf("b"))},
		{"longest at same start", "<s>xy", cat([]int{1003}, bytesOf("y"))},
		{"lstrip and rstrip eat spaces", "a  <sep>  b", cat(bytesOf("a"), []int{1001}, bytesOf("b"))},
		{"single_word alone", "a word b", cat(bytesOf("a "), []int{1002}, bytesOf(" b"))},
		{"single_word inside a word is text", "swords", bytesOf("swords")},
		// NFC turns e + U+0301 into é, which then matches the normalized added token.
		{"normalized token after NFC", "e\u0301!", cat([]int{1004}, bytesOf("!"))},
	}
	for _, c := range cases {
		if got := tk.Encode(c.text, false); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", c.name, c.text, got, c.want)
		}
	}
	if got, want := tk.Encode("hi", true), cat([]int{1000}, bytesOf("hi"), []int{1005}); !reflect.DeepEqual(got, want) {
		t.Errorf("template: %v, want %v", got, want)
	}
	if got := tk.Decode(tk.Encode("a<sep>b word", true), true); got != "ab word" {
		t.Errorf("Decode skipSpecial = %q (non-special added tokens stay)", got)
	}
	if tk.BOS() != 1000 || tk.Pad() != 1001 || !reflect.DeepEqual(tk.EOS(), []int{1005, 7, 1002}) {
		t.Errorf("BOS %d Pad %d EOS %v", tk.BOS(), tk.Pad(), tk.EOS())
	}
	if tk.VocabSize() != 1006 {
		t.Errorf("VocabSize %d", tk.VocabSize())
	}
	if !tk.IsSpecial(1000) || tk.IsSpecial(1002) || tk.IsSpecial(5000) {
		t.Error("IsSpecial wrong")
	}
}

func TestQwenDigitsAndGPT2Prefix(t *testing.T) {
	qwen := synth{pre: `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"` + jsonEsc(patternOf(patQwen2)) +
		`"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]}`,
		extra: []string{"12"}, merges: [][2]string{{"1", "2"}}}
	tk := mustLoad(t, qwen, "", "")
	// Each digit is its own piece, so the merge "1 2" never applies across digits.
	if got, want := tk.Encode("12", false), []int{'1', '2'}; !reflect.DeepEqual(got, want) {
		t.Errorf("qwen digits: %v, want %v", got, want)
	}
	llama := qwen
	llama.pre = ""
	if got, want := mustLoad(t, llama, "", "").Encode("12", false), []int{256}; !reflect.DeepEqual(got, want) {
		t.Errorf("llama digits: %v, want %v", got, want)
	}
	gpt2 := synth{pre: `{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`,
		extra: []string{"Ġh"}, merges: [][2]string{{"Ġ", "h"}}}
	if got, want := mustLoad(t, gpt2, "", "").Encode("hi", false), []int{256, 'i'}; !reflect.DeepEqual(got, want) {
		t.Errorf("gpt2 prefix space: %v, want %v", got, want)
	}
}

func TestLoadRejects(t *testing.T) {
	cases := []struct {
		name string
		mod  func(m map[string]any)
		want string
	}{
		{"model type", func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" }, "WordPiece"},
		{"metaspace", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁"}
		}, "SentencePiece-style"},
		{"unknown regex", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\w+`}, "behavior": "Isolated"}
		}, `\\w+`},
		{"no byte level", func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": patternOf(patLlama3)}, "behavior": "Isolated"}
		}, "ByteLevel"},
		{"bad merge", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []any{"Ġ zz"} }, "zz"},
		{"decoder", func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} }, "decoder"},
		{"normalizer", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Lowercase"} }, "Lowercase"},
	}
	for _, c := range cases {
		var m map[string]any
		json.Unmarshal(synth{}.json(t), &m)
		c.mod(m)
		b, _ := json.Marshal(m)
		_, err := Load(b, nil, nil)
		if err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(c.want, `\\`, `\`)) {
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.want)
		}
	}
	if _, err := Load(synth{}.json(t), []byte(`{"bos_token":"<nope>"}`), nil); err == nil || !strings.Contains(err.Error(), "<nope>") {
		t.Errorf("unknown bos_token: %v", err)
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Error("LoadDir of an empty dir: no error")
	}
}

func TestBOSFallback(t *testing.T) {
	s := synth{added: []addedToken{{ID: 1000, Content: "<bos>", Special: true}},
		post: `{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<bos>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
		"special_tokens":{"<bos>":{"id":"<bos>","ids":[1000],"tokens":["<bos>"]}}}`}
	cases := []struct {
		cfg  string
		want int
	}{
		{"", 1000},                      // no tokenizer_config.json
		{`{"eos_token":"<bos>"}`, 1000}, // config without bos_token
		{`{"bos_token":null}`, -1},      // explicitly none
		{`{"bos_token":"a"}`, 'a'},      // configured
	}
	for _, c := range cases {
		if got := mustLoad(t, s, c.cfg, "").BOS(); got != c.want {
			t.Errorf("config %q: BOS %d, want %d", c.cfg, got, c.want)
		}
	}
	if got := mustLoad(t, synth{}, "", "").BOS(); got != -1 {
		t.Errorf("no template, no config: BOS %d", got)
	}
}
