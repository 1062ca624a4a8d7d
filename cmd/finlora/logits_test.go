package main

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/runtime/npy"
)

// finlora logits on the tiny-llama fixture writes transformers' logits (within 1e-4 relative).
func TestLogitsCommand(t *testing.T) {
	dir := filepath.Join("..", "..", "runtime", "model", "testdata", "tiny-llama")
	out := filepath.Join(t.TempDir(), "l.npy")
	ids := "1,17,250,3,99,42,7,311,5,128,64,200,31,8,77,190,2,45,333,12,4,90,150,6"
	if err := runLogits([]string{"--model", dir, "--ids", ids, "--out", out}); err != nil {
		t.Fatal(err)
	}
	got, err := npy.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := npy.ReadFile(filepath.Join(dir, "reference_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Shape) != 2 || got.Shape[0] != 24 || got.Shape[1] != 384 {
		t.Fatalf("shape %v", got.Shape)
	}
	var worst, scale float64
	for i := range ref.Data {
		worst = math.Max(worst, math.Abs(float64(got.Data[i]-ref.Data[i])))
		scale = math.Max(scale, math.Abs(float64(ref.Data[i])))
	}
	if worst/scale > 1e-4 {
		t.Errorf("relative error %.3g", worst/scale)
	}
	for _, bad := range [][]string{{"--model", dir, "--ids", "1,x", "--out", out}, {"--model", dir, "--out", out}, {"--model", dir, "--ids", "384", "--out", out}} {
		if err := runLogits(bad); !errors.Is(err, errUsage) {
			t.Errorf("runLogits(%v) = %v, want a usage error", bad, err)
		}
	}
}
