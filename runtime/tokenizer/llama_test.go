package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"sync"
	"testing"
	"unicode/utf8"
)

func readGzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	llamaOnce sync.Once
	llamaTok  *BPE
	llamaErr  error
)

// llama loads testdata/llama-3.1 (tokenizer.json stored gzipped) once per test binary.
func llama(t testing.TB) *BPE {
	t.Helper()
	llamaOnce.Do(func() {
		cfg, err := os.ReadFile("testdata/llama-3.1/tokenizer_config.json")
		if err != nil {
			llamaErr = err
			return
		}
		llamaTok, llamaErr = Load(readGzip(t, "testdata/llama-3.1/tokenizer.json.gz"), cfg, nil)
	})
	if llamaErr != nil {
		t.Fatal(llamaErr)
	}
	return llamaTok
}

type refRow struct {
	Text         string `json:"text"`
	IDs          []int  `json:"ids"`
	IDsNoSpecial []int  `json:"ids_no_special"`
}

func TestLlama31MatchesHF(t *testing.T) {
	tk := llama(t)
	var rows []refRow
	if err := json.Unmarshal(readGzip(t, "testdata/tokenizer-llama-3.1-reference.json.gz"), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 300 {
		t.Fatalf("only %d reference rows", len(rows))
	}
	bad := 0
	for i, r := range rows {
		got := tk.Encode(r.Text, true)
		if !reflect.DeepEqual(got, r.IDs) {
			bad++
			if bad < 5 {
				t.Errorf("row %d %q:\n got %v\nwant %v", i, trunc(r.Text), got, r.IDs)
			}
		}
		got = tk.Encode(r.Text, false)
		if !reflect.DeepEqual(got, r.IDsNoSpecial) {
			bad++
			if bad < 5 {
				t.Errorf("row %d %q (no special):\n got %v\nwant %v", i, trunc(r.Text), got, r.IDsNoSpecial)
			}
		}
		if dec := tk.Decode(r.IDsNoSpecial, false); dec != r.Text {
			t.Errorf("row %d: decode(ids) = %q, want %q", i, trunc(dec), trunc(r.Text))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d encodings differ from HF tokenizers", bad, 2*len(rows))
	}
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func TestLlama31Specials(t *testing.T) {
	tk := llama(t)
	if tk.VocabSize() != 128256 {
		t.Errorf("VocabSize %d", tk.VocabSize())
	}
	bos, _ := tk.TokenID("<|begin_of_text|>")
	eot, _ := tk.TokenID("<|eot_id|>")
	if tk.BOS() != bos || bos != 128000 {
		t.Errorf("BOS %d, <|begin_of_text|> %d", tk.BOS(), bos)
	}
	if !reflect.DeepEqual(tk.EOS(), []int{eot}) || eot != 128009 {
		t.Errorf("EOS %v, <|eot_id|> %d", tk.EOS(), eot)
	}
	if tk.Pad() != -1 {
		t.Errorf("Pad %d, want -1 (none configured)", tk.Pad())
	}
	if id, ok := tk.TokenID("Ġthe"); !ok || tk.Decode([]int{id}, false) != " the" {
		t.Errorf("TokenID(Ġthe) = %d %v", id, ok)
	}
	ids := tk.Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true)
	if got := tk.Decode(ids, true); got != "user\n\nHi" {
		t.Errorf("Decode skipSpecial = %q", got)
	}
	if got := tk.Decode(ids, false); got != "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" {
		t.Errorf("Decode = %q", got)
	}
	if tk.ChatTemplate() == "" {
		t.Error("no chat template")
	}
	if got := tk.Decode([]int{-1, 1 << 30, 40}, false); got != tk.Decode([]int{40}, false) {
		t.Errorf("out-of-range ids not skipped: %q", got)
	}
}

func TestLlama31InvalidUTF8RoundTrip(t *testing.T) {
	tk := llama(t)
	for _, s := range []string{"\xff", "a\xffb", "\xe2\x82", "caf\xc3", "\xc3\xa9\x80 x", "<|eot_id|\xff>", string([]byte{0, 1, 2, 0x7f, 0xfe})} {
		ids := tk.Encode(s, false)
		if got := tk.Decode(ids, false); got != s {
			t.Errorf("%q -> %v -> %q", s, ids, got)
		}
		if utf8.ValidString(s) {
			t.Errorf("test string %q is valid UTF-8", s)
		}
	}
}
