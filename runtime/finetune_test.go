package runtime

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/data"
)

// sampleFPB is the repository's FinLoRA sample (data/finlora-sample, see its README).
const sampleFPB = "../data/finlora-sample/fpb.jsonl"

// tinySetup loads the tiny random model and the FPB sample into a fresh Default session state
// (names prefixed by the test's name) and frees them at the end.
func tinySetup(t *testing.T) (*LoadedModel, *Dataset) {
	t.Helper()
	ctx := context.Background()
	lm, err := OpenModel(ctx, TinyModelPath, ModelOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	lm.Name = t.Name() + "/base"
	if err := Put(lm.Name, lm); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadDataset(ctx, t.Name()+"/fpb", sampleFPB, DatasetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range Names() {
			if strings.HasPrefix(n, t.Name()+"/") {
				Free(n)
			}
		}
	})
	return lm, ds
}

func TestLoadDatasetAndSplit(t *testing.T) {
	_, ds := tinySetup(t)
	if ds.NumRows() != 240 {
		t.Fatalf("rows %d, want 240", ds.NumRows())
	}
	if got := strings.Join(ds.Columns(), ","); got != "context,target" {
		t.Errorf("columns %s", got)
	}
	if h := ds.HTML(); !strings.Contains(h, "240 rows") || !strings.Contains(h, sampleFPB) {
		t.Errorf("HTML view lacks row count or source: %.200s", h)
	}
	labels, err := ds.Labels()
	if err != nil || strings.Join(labels, ",") != "negative,neutral,positive" {
		t.Errorf("labels %v %v", labels, err)
	}
	maj, share, err := ds.MajorityLabel()
	if err != nil || maj != "neutral" || math.Abs(share-139.0/240) > 1e-12 {
		t.Errorf("majority %q %v %v, want neutral 139/240", maj, share, err)
	}
	tr, te, err := ds.Split(0.25, 7)
	if err != nil {
		t.Fatal(err)
	}
	if tr.NumRows() != 180 || te.NumRows() != 60 {
		t.Fatalf("split %d/%d, want 180/60", tr.NumRows(), te.NumRows())
	}
	for _, name := range []string{ds.Name + "/train", ds.Name + "/test"} {
		if _, err := GetDataset(name); err != nil {
			t.Errorf("split not in the session: %v", err)
		}
	}
	// Disjoint and covering: the sample has no duplicate contexts.
	all, _ := ds.Strings("context")
	a, _ := tr.Strings("context")
	b, _ := te.Strings("context")
	seen := map[string]int{}
	for _, s := range append(a, b...) {
		seen[s]++
	}
	for _, s := range all {
		if seen[s] != 1 {
			t.Fatalf("row %.60q appears %d times across train+test", s, seen[s])
		}
	}
	// Same seed, same split.
	tr2, _, err := ds.Split(0.25, 7)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := tr2.Strings("context")
	if strings.Join(a, "\n") != strings.Join(a2, "\n") {
		t.Error("split is not repeatable")
	}
	// Parquet and CSV load the same rows.
	for _, ext := range []string{"parquet", "csv"} {
		path := filepath.Join(t.TempDir(), "fpb."+ext)
		var err error
		if ext == "parquet" {
			err = ds.Data.WriteParquet(path)
		} else {
			err = ds.Data.WriteCSV(path)
		}
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadDataset(context.Background(), t.Name()+"/"+ext, path, DatasetOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := back.Strings("context")
		if back.NumRows() != 100 || got[99] != all[99] {
			t.Errorf("%s: %d rows, row 99 %.40q", ext, back.NumRows(), got[99])
		}
	}
	if _, err := LoadDataset(context.Background(), t.Name()+"/missing", "nope.jsonl", DatasetOptions{}); err == nil {
		t.Error("missing file loaded")
	}
}

// adapterWeights flattens every module's A, B and magnitude, in path order.
func adapterWeights(a *lora.Adapter) []float32 {
	var out []float32
	for _, p := range a.Paths() {
		m := a.Modules[p]
		out = append(append(append(out, m.A...), m.B...), m.Magnitude...)
	}
	return out
}

func TestFinetuneEvaluateSave(t *testing.T) {
	lm, ds := tinySetup(t)
	ctx := context.Background()
	train, test, err := ds.Split(0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	eo := EvalOptions{Limit: 16, Quiet: true}
	before, err := Evaluate(ctx, lm, nil, "fpb", test, eo)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAdapter(lm, t.Name()+"/lora", AdapterOptions{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj", "down_proj"}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := GetAdapter(a.Name); err != nil || got != a {
		t.Fatalf("adapter not in the session: %v", err)
	}
	// A fresh adapter (B = 0) changes nothing.
	same, err := Evaluate(ctx, lm, a, "fpb", test, eo)
	if err != nil {
		t.Fatal(err)
	}
	for i := range same.Result.Rows {
		if same.Result.Rows[i].Generated != before.Result.Rows[i].Generated {
			t.Fatalf("row %d: untrained adapter changed the output %q -> %q", i, before.Result.Rows[i].Generated, same.Result.Rows[i].Generated)
		}
	}
	res, err := Finetune(ctx, a, train, FinetuneOptions{Steps: 12, BatchSize: 4, LR: 3e-3, Seed: 5, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.StepsDone != 12 || res.TotalSteps != 12 || res.Interrupted || a.Steps() != 12 || len(res.Metrics) != 12 {
		t.Fatalf("result %+v, adapter steps %d", res, a.Steps())
	}
	if !(res.FinalLoss < res.FirstLoss) {
		t.Errorf("loss did not fall: %v -> %v", res.FirstLoss, res.FinalLoss)
	}
	after, err := Evaluate(ctx, lm, a, "fpb", test, eo)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for i := range after.Result.Rows {
		if after.Result.Rows[i].Generated != before.Result.Rows[i].Generated {
			changed++
		}
	}
	if changed == 0 {
		t.Error("the trained adapter changed no output")
	}
	// The base model is untouched once the call is over.
	again, err := Evaluate(ctx, lm, nil, "fpb", test, eo)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again.Result.Rows {
		if again.Result.Rows[i].Generated != before.Result.Rows[i].Generated {
			t.Fatalf("row %d: base output changed after evaluating the adapter", i)
		}
	}
	cmp, err := Compare(before, after)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cmp.Value(a.Name, "fpb", "accuracy"); err != nil || v != after.Accuracy() {
		t.Errorf("comparison accuracy %v %v, want %v", v, err, after.Accuracy())
	}
	s := cmp.String()
	for _, want := range []string{"Δ " + a.Name, "majority baseline", "tiny random model"} {
		if !strings.Contains(s, want) {
			t.Errorf("comparison text lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(cmp.HTML(), "<table") {
		t.Error("comparison HTML has no table")
	}
	if after.MajorityShare <= 0 || after.N() != 16 {
		t.Errorf("majority share %v n %d", after.MajorityShare, after.N())
	}

	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := LoadAdapter(lm, t.Name()+"/loaded", dir)
	if err != nil {
		t.Fatal(err)
	}
	wa, wb := adapterWeights(a.LoRA), adapterWeights(b.LoRA)
	if len(wa) != len(wb) {
		t.Fatalf("loaded %d weights, saved %d", len(wb), len(wa))
	}
	for i := range wa {
		if wa[i] != wb[i] {
			t.Fatalf("weight %d: saved %v loaded %v", i, wa[i], wb[i])
		}
	}
	reloaded, err := Evaluate(ctx, lm, b, "fpb", test, eo)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reloaded.Result.Rows {
		if reloaded.Result.Rows[i].Generated != after.Result.Rows[i].Generated {
			t.Fatalf("row %d: reloaded adapter generates %q, saved one %q", i, reloaded.Result.Rows[i].Generated, after.Result.Rows[i].Generated)
		}
	}
	if !strings.Contains(a.HTML(), "steps trained") || !strings.Contains(a.String(), "12 steps trained") {
		t.Errorf("adapter views: %s", a.String())
	}
	if svg := LossCurveSVG(a.Name, a.History); !strings.Contains(svg, "<polyline") {
		t.Error("loss curve has no line")
	}
}

// stepCtx is cancelled from the (limit+1)-th call of Err on: the trainer calls Err once before
// each optimizer step and once per micro-batch, so with GradAccum 1 a limit of 2k lets exactly k
// steps finish and stops before step k+1 — an interrupt at a known step boundary.
type stepCtx struct {
	context.Context
	calls, limit atomic.Int64
	done         chan struct{}
}

func newStepCtx(limit int64) *stepCtx {
	c := &stepCtx{Context: context.Background(), done: make(chan struct{})}
	c.limit.Store(limit)
	return c
}

func (c *stepCtx) Err() error {
	if c.calls.Add(1) > c.limit.Load() {
		return context.Canceled
	}
	return nil
}

func (c *stepCtx) Done() <-chan struct{} { return c.done }

// TestInterruptLeavesUsableAdapter: a cancelled Finetune stops at a step boundary; the adapter then
// holds exactly the weights of an uninterrupted run of that many steps, evaluates, saves, loads,
// and trains on.
func TestInterruptLeavesUsableAdapter(t *testing.T) {
	lm, ds := tinySetup(t)
	train, test, err := ds.Split(0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	opts := AdapterOptions{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}, Seed: 9}
	fo := FinetuneOptions{Steps: 20, BatchSize: 2, LR: 1e-3, Seed: 2, Quiet: true}

	a, err := NewAdapter(lm, t.Name()+"/interrupted", opts)
	if err != nil {
		t.Fatal(err)
	}
	const k = 3
	res, err := Finetune(newStepCtx(2*k), a, train, fo)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res == nil || !res.Interrupted || res.StepsDone != k || a.Steps() != k || res.TotalSteps != 20 {
		t.Fatalf("result %+v, adapter steps %d; want %d of 20 steps, interrupted", res, a.Steps(), k)
	}
	if !strings.Contains(err.Error(), "usable") {
		t.Errorf("error does not say the adapter is usable: %v", err)
	}

	ref, err := NewAdapter(lm, t.Name()+"/reference", opts)
	if err != nil {
		t.Fatal(err)
	}
	fk := fo
	fk.Steps = k
	if _, err := Finetune(context.Background(), ref, train, fk); err != nil {
		t.Fatal(err)
	}
	wa, wr := adapterWeights(a.LoRA), adapterWeights(ref.LoRA)
	for i := range wa {
		if wa[i] != wr[i] {
			t.Fatalf("weight %d: interrupted adapter %v, %d-step run %v", i, wa[i], k, wr[i])
		}
	}

	ctx := context.Background()
	if _, err := Evaluate(ctx, lm, a, "fpb", test, EvalOptions{Limit: 8, Quiet: true}); err != nil {
		t.Fatalf("evaluate after interrupt: %v", err)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAdapter(lm, t.Name()+"/reloaded", dir); err != nil {
		t.Fatal(err)
	}
	more, err := Finetune(ctx, a, train, FinetuneOptions{Steps: 2, BatchSize: 2, LR: 1e-3, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Steps() != k+2 || more.Metrics[0].Step != k+1 {
		t.Errorf("training on: adapter steps %d, first new step numbered %d", a.Steps(), more.Metrics[0].Step)
	}
}

// TestInterruptByCancel cancels a long run from another goroutine, as the kernel's interrupt does,
// and checks that Finetune returns promptly with a usable adapter.
func TestInterruptByCancel(t *testing.T) {
	lm, ds := tinySetup(t)
	a, err := NewAdapter(lm, t.Name()+"/lora", AdapterOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	res, err := Finetune(ctx, a, ds, FinetuneOptions{Steps: 100000, Quiet: true})
	if !errors.Is(err, context.Canceled) || !res.Interrupted {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Finetune took %v to stop after the cancel at 300ms", d)
	}
	if res.StepsDone != a.Steps() || res.StepsDone >= 100000 {
		t.Errorf("steps done %d, adapter steps %d", res.StepsDone, a.Steps())
	}
	if _, err := Evaluate(context.Background(), lm, a, "fpb", ds, EvalOptions{Limit: 4, Quiet: true}); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultModelFallsBackToTiny(t *testing.T) {
	t.Setenv("FINLORA_MODEL", "")
	t.Setenv("FINLORA_HOME", t.TempDir()) // nothing installed there
	lm, choice, err := LoadDefaultModel(context.Background(), t.Name()+"/m")
	if err != nil {
		t.Fatal(err)
	}
	defer Free(lm.Name)
	if !choice.Random || !IsRandomModel(lm) || choice.Path != TinyModelPath {
		t.Errorf("choice %+v", choice)
	}
	if !strings.Contains(AboutAccuracy(lm, 3), "chance") {
		t.Error("AboutAccuracy of the random model does not mention chance level")
	}
	t.Setenv("FINLORA_MODEL", filepath.Join(t.TempDir(), "missing"))
	if _, _, err := LoadDefaultModel(context.Background(), t.Name()+"/m2"); err == nil || !strings.Contains(err.Error(), "FINLORA_MODEL") {
		t.Errorf("a bad FINLORA_MODEL must fail loudly, got %v", err)
	}
}

func TestFinetuneRejectsRowsWithoutAnswer(t *testing.T) {
	lm, ds := tinySetup(t)
	a, err := NewAdapter(lm, t.Name()+"/lora", AdapterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Finetune(context.Background(), a, ds, FinetuneOptions{Steps: 1, MaxLength: 64, Quiet: true})
	if err == nil || !strings.Contains(err.Error(), "240 of 240 rows") {
		t.Errorf("err = %v", err)
	}
}

func TestTrainingExamplesMaskPrompt(t *testing.T) {
	lm, ds := tinySetup(t)
	ex, err := trainingExamples(lm, ds, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctxs, _ := ds.Strings("context")
	tgts, _ := ds.Strings("target")
	// ByteTokenizer: BOS + context bytes masked, then target bytes and EOS as labels.
	e := ex[0]
	nPrompt := 1 + len(ctxs[0])
	if len(e.InputIDs) != nPrompt+len(tgts[0])+1 {
		t.Fatalf("row 0: %d ids", len(e.InputIDs))
	}
	for i, l := range e.Labels {
		if (i < nPrompt) != (l == data.IgnoreIndex) {
			t.Fatalf("label %d = %d (prompt has %d tokens)", i, l, nPrompt)
		}
	}
}

// TestAdapterVariants: rsLoRA and DoRA adapters are created with their config, train, apply and
// survive a save/load round trip.
func TestAdapterVariants(t *testing.T) {
	lm, ds := tinySetup(t)
	head, err := ds.Head(8)
	if err != nil {
		t.Fatal(err)
	}
	defer head.Free()
	for _, tc := range []struct {
		name string
		opts AdapterOptions
	}{
		{"rslora", AdapterOptions{Rank: 4, Alpha: 8, RSLoRA: true, Targets: []string{"q_proj"}}},
		{"dora", AdapterOptions{Rank: 2, Alpha: 4, DoRA: true, Dropout: 0.1, Targets: []string{"v_proj", "up_proj"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAdapter(lm, t.Name()+"/a", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer Free(a.Name)
			c := a.LoRA.Config
			if c.UseRSLoRA != tc.opts.RSLoRA || c.UseDoRA != tc.opts.DoRA || c.R != tc.opts.Rank || c.LoraDropout != tc.opts.Dropout {
				t.Fatalf("config %+v", c)
			}
			for _, m := range a.LoRA.Modules {
				want := float32(tc.opts.Alpha / float64(tc.opts.Rank))
				if tc.opts.RSLoRA {
					want = float32(tc.opts.Alpha / math.Sqrt(float64(tc.opts.Rank)))
				}
				if m.Scale != want || (m.Magnitude != nil) != tc.opts.DoRA {
					t.Fatalf("module %s: scale %v (want %v), magnitude %v", m.Path, m.Scale, want, m.Magnitude != nil)
				}
			}
			if _, err := Finetune(context.Background(), a, head, FinetuneOptions{Steps: 2, LR: 1e-3, Quiet: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := Evaluate(context.Background(), lm, a, "fpb", head, EvalOptions{Limit: 2, Quiet: true}); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			b, err := LoadAdapter(lm, t.Name()+"/b", dir)
			if err != nil {
				t.Fatal(err)
			}
			defer Free(b.Name)
			if b.LoRA.Config.UseDoRA != tc.opts.DoRA || b.LoRA.Config.UseRSLoRA != tc.opts.RSLoRA {
				t.Errorf("reloaded config %+v", b.LoRA.Config)
			}
			wa, wb := adapterWeights(a.LoRA), adapterWeights(b.LoRA)
			for i := range wa {
				if wa[i] != wb[i] {
					t.Fatalf("weight %d differs after the round trip", i)
				}
			}
		})
	}
}

// TestNextCellWaitsForInterruptedFinetune mimics the kernel's interrupt: the interpreter ends the
// interrupted cell at once while the compiled Finetune finishes its current step in the background.
// The next cell's calls on the same model (Save, Steps, Evaluate) must wait for it, so they see the
// weights of a completed step, never a step half written (run with -race to check).
func TestNextCellWaitsForInterruptedFinetune(t *testing.T) {
	lm, ds := tinySetup(t)
	a, err := NewAdapter(lm, t.Name()+"/lora", AdapterOptions{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *FinetuneResult, 1)
	go func() {
		res, _ := Finetune(ctx, a, ds, FinetuneOptions{Steps: 100000, LR: 1e-3, Quiet: true})
		done <- res
	}()
	time.Sleep(400 * time.Millisecond)
	cancel() // the interrupt; the "next cell" starts right away:
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	steps := a.Steps()
	if _, err := Evaluate(context.Background(), lm, a, "fpb", ds, EvalOptions{Limit: 2, Quiet: true}); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if !res.Interrupted || steps != res.StepsDone {
		t.Fatalf("next cell saw %d steps; Finetune did %d (interrupted %v)", steps, res.StepsDone, res.Interrupted)
	}
	saved, err := lora.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ws, wa := adapterWeights(saved), adapterWeights(a.LoRA)
	for i := range ws {
		if ws[i] != wa[i] {
			t.Fatalf("weight %d: saved %v, adapter after Finetune returned %v", i, ws[i], wa[i])
		}
	}
	// A call whose own context ends while it waits gives up with that error.
	unlock, err := lockModel(context.Background(), lm)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := Evaluate(short, lm, nil, "fpb", ds, EvalOptions{Limit: 1, Quiet: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("evaluate while the model is busy: err = %v, want deadline exceeded", err)
	}
	unlock()
}
