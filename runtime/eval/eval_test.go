package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/model"
	_ "github.com/finlora/finlora/runtime/tensor/cpu" // registers the CPU backend
)

type vectors struct {
	F1 []struct {
		Name       string
		YTrue      []string `json:"y_true"`
		YPred      []string `json:"y_pred"`
		F1Weighted float64  `json:"f1_weighted"`
		Accuracy   float64
	}
	Finlora []struct {
		Name      string
		Targets   []string
		Outputs   []string
		Accuracy  float64
		F1        float64
		Responses []string
	}
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/sklearn_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.F1) < 10 || len(v.Finlora) < 4 {
		t.Fatalf("vectors file has %d f1 and %d finlora cases", len(v.F1), len(v.Finlora))
	}
	return v
}

func TestWeightedF1MatchesSklearn(t *testing.T) {
	for _, c := range loadVectors(t).F1 {
		t.Run(c.Name, func(t *testing.T) {
			if got := WeightedF1(c.YTrue, c.YPred); math.Abs(got-c.F1Weighted) > 1e-12 {
				t.Fatalf("WeightedF1 = %.17g, sklearn %.17g", got, c.F1Weighted)
			}
		})
	}
}

func TestFinLoRAScoringMatchesVectors(t *testing.T) {
	for _, c := range loadVectors(t).Finlora {
		t.Run(c.Name, func(t *testing.T) {
			s, err := Score(Classification, c.Targets, c.Outputs, nil)
			if err != nil {
				t.Fatal(err)
			}
			acc, _ := s.Metric("accuracy")
			f1, _ := s.Metric("f1")
			if math.Abs(acc-c.Accuracy) > 1e-12 || math.Abs(f1-c.F1) > 1e-12 {
				t.Fatalf("accuracy %.6f f1 %.12f, want %.6f %.12f", acc, f1, c.Accuracy, c.F1)
			}
			if !reflect.DeepEqual(s.Responses, c.Responses) {
				t.Fatalf("responses %q, want %q", s.Responses, c.Responses)
			}
		})
	}
}

// TestHandChecked is worked out by hand:
//
//	target    output                       earliest   correct  response
//	positive  "positive, not negative"     positive   yes      positive
//	neutral   "neutral or negative"        neutral    yes      neutral
//	negative  "Negative."                  negative   yes      negative
//	negative  "positive then negative"     positive   no       "positive then negative"
//	positive  "The sentiment is POSITIVE"  positive   yes      positive
//	neutral   "I cannot tell"              –          no       "I cannot tell"
//
// accuracy = 4/6. Weighted F1 over labels {negative, neutral, positive, two raw outputs}:
// positive tp=2 pred=2 true=2 → F1 1; neutral tp=1 pred=1 true=2 → 2/3; negative likewise 2/3;
// raw outputs have support 0. F1 = (2·1 + 2·2/3 + 2·2/3)/6 = 14/18.
func TestHandChecked(t *testing.T) {
	targets := []string{"positive", "neutral", "negative", "negative", "positive", "neutral"}
	outputs := []string{"positive, not negative", "neutral or negative", "Negative.", "positive then negative",
		"The sentiment is POSITIVE", "I cannot tell"}
	s, err := Score(Classification, targets, outputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantPred := []string{"positive", "neutral", "negative", "positive", "positive", ""}
	if !reflect.DeepEqual(s.Predictions, wantPred) {
		t.Fatalf("predictions %q, want %q", s.Predictions, wantPred)
	}
	if acc, _ := s.Metric("accuracy"); math.Abs(acc-4.0/6) > 1e-15 {
		t.Fatalf("accuracy %v, want 4/6", acc)
	}
	if f1, _ := s.Metric("f1"); math.Abs(f1-14.0/18) > 1e-15 {
		t.Fatalf("f1 %v, want 14/18", f1)
	}
}

func TestEarliestLabel(t *testing.T) {
	nwgi := Labels([]string{"strong negative", "moderately negative", "mildly negative", "neutral", "mildly positive", "moderately positive", "strong positive"})
	cases := []struct {
		out    string
		labels []string
		want   string
	}{
		{"positive, not negative", []string{"negative", "neutral", "positive"}, "positive"},
		{"neutral or negative", []string{"negative", "neutral", "positive"}, "neutral"},
		{"It is NEGATIVE", []string{"negative", "neutral", "positive"}, "negative"},
		{"no idea", []string{"negative", "neutral", "positive"}, ""},
		{"moderately positive, not strong positive", nwgi, "moderately positive"},
		{"positive", nwgi, ""},
		{"15092.44", []string{"15092.4", "15092.44", "2.44"}, "15092.44"}, // tie at 0: the longer
		{"organization: person", []string{"location", "organization", "person"}, "organization"},
	}
	for _, c := range cases {
		got, ok := EarliestLabel(c.out, c.labels)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("EarliestLabel(%q) = %q, %v; want %q", c.out, got, ok, c.want)
		}
	}
}

func TestExtractOutput(t *testing.T) {
	cases := []struct{ prompt, gen, delim, want string }{
		{"Input: x\nAnswer: ", " positive\n", "Answer:", "positive"},
		{"Q. Answer:", " 1.5 Answer: 2.5", "Answer:", "2.5"},
		{"no delimiter", " text ", "Answer:", "no delimiter text"},
		{"Answer: ", "  raw ", "", "raw"},
	}
	for _, c := range cases {
		if got := ExtractOutput(c.prompt, c.gen, c.delim); got != c.want {
			t.Errorf("ExtractOutput(%q, %q) = %q, want %q", c.prompt, c.gen, got, c.want)
		}
	}
}

func TestSQuADScores(t *testing.T) {
	if got := NormalizeAnswer("The  Amount, of (an) Asset!"); got != "amount of asset" {
		t.Fatalf("NormalizeAnswer = %q", got)
	}
	cases := []struct {
		pred, ref string
		em, f1    float64
	}{
		{"The amount of cash.", "amount of cash", 1, 1},
		{"amount of cash held", "amount of cash", 0, 2 * (3.0 / 4) * 1 / (3.0/4 + 1)},
		{"cash cash", "cash", 0, 2 * 0.5 * 1 / 1.5},
		{"", "", 1, 1},
		{"", "x", 0, 0},
		{"nothing shared", "amount", 0, 0},
	}
	for _, c := range cases {
		if em, f1 := ExactMatch(c.pred, c.ref), TokenF1(c.pred, c.ref); em != c.em || math.Abs(f1-c.f1) > 1e-15 {
			t.Errorf("(%q, %q): em %v f1 %v, want %v %v", c.pred, c.ref, em, f1, c.em, c.f1)
		}
	}
}

func TestNumericMatch(t *testing.T) {
	cases := []struct {
		out, target string
		want        bool
	}{
		{"15092.44", "15092.44", true},
		{"The NPV is $15,092.44.", "15092.44", true},
		{"3", "3.0", true},
		{"3.004", "3.0", true},
		{"3.01", "3.0", false},
		{"-0.5", "-0.50", true},
		{"none", "1.0", false},
	}
	for _, c := range cases {
		if got := NumericMatch(c.out, c.target); got != c.want {
			t.Errorf("NumericMatch(%q, %q) = %v", c.out, c.target, got)
		}
	}
}

// scripted answers every prompt by a function of its position in the whole run and records calls.
type scripted struct {
	answer    func(k int, prompt string) string
	calls     []int // batch sizes
	maxTokens []int
	seen      int
	cancel    func() // called after the first batch, if set
	fail      error
}

func (s *scripted) GenerateGreedy(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.calls = append(s.calls, len(prompts))
	s.maxTokens = append(s.maxTokens, maxNewTokens)
	out := make([]string, len(prompts))
	for i, p := range prompts {
		out[i] = s.answer(s.seen, p)
		s.seen++
	}
	if s.cancel != nil {
		s.cancel()
	}
	return out, nil
}

func fixture(task Task) string {
	if task.Name == "financebench" {
		return "testdata/financebench_3.jsonl"
	}
	return "testdata/" + task.Name + "_12.jsonl"
}

// TestEvaluateAllTasks runs every task's fixture through Evaluate with a generator that answers
// correctly (the target, after some noise words that contain no label) on even rows and says
// "unsure" on odd rows; the expected scores follow from the rule, computed per task below.
func TestEvaluateAllTasks(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, task := range Tasks() {
		t.Run(task.Name, func(t *testing.T) {
			ds, err := data.ReadJSONL(fixture(task), data.ReadOptions{Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Release()
			targets, _ := ds.Strings(data.ColTarget)
			gen := &scripted{answer: func(k int, prompt string) string {
				if k%2 == 0 {
					return " " + targets[k] + "\n"
				}
				return " unsure"
			}}
			res, err := Evaluate(context.Background(), gen, task, ds, Options{Model: "scripted", BatchSize: 5, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			n := len(targets)
			if !reflect.DeepEqual(gen.calls, batchSizes(n, 5)) {
				t.Fatalf("batches %v, want %v", gen.calls, batchSizes(n, 5))
			}
			for _, m := range gen.maxTokens {
				if m != task.MaxNewTokens {
					t.Fatalf("max new tokens %d, want %d", m, task.MaxNewTokens)
				}
			}
			// Odd rows say "unsure", which contains no label, so exactly the even rows are correct.
			wantCorrect := (n + 1) / 2
			got := 0
			resp := make([]string, n)
			for i, r := range res.Rows {
				if r.Correct {
					got++
					resp[i] = r.Target
				} else {
					resp[i] = r.Output
				}
				if r.Correct != (i%2 == 0) {
					t.Fatalf("row %d: correct=%v (output %q, target %q, prediction %q)", i, r.Correct, r.Output, r.Target, r.Prediction)
				}
			}
			s := res.Summary
			if s.N != n || got != wantCorrect || math.Abs(s.Accuracy-float64(wantCorrect)/float64(n)) > 1e-15 {
				t.Fatalf("summary %v: %d correct", s, got)
			}
			switch task.Scoring {
			case FreeText:
				if s.MetricNames != [2]string{"exact_match", "token_f1"} || !strings.Contains(s.Note, "BERTScore") {
					t.Fatalf("free-text summary %+v", s)
				}
				if math.Abs(s.F1-float64(wantCorrect)/float64(n)) > 1e-12 { // token F1: 1 on even rows, 0 on "unsure"
					t.Fatalf("token_f1 %v", s.F1)
				}
			default:
				if s.MetricNames != [2]string{"accuracy", "f1"} || math.Abs(s.F1-WeightedF1(targets, resp)) > 1e-15 {
					t.Fatalf("summary %+v", s)
				}
			}
			if task.Scoring == Numeric {
				if v := res.Summary.Metrics[2]; v.Name != "numeric_accuracy" || v.Value != s.Accuracy {
					t.Fatalf("numeric metric %+v", res.Summary.Metrics)
				}
			}
			tbl := res.Table()
			if tbl.NumRows() != int64(n) || tbl.NumCols() != 10 {
				t.Fatalf("table %d×%d", tbl.NumRows(), tbl.NumCols())
			}
			view := res.Dataset()
			if !strings.Contains(view.HTML(), "prediction") || !strings.Contains(res.HTML(), task.Name) {
				t.Fatal("HTML views lack their content")
			}
			view.Release()
		})
	}
}

func batchSizes(n, b int) []int {
	var out []int
	for lo := 0; lo < n; lo += b {
		out = append(out, min(b, n-lo))
	}
	return out
}

func TestEvaluateStopsAndFails(t *testing.T) {
	task, _ := LookupTask("fpb")
	prompts := make([]string, 10)
	targets := make([]string, 10)
	for i := range prompts {
		prompts[i], targets[i] = fmt.Sprintf("q%d Answer: ", i), "neutral"
	}
	ctx, cancel := context.WithCancel(context.Background())
	gen := &scripted{answer: func(int, string) string { return "neutral" }, cancel: cancel}
	res, err := EvaluatePrompts(ctx, gen, task, prompts, targets, Options{BatchSize: 4})
	if !errors.Is(err, context.Canceled) || res == nil || res.Summary.N != 4 || len(gen.calls) != 1 {
		t.Fatalf("cancelled run: err %v, calls %v, result %+v", err, gen.calls, res)
	}
	res.Release()
	boom := errors.New("boom")
	_, err = EvaluatePrompts(context.Background(), &scripted{fail: boom}, task, prompts, targets, Options{BatchSize: 4, Limit: 6})
	if !errors.Is(err, boom) {
		t.Fatalf("generator error: %v", err)
	}
	gen = &scripted{answer: func(int, string) string { return "x" }}
	res, err = EvaluatePrompts(context.Background(), gen, task, prompts, targets, Options{BatchSize: 4, Limit: 6, MaxNewTokens: 3})
	if err != nil || res.Summary.N != 6 || !reflect.DeepEqual(gen.calls, []int{4, 2}) || gen.maxTokens[0] != 3 {
		t.Fatalf("limit: %v %v %v", err, gen.calls, gen.maxTokens)
	}
	res.Release()
	if _, err := LookupTask("nope"); err == nil {
		t.Fatal("want an error for an unknown task")
	}
}

func TestCompare(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sums := []Summary{
		{Task: "fpb", Model: "base", N: 10, Metrics: []Metric{{"accuracy", 0.5}, {"f1", 0.4}}},
		{Task: "fpb", Model: "lora", N: 10, Metrics: []Metric{{"accuracy", 0.75}, {"f1", 0.7}}},
		{Task: "xbrl_term", Model: "lora", N: 3, Metrics: []Metric{{"exact_match", 0}, {"token_f1", 0.25}}},
	}
	c, err := Compare(sums, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	tbl := c.Table()
	if tbl.NumRows() != 4 || tbl.NumCols() != 6 {
		t.Fatalf("comparison table %d×%d", tbl.NumRows(), tbl.NumCols())
	}
	if c.Rows[0].Values[1]-c.Rows[0].Values[0] != 0.25 || c.Rows[2].Has[0] {
		t.Fatalf("rows %+v", c.Rows)
	}
	h := c.HTML()
	for _, want := range []string{"<th>base</th>", "<th>Δ lora</th>", "+0.2500", "–"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q:\n%s", want, h)
		}
	}
	if !strings.Contains(c.String(), "xbrl_term") {
		t.Error(c.String())
	}
	if _, err := Compare(append(sums, sums[0]), mem); err == nil {
		t.Fatal("want an error for a duplicate (model, task)")
	}
}

func TestModelGenerator(t *testing.T) {
	m, err := model.TinyRandom(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	g := &ModelGenerator{Model: m, Tokenizer: model.ByteTokenizer{}}
	ctx := context.Background()
	prompts := []string{"Input: shares fell\nAnswer: ", "Q?\nAnswer: ", "a longer prompt about revenue growth. Answer:"}
	batch, err := g.GenerateGreedy(ctx, prompts, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != len(prompts) {
		t.Fatalf("%d outputs for %d prompts", len(batch), len(prompts))
	}
	for i, p := range prompts {
		one, err := g.GenerateGreedy(ctx, []string{p}, 6)
		if err != nil {
			t.Fatal(err)
		}
		if one[0] != batch[i] {
			t.Fatalf("prompt %d: alone %q, in a batch %q", i, one[0], batch[i])
		}
		if len(one[0]) > 6 {
			t.Fatalf("prompt %d: %d bytes from 6 byte tokens", i, len(one[0]))
		}
	}
	// Truncation keeps BOS and the last MaxPromptTokens-1 tokens: the same as the cut prompt.
	long := prompts[2]
	tg := &ModelGenerator{Model: m, Tokenizer: model.ByteTokenizer{}, MaxPromptTokens: 10}
	cut, err := tg.GenerateGreedy(ctx, []string{long}, 6)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := g.GenerateGreedy(ctx, []string{long[len(long)-9:]}, 6)
	if tg.Truncated() != 1 || cut[0] != want[0] {
		t.Fatalf("truncated %d, output %q, want %q", tg.Truncated(), cut[0], want[0])
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.GenerateGreedy(cctx, prompts, 6); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestEvaluateMany(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ds, err := data.ReadJSONL("testdata/fiqa_12.jsonl", data.ReadOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Release()
	targets, _ := ds.Strings(data.ColTarget)
	task, _ := LookupTask("fiqa")
	base := &scripted{answer: func(int, string) string { return "neutral" }}
	tuned := &scripted{answer: func(k int, _ string) string { return targets[k] }}
	results, cmp, err := EvaluateMany(context.Background(), []Candidate{{"base", base}, {"lora", tuned}}, task, ds, Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer cmp.Release()
	for _, r := range results {
		defer r.Release()
	}
	neutral := 0
	for _, tg := range targets {
		if tg == "neutral" {
			neutral++
		}
	}
	if results[1].Summary.Accuracy != 1 || results[0].Summary.Accuracy != float64(neutral)/float64(len(targets)) {
		t.Fatalf("accuracies %v %v", results[0].Summary, results[1].Summary)
	}
	if cmp.Models[0] != "base" || cmp.Rows[0].Values[1]-cmp.Rows[0].Values[0] != 1-results[0].Summary.Accuracy {
		t.Fatalf("comparison %+v", cmp.Rows)
	}
}

func TestLoadTask(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile("testdata/ner_12.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/ner_test.jsonl", raw, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, task, err := LoadTask(dir, "NER", data.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Release()
	if task.Name != "ner" || task.MaxNewTokens != 10 || ds.NumRows() != 12 {
		t.Fatalf("task %+v, %d rows", task, ds.NumRows())
	}
	if _, _, err := LoadTask(dir, "fpb", data.ReadOptions{}); err == nil {
		t.Fatal("want an error for a missing task file")
	}
}
