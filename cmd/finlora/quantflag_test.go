package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/modeltest"
	"github.com/finlora/finlora/runtime/npy"
	"github.com/finlora/finlora/runtime/qmodel"
)

var qtd = filepath.Join("..", "..", "runtime", "qmodel", "testdata")

const refIDsFlag = "1,17,250,3,99,42,7,311,5,128,64,200,31,8,77,190,2,45,333,12,4,90,150,6"

func relDiff(got, want []float32) float64 {
	var worst, scale float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	return worst / scale
}

func logitsFile(t *testing.T, args ...string) []float32 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "l.npy")
	if err := runLogits(append(args, "--ids", refIDsFlag, "--out", out)); err != nil {
		t.Fatal(err)
	}
	a, err := npy.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return a.Data
}

// finlora logits on the bitsandbytes checkpoints (held quantized) matches their transformers
// logits within bf16 tolerance; --quant nf4 on the float checkpoint gives the NF4 checkpoint's
// logits exactly (the quantization is bit-exact); bad --quant values are usage errors.
func TestLogitsQuantized(t *testing.T) {
	for _, c := range []struct {
		dir string
		tol float64
	}{{"tiny-llama-bnb-nf4", 1e-2}, {"tiny-llama-bnb-int8", 1.5e-2}} {
		got := logitsFile(t, "--model", filepath.Join(qtd, c.dir))
		ref, err := npy.ReadFile(filepath.Join(qtd, c.dir, "reference_logits.npy"))
		if err != nil {
			t.Fatal(err)
		}
		if r := relDiff(got, ref.Data); r > c.tol {
			t.Errorf("%s: relative error %.3g > %g", c.dir, r, c.tol)
		}
	}
	onLoad := logitsFile(t, "--model", filepath.Join(qtd, "tiny-llama"), "--quant", "nf4")
	stored := logitsFile(t, "--model", filepath.Join(qtd, "tiny-llama-bnb-nf4"))
	if r := relDiff(onLoad, stored); r != 0 {
		t.Errorf("--quant nf4 vs the bitsandbytes NF4 checkpoint: relative difference %.3g", r)
	}
	float := logitsFile(t, "--model", filepath.Join(qtd, "tiny-llama"))
	if r := relDiff(onLoad, float); r == 0 {
		t.Error("--quant nf4 changed nothing")
	}
	out := filepath.Join(t.TempDir(), "l.npy")
	for _, q := range []string{"int4", "bf16"} {
		if err := runLogits([]string{"--model", filepath.Join(qtd, "tiny-llama"), "--quant", q, "--ids", "1", "--out", out}); !errors.Is(err, errUsage) {
			t.Errorf("--quant %s: %v, want a usage error", q, err)
		}
	}
	if err := runLogits([]string{"--model", filepath.Join(qtd, "tiny-llama-bnb-nf4"), "--quant", "int8", "--ids", "1", "--out", out}); err == nil {
		t.Error("an NF4 checkpoint loaded as int8")
	}
}

// finlora train --quant nf4 (QLoRA) and on the bitsandbytes int8 checkpoint: the loss goes down
// and the adapter is written; --quant without --model is a usage error for every command.
func TestTrainQuantized(t *testing.T) {
	td := filepath.Join("..", "..", "runtime", "train", "testdata")
	var ref struct {
		InputIDs [][]int32 `json:"input_ids"`
		Labels   [][]int32 `json:"labels"`
	}
	raw, err := os.ReadFile(filepath.Join(td, "lora-llama-all", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "rows.jsonl")
	f, _ := os.Create(data)
	for i := range ref.InputIDs {
		b, _ := json.Marshal(map[string]any{"input_ids": ref.InputIDs[i], "labels": ref.Labels[i]})
		f.Write(append(b, '\n'))
	}
	f.Close()
	for _, c := range [][]string{
		{"--model", filepath.Join(qtd, "tiny-llama"), "--quant", "nf4"},
		{"--model", filepath.Join(qtd, "tiny-llama-bnb-int8")},
	} {
		out := filepath.Join(dir, "adapter")
		os.RemoveAll(out)
		err := runTrain(append(c, "--data", data, "--out", out, "--adapter-init", filepath.Join(td, "lora-llama-all", "adapter_start"),
			"--lr", "1e-2", "--batch-size", "2", "--steps", "8", "--no-shuffle"))
		if err != nil {
			t.Fatal(err)
		}
		losses := readLosses(t, filepath.Join(out, "metrics.arrow"))
		if len(losses) != 8 || !(losses[7] < losses[0]-0.1) {
			t.Errorf("%v: losses %v", c, losses)
		}
		if _, err := os.Stat(filepath.Join(out, "adapter_model.safetensors")); err != nil {
			t.Error(err)
		}
	}
	for name, c := range map[string]struct {
		run  func([]string) error
		args []string
	}{
		"train":    {runTrain, []string{"--data", data, "--out", filepath.Join(dir, "x")}},
		"generate": {runGenerate, []string{"--prompt", "x"}},
		"eval":     {runEval, []string{"--task", "fpb", "--data", data}},
	} {
		if err := c.run(append(c.args, "--quant", "nf4")); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--quant needs --model") {
			t.Errorf("%s --quant without --model: %v", name, err)
		}
	}
}

// --model FILE.gguf (a Llama-family GGUF: the installed SmolLM2-135M, Q4_1 blocks) loads dense as
// stored and, with --quant, with every decoder linear quantized on load from the dequantized GGML
// blocks; its tokenizer comes from the file; a Gemma 3 GGUF is a usage error naming the commands
// that run it. The quantized logits stay near the dense ones (the re-quantization of 4-bit blocks
// costs accuracy: int8 within a few percent, the 4-bit formats more).
func TestGGUFModelFile(t *testing.T) {
	path := modeltest.Require(t, "smollm2-135m")
	ctx := context.Background()
	ids := []int32{1, 504, 3458, 314, 260, 1345, 30}
	logits := func(m *model.Model) []float32 {
		t.Helper()
		out, err := m.LastLogits(ctx, model.Input{IDs: ids, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		v, err := m.Backend.ToFloat32(out)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	dense, err := loadModel(ctx, path, model.LoadOptions{}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dense.Free()
	if p := qmodel.PrecisionOf(dense); p.Quantized() {
		t.Fatalf("as stored: precision %s, want a float model", p)
	}
	want := logits(dense)
	for _, c := range []struct {
		quant string
		tol   float64
	}{{"int8", 0.1}, {"nf4", 0.5}} {
		m, err := loadModel(ctx, path, model.LoadOptions{}, c.quant)
		if err != nil {
			t.Fatalf("--quant %s: %v", c.quant, err)
		}
		if p := qmodel.PrecisionOf(m); string(p) != c.quant {
			t.Errorf("--quant %s: precision %s", c.quant, p)
		}
		for _, l := range m.Layers {
			for _, lin := range []*model.Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
				if lin.Packed == nil {
					t.Fatalf("--quant %s: %s is dense", c.quant, lin.Name)
				}
			}
		}
		got := logits(m)
		m.Free()
		d := relDiff(got, want)
		t.Logf("--quant %s: last-position logits within %.3g of the dense model's (max |Δ| / max |logit|)", c.quant, d)
		if math.IsNaN(d) || d > c.tol {
			t.Errorf("--quant %s: logits differ by %.3g > %g", c.quant, d, c.tol)
		}
	}
	tok, err := modelTokenizer("test", path)
	if err != nil || tok.VocabSize() != dense.Config.VocabSize {
		t.Errorf("GGUF tokenizer: %v, vocab %v vs model %d", err, tok, dense.Config.VocabSize)
	}
	if g := modeltest.Path("gemma3-270m"); g != "" {
		if _, err := loadModel(ctx, g, model.LoadOptions{}, "nf4"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "experiment") {
			t.Errorf("Gemma 3 GGUF: %v, want a usage error naming finlora experiment", err)
		}
	}
}
