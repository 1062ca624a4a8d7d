package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tokenizer"
)

// gunzip returns the decompressed contents of the gzip file at path.
func gunzip(t *testing.T, path string) []byte {
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

// llamaTokenizerDir writes the Llama 3.1 tokenizer test data of runtime/tokenizer (tokenizer.json
// stored gzipped there) into a temporary model directory.
func llamaTokenizerDir(t *testing.T) string {
	t.Helper()
	src := "../../runtime/tokenizer/testdata/llama-3.1/"
	dir := t.TempDir()
	js := gunzip(t, src+"tokenizer.json.gz")
	cfg, err := os.ReadFile(src + "tokenizer_config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenizeJSONMatchesHF(t *testing.T) {
	tk, err := tokenizer.LoadDir(llamaTokenizerDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Text         string `json:"text"`
		IDs          []int  `json:"ids"`
		IDsNoSpecial []int  `json:"ids_no_special"`
	}
	if err := json.Unmarshal(gunzip(t, "../../runtime/tokenizer/testdata/tokenizer-llama-3.1-reference.json.gz"), &rows); err != nil {
		t.Fatal(err)
	}
	rows = rows[len(rows)-20:] // the hard strings, the empty one included
	texts := make([]string, len(rows))
	for i, r := range rows {
		texts[i] = r.Text
	}
	in, _ := json.Marshal(texts)
	for _, special := range []bool{true, false} {
		var out bytes.Buffer
		if err := tokenizeJSON(tk, special, bytes.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(strings.TrimSuffix(out.String(), "\n"), " \n") || !strings.HasPrefix(out.String(), "[[") {
			t.Errorf("output not compact JSON: %.80q", out.String())
		}
		var got [][]int
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			want := r.IDs
			if !special {
				want = r.IDsNoSpecial
			}
			if len(want) == 0 {
				want = []int{}
			}
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("special=%v %q: %v, want %v", special, r.Text, got[i], want)
			}
		}
	}
	// Exact format: an empty text gives [], no spaces, one trailing newline.
	hi, ok := tk.TokenID("Hi")
	if !ok {
		t.Fatal("no token Hi")
	}
	var out bytes.Buffer
	want := fmt.Sprintf("[[],[%d]]\n", hi)
	if err := tokenizeJSON(tk, false, strings.NewReader(`["", "Hi"]`), &out); err != nil || out.String() != want {
		t.Errorf("tokenize [\"\", \"Hi\"] = %q, %v; want %q", out.String(), err, want)
	}
}

func TestTokenizeCommandErrors(t *testing.T) {
	if err := runTokenize(nil); !errors.Is(err, errUsage) {
		t.Errorf("no --tokenizer: %v, want a usage error", err)
	}
	if err := runTokenize([]string{"--bogus"}); !errors.Is(err, errUsage) {
		t.Errorf("unknown flag: %v, want a usage error", err)
	}
	if err := runTokenize([]string{"--tokenizer", t.TempDir()}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("dir without tokenizer.json: %v, want a load error", err)
	}
	tk, err := tokenizer.LoadDir(llamaTokenizerDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`{"a":1}`, `[1,2]`, `not json`} {
		if err := tokenizeJSON(tk, true, strings.NewReader(in), io.Discard); err == nil {
			t.Errorf("input %s: no error", in)
		}
	}
}
