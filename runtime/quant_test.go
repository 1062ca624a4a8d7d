package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tokenizer/tokenizertest"
	"github.com/finlora/finlora/runtime/train"
)

// TestPrecisionPerPhase: QLoRA finetuning on the NF4 base of tiny-llama lowers the loss; the
// adapter copied onto the int8 and the bf16 base of the same model lowers the loss there too
// (the adapter is independent of the base precision); precisions and memory are reported.
func TestPrecisionPerPhase(t *testing.T) {
	ctx := context.Background()
	dir := tokenizertest.ModelDirWithTokenizer(t, filepath.Join("qmodel", "testdata", "tiny-llama"))
	pre := t.Name() + "/"
	t.Cleanup(func() {
		for _, n := range Names() {
			if strings.HasPrefix(n, pre) {
				Free(n)
			}
		}
	})
	load := func(p string) *LoadedModel {
		lm, err := LoadModelAt(ctx, pre+p, dir, p, ModelOptions{Device: "cpu"})
		if err != nil {
			t.Fatal(err)
		}
		if lm.Precision() != p {
			t.Errorf("precision %q, want %q", lm.Precision(), p)
		}
		return lm
	}
	base4 := load(PrecisionNF4)
	mem := base4.Memory()
	if mem.QuantizedCount != 14 || mem.DenseLinears != 0 || !strings.Contains(mem.HTML(), "quantized linears") {
		t.Errorf("memory of the NF4 model: %+v", mem)
	}
	t.Logf("%s", mem)

	var ref struct {
		InputIDs [][]int32 `json:"input_ids"`
		Labels   [][]int32 `json:"labels"`
	}
	raw, err := os.ReadFile(filepath.Join("train", "testdata", "lora-llama-all", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	rowsPath := filepath.Join(t.TempDir(), "rows.jsonl")
	var sb strings.Builder
	var rows []train.Example
	for i := range ref.InputIDs {
		b, _ := json.Marshal(map[string]any{"input_ids": ref.InputIDs[i], "labels": ref.Labels[i]})
		sb.Write(append(b, '\n'))
		rows = append(rows, train.Example{InputIDs: ref.InputIDs[i], Labels: ref.Labels[i]})
	}
	if err := os.WriteFile(rowsPath, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadDataset(ctx, pre+"rows", rowsPath, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAdapter(base4, pre+"fin", AdapterOptions{Rank: 8, Alpha: 16, Seed: 3,
		Targets: []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Finetune(ctx, a, ds, FinetuneOptions{Steps: 10, LR: 1e-2, BatchSize: 2, NoShuffle: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", res)
	if !(res.FinalLoss < res.FirstLoss-0.1) {
		t.Errorf("QLoRA loss %.4f -> %.4f", res.FirstLoss, res.FinalLoss)
	}
	for _, p := range []string{PrecisionInt8, PrecisionBF16} {
		m := load(p)
		c, err := a.CopyTo(m, pre+"fin@"+p)
		if err != nil {
			t.Fatal(err)
		}
		base, err := train.NewBase(m.Model, 0)
		if err != nil {
			t.Fatal(err)
		}
		bare, err := train.Loss(base, nil, rows)
		if err != nil {
			t.Fatal(err)
		}
		tuned, err := train.Loss(base, c.LoRA, rows)
		if err != nil {
			t.Fatal(err)
		}
		base.Close()
		t.Logf("%s base: loss %.4f bare, %.4f with the adapter trained on nf4", p, bare, tuned)
		if !(tuned < bare-0.1) {
			t.Errorf("%s base: the adapter does not transfer (%.4f -> %.4f)", p, bare, tuned)
		}
		fpb, err := LoadDataset(ctx, pre+"fpb", "../data/finlora-sample/fpb.jsonl", DatasetOptions{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Evaluate(ctx, m, c, "fpb", fpb, EvalOptions{BatchSize: 2, MaxNewTokens: 3, Quiet: true})
		if err != nil {
			t.Fatalf("evaluate on the %s base: %v", p, err)
		}
		if r.N() != 4 {
			t.Errorf("evaluate on the %s base: %d questions", p, r.N())
		}
		r.Free()
		if c.Steps() != a.Steps() || c.LoRA == a.LoRA {
			t.Errorf("copy: %d steps (original %d), shares weights: %v", c.Steps(), a.Steps(), c.LoRA == a.LoRA)
		}
	}
	if _, err := a.CopyTo(base4, a.Name); err == nil {
		t.Error("CopyTo under the adapter's own name succeeded")
	}
	tiny, err := OpenModel(ctx, TinyModelPath, ModelOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer tiny.Free()
	if err := tiny.Quantize("int8"); err != nil || tiny.Precision() != "int8" {
		t.Errorf("quantize the tiny model: %v (precision %q)", err, tiny.Precision())
	}
	if _, err := tiny.Generate(ctx, "Revenue", GenerateOptions{MaxNewTokens: 3}); err != nil {
		t.Errorf("generate with the int8 tiny model: %v", err)
	}
	if _, err := OpenModelAt(ctx, dir, "int4", ModelOptions{Device: "cpu"}); err == nil {
		t.Error("precision int4 accepted")
	}
}

func TestQuantizedModelSummary(t *testing.T) {
	lm, err := OpenModelAt(context.Background(), filepath.Join("qmodel", "testdata", "tiny-llama-bnb-nf4"), "", ModelOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Free()
	for _, s := range []string{lm.String(), lm.HTML()} {
		if !strings.Contains(s, "nf4 linears, F32 embeddings/norms") {
			t.Errorf("summary lacks the precision: %s", s)
		}
	}
}
