package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/gguf"
)

func TestGGUFCommand(t *testing.T) {
	if err := runGGUF(nil); !errors.Is(err, errUsage) {
		t.Errorf("no file: %v, want a usage error", err)
	}
	// A minimal v3 file: one string key, one F32 tensor of 2 values.
	var b bytes.Buffer
	le := func(v uint64, n int) {
		for i := 0; i < n; i++ {
			b.WriteByte(byte(v >> (8 * i)))
		}
	}
	b.WriteString("GGUF")
	le(3, 4)
	le(1, 8)
	le(1, 8)
	le(uint64(len("general.architecture")), 8)
	b.WriteString("general.architecture")
	le(8, 4)
	le(5, 8)
	b.WriteString("llama")
	le(1, 8)
	b.WriteString("w")
	le(1, 4)
	le(2, 8)
	le(0, 4) // F32
	le(0, 8)
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	le(0x3f800000, 4)
	le(0x40000000, 4)
	path := filepath.Join(t.TempDir(), "x.gguf")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	if err := describeGGUF(&out, f, true, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GGUF v3", "general.architecture", `"llama"`, "F32         1 tensors", "w ", "ok (0 non-finite)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
