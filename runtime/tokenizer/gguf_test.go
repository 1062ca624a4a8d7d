package tokenizer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/finlora/finlora/runtime/gguf"
)

// ggufRef is testdata/gguf/<model>.json.gz, made by transformers from the real GGUF file (see
// testdata/gguf/README.md).
type ggufRef struct {
	Meta struct {
		BOS, EOS, Pad, Unk *int
		VocabSize          int `json:"vocab_size"`
	} `json:"meta"`
	Texts []string `json:"texts"`
	Rows  []struct {
		IDs         []int  `json:"ids"`
		IDsPlain    []int  `json:"ids_plain"`
		Decoded     string `json:"decoded"`
		DecodedSkip string `json:"decoded_skip"`
	} `json:"rows"`
}

// loadGGUFVocab builds the tokenizer from the vocabulary-only GGUF copy of a model's metadata.
func loadGGUFVocab(t testing.TB, model string) Tokenizer {
	t.Helper()
	f, err := gguf.FromBytes(model, readGzip(t, "testdata/gguf/"+model+".vocab.gguf.gz"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGGUFTokenizersMatchTransformers(t *testing.T) {
	for _, c := range []struct {
		model    string
		wantType string
	}{{"gemma3-270m", "*tokenizer.SentencePiece"}, {"smollm2-135m", "*tokenizer.BPE"}} {
		t.Run(c.model, func(t *testing.T) {
			tok := loadGGUFVocab(t, c.model)
			if got := fmt.Sprintf("%T", tok); got != c.wantType {
				t.Errorf("type %s, want %s", got, c.wantType)
			}
			var ref ggufRef
			if err := json.Unmarshal(readGzip(t, "testdata/gguf/"+c.model+".json.gz"), &ref); err != nil {
				t.Fatal(err)
			}
			if tok.VocabSize() != ref.Meta.VocabSize {
				t.Errorf("VocabSize %d, transformers %d", tok.VocabSize(), ref.Meta.VocabSize)
			}
			if ref.Meta.BOS != nil && tok.BOS() != *ref.Meta.BOS {
				t.Errorf("BOS %d, transformers %d", tok.BOS(), *ref.Meta.BOS)
			}
			if eos := tok.EOS(); ref.Meta.EOS != nil && (len(eos) == 0 || eos[0] != *ref.Meta.EOS) {
				t.Errorf("EOS %v, transformers %d", eos, *ref.Meta.EOS)
			}
			if ref.Meta.Pad != nil && tok.Pad() != *ref.Meta.Pad {
				t.Errorf("Pad %d, transformers %d", tok.Pad(), *ref.Meta.Pad)
			}
			bad, total := 0, 0
			for i, text := range ref.Texts {
				row := ref.Rows[i]
				for _, k := range []struct {
					name    string
					special bool
					want    []int
				}{{"ids", true, row.IDs}, {"ids_plain", false, row.IDsPlain}} {
					got := tok.Encode(text, k.special)
					total += len(k.want)
					if !reflect.DeepEqual(got, k.want) && !(len(got) == 0 && len(k.want) == 0) {
						bad++
						if bad <= 5 {
							t.Errorf("text %d %q %s:\n got  %v\n want %v", i, ggufTrunc(text), k.name, ggufHead(got), ggufHead(k.want))
						}
					}
				}
				if got := tok.Decode(row.IDs, false); got != row.Decoded {
					bad++
					if bad <= 5 {
						t.Errorf("text %d decode: got %q, want %q", i, ggufTrunc(got), ggufTrunc(row.Decoded))
					}
				}
				if got := tok.Decode(row.IDs, true); got != row.DecodedSkip {
					bad++
					if bad <= 5 {
						t.Errorf("text %d decode skip: got %q, want %q", i, ggufTrunc(got), ggufTrunc(row.DecodedSkip))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d mismatches over %d texts", bad, len(ref.Texts))
			}
			t.Logf("%s: %d texts, %d reference ids, %d mismatches", c.model, len(ref.Texts), total, bad)
		})
	}
}

func ggufTrunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func ggufHead(ids []int) []int {
	if len(ids) > 40 {
		return ids[:40]
	}
	return ids
}
