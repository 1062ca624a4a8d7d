package experiment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// writeTasks writes small FinLoRA-shaped files: every task has rows over a few input texts, NER
// three phrasings per sentence, and one TFNS text that also appears in FPB.
func writeTasks(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(task string, rows [][2]string) {
		f, err := os.Create(filepath.Join(dir, task+"_test.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, r := range rows {
			b, _ := json.Marshal(map[string]string{"context": r[0], "target": r[1]})
			fmt.Fprintf(f, "%s\n", b)
		}
	}
	prompt := func(instr, input string) string {
		return "Instruction: " + instr + "\nInput: " + input + "\nAnswer: "
	}
	labels := []string{"negative", "neutral", "positive"}
	for _, task := range []string{"fpb", "fiqa", "tfns", "nwgi"} {
		var rows [][2]string
		for i := 0; i < 30; i++ {
			rows = append(rows, [2]string{prompt("sentiment?", fmt.Sprintf("%s text %d", task, i)), labels[i%3]})
		}
		if task == "tfns" {
			rows = append(rows, [2]string{prompt("sentiment?", "fpb text 3"), "neutral"}) // shared with FPB
		}
		write(task, rows)
	}
	var ner [][2]string
	for i := 0; i < 20; i++ {
		for _, instr := range []string{"entity type of X?", "identify X", "what is X"} {
			ner = append(ner, [2]string{prompt(instr, fmt.Sprintf("sentence %d", i)), []string{"person", "organization", "location"}[i%3]})
		}
	}
	write("ner", ner)
	return dir
}

func TestSplitsDisjointAndGrouped(t *testing.T) {
	dir := writeTasks(t)
	s, err := MakeSplits(dir, DefaultTasks, 10, 12, 9, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	for _, task := range DefaultTasks {
		if n := len(s.Eval[task]); n != 10 {
			t.Errorf("%s: %d evaluation rows, want 10", task, n)
		}
	}
	count := map[string]int{}
	for _, r := range s.Train {
		count[r.Task]++
		if r.Task == "fpb" || r.Task == "fiqa" {
			t.Errorf("training row from %s", r.Task)
		}
		if InputText(r.Context) == "fpb text 3" {
			t.Errorf("training row %s %d shares its input with an FPB row", r.Task, r.Index)
		}
	}
	if count["tfns"] != 6 || count["nwgi"] != 6 || count["ner"] != 9 {
		t.Errorf("training rows by task %v, want tfns 6, nwgi 6, ner 9", count)
	}
	// NER: a sentence's three phrasings are all evaluated or all in the pool
	evalSent := map[string]int{}
	for _, r := range s.Eval["ner"] {
		evalSent[InputText(r.Context)]++
	}
	for _, r := range s.Train {
		if evalSent[InputText(r.Context)] > 0 {
			t.Errorf("NER sentence %q is both trained on and evaluated", InputText(r.Context))
		}
	}
	again, _ := MakeSplits(dir, DefaultTasks, 10, 12, 9, 7)
	if !reflect.DeepEqual(s.Train, again.Train) || !reflect.DeepEqual(s.Eval, again.Eval) {
		t.Error("the split is not deterministic")
	}
	other, _ := MakeSplits(dir, DefaultTasks, 10, 12, 9, 8)
	if reflect.DeepEqual(s.Eval["fpb"], other.Eval["fpb"]) {
		t.Error("another seed gives the same FPB evaluation rows")
	}
}

func TestInputText(t *testing.T) {
	for _, c := range [][2]string{
		{"Instruction: x\nInput: The stock fell.\nAnswer: ", "The stock fell."},
		{"Instruction: x\nOptions: a, b\nInput: Answer: this\nAnswer: ", "Answer: this"},
		{"no markers", "no markers"},
	} {
		if got := InputText(c[0]); got != c[1] {
			t.Errorf("InputText(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

func TestFindDataDir(t *testing.T) {
	dir := writeTasks(t)
	if got, err := FindDataDir(dir); err != nil || got != dir {
		t.Errorf("override: %q, %v", got, err)
	}
	t.Setenv("FINLORA_DATA_DIR", dir)
	if got, err := FindDataDir(""); err != nil || got != dir {
		t.Errorf("env: %q, %v", got, err)
	}
	if _, err := FindDataDir(t.TempDir()); err == nil {
		t.Error("a folder without fpb_test.jsonl was accepted")
	}
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	o.defaults()
	if o.EvalLimit != 200 || o.TrainSentiment != 200 || o.TrainNER != 100 || o.LR != 1e-3 || len(o.Ranks) != 2 || o.Seed != 42 {
		t.Errorf("defaults %+v", o)
	}
	o = Options{TrainNER: -1, Dropout: -1}
	o.defaults()
	if o.TrainNER != 0 || o.Dropout != 0 {
		t.Errorf("negative TrainNER/Dropout should mean none: %d, %g", o.TrainNER, o.Dropout)
	}
}
