package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestQuantizeCLI runs "finlora quantize" on the tiny-llama fixture (quant/testdata) and compares
// the written files with what transformers + bitsandbytes wrote. NF4 must match byte for byte;
// int8 may differ in the 4 near-tie codes explained in quant's TestQuantizeInt8.
func TestQuantizeCLI(t *testing.T) {
	td := filepath.Join("..", "..", "quant", "testdata")
	for _, c := range []struct {
		args     []string
		ref      string
		maxDiffs int
	}{
		{[]string{"--format", "nf4", "--double-quant"}, "tiny-llama-bnb-nf4", 0},
		{[]string{"--format", "int8"}, "tiny-llama-bnb-int8", 4},
	} {
		out := t.TempDir()
		args := append([]string{"--model", filepath.Join(td, "tiny-llama"), "--out", out}, c.args...)
		if err := runQuantize(args); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"model.safetensors", "config.json", "generation_config.json"} {
			got, err := os.ReadFile(filepath.Join(out, f))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(td, c.ref, f))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(got, want) {
				continue
			}
			diff := 0
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					diff++
				}
			}
			if len(got) != len(want) || diff > c.maxDiffs || f != "model.safetensors" {
				t.Errorf("%s/%s: %d bytes (want %d), %d differ", c.ref, f, len(got), len(want), diff)
			}
		}
	}
}

func TestQuantizeCLIUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--model", "x", "--out", "y"},
		{"--model", "x", "--out", "y", "--format", "nf5"},
		{"--model", "x", "--out", "y", "--format", "nf4", "--blocksize", "100"},
		{"--model", "x", "--out", "y", "--format", "int8", "--double-quant"},
		{"--model", "x", "--out", "y", "--format", "int8", "--blocksize", "128"},
		{"--model", "x", "--out", "x", "--format", "nf4"},
	} {
		if err := runQuantize(args); !errors.Is(err, errUsage) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
}
