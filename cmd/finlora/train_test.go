package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/finlora/finlora/lora"
)

// readLosses reads the loss column of a metrics.arrow file written by finlora train.
func readLosses(t *testing.T, path string) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []float64
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		col := rec.Column(int(rec.Schema().FieldIndices("loss")[0])).(*array.Float64)
		out = append(out, col.Float64Values()...)
	}
	return out
}

// finlora train --no-shuffle from adapter_start reproduces PEFT's 3 losses and adapter_end.
func TestTrainCommandMatchesPEFT(t *testing.T) {
	td := filepath.Join("..", "..", "runtime", "train", "testdata")
	for _, fx := range []string{"lora-llama-qkv", "lora-llama-all"} {
		var ref struct {
			InputIDs [][]int32 `json:"input_ids"`
			Labels   [][]int32 `json:"labels"`
			Losses   []float64 `json:"losses"`
		}
		raw, err := os.ReadFile(filepath.Join(td, fx, "reference.json"))
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(raw, &ref)
		dir := t.TempDir()
		data := filepath.Join(dir, "rows.jsonl")
		f, _ := os.Create(data)
		for i := range ref.InputIDs {
			b, _ := json.Marshal(map[string]any{"input_ids": ref.InputIDs[i], "labels": ref.Labels[i]})
			f.Write(append(b, '\n'))
		}
		f.Close()
		out := filepath.Join(dir, "adapter")
		err = runTrain([]string{"--model", filepath.Join(td, "tiny-llama"), "--data", data, "--out", out,
			"--adapter-init", filepath.Join(td, fx, "adapter_start"), "--lr", "1e-2", "--betas", "0.9,0.999", "--eps", "1e-8",
			"--weight-decay", "0", "--batch-size", "2", "--steps", "3", "--no-shuffle"})
		if err != nil {
			t.Fatal(err)
		}
		losses := readLosses(t, filepath.Join(out, "metrics.arrow"))
		if len(losses) != 3 {
			t.Fatalf("%s: %d losses", fx, len(losses))
		}
		for i, l := range losses {
			if r := math.Abs(l-ref.Losses[i]) / ref.Losses[i]; r > 1e-5 {
				t.Errorf("%s step %d: loss %.7f, reference %.7f", fx, i+1, l, ref.Losses[i])
			}
		}
		got, err := lora.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := lora.Load(filepath.Join(td, fx, "adapter_end"))
		if err != nil {
			t.Fatal(err)
		}
		for p, w := range want.Modules {
			g := got.Modules[p]
			for _, pair := range [][2][]float32{{g.A, w.A}, {g.B, w.B}} {
				var d, m float64
				for i := range pair[1] {
					d = math.Max(d, math.Abs(float64(pair[0][i]-pair[1][i])))
					m = math.Max(m, math.Abs(float64(pair[1][i])))
				}
				if d/m > 1e-4 {
					t.Errorf("%s %s: relative error %.3g", fx, p, d/m)
				}
			}
		}
	}
}

// {context, target} rows on the embedded tiny model: a fresh adapter from the flags, saved in
// PEFT's layout; argument errors are usage errors.
func TestTrainCommandPrompts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rows.jsonl")
	os.WriteFile(data, []byte(`{"context": "Sentiment of: profits rose. Answer:", "target": " positive"}
{"context": "Sentiment of: losses widened. Answer:", "target": " negative"}
{"context": "Sentiment of: guidance unchanged. Answer:", "target": " neutral"}
`), 0o644)
	out := filepath.Join(dir, "adapter")
	if err := runTrain([]string{"--data", data, "--out", out, "--rank", "4", "--alpha", "8", "--targets", "q_proj,v_proj,down_proj",
		"--rslora", "--dropout", "0.1", "--lr", "1e-3", "--scheduler", "cosine", "--warmup-ratio", "0.5", "--epochs", "2", "--seed", "3"}); err != nil {
		t.Fatal(err)
	}
	a, err := lora.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.R != 4 || !a.Config.UseRSLoRA || a.Config.LoraDropout != 0.1 || len(a.Modules) == 0 {
		t.Errorf("saved config %+v with %d modules", a.Config, len(a.Modules))
	}
	if n := len(readLosses(t, filepath.Join(out, "metrics.arrow"))); n != 4 {
		t.Errorf("%d steps logged, want 4 (2 epochs of 2 batches)", n)
	}
	for _, args := range [][]string{
		{"--data", data},
		{"--data", data, "--out", out, "--steps", "2", "--epochs", "1"},
		{"--data", data, "--out", out, "--betas", "0.9"},
		{"--data", data, "--out", out, "--scheduler", "exp"},
	} {
		if err := runTrain(args); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
