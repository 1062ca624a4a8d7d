// Package eval runs FinLoRA's evaluation protocol: batched greedy generation through a Generator,
// FinLoRA's earliest-label matching, accuracy and sklearn-compatible weighted F1, free-text scores
// for the tasks FinLoRA scores with BERTScore, per-question results as an Arrow table, and a
// side-by-side comparison of several models (base and adapters).
//
// The protocol (FinLoRA test/test_dataset.py, summarised in ../shared/data/finlora/README.md):
// greedy decoding with a per-task number of new tokens; the output is the text after the last
// "Answer:" of prompt+generation, whitespace-trimmed; the label set is the distinct targets of the
// task, lower-cased; the prediction is the label whose first occurrence in the lower-cased output
// comes earliest; accuracy is the share of rows whose prediction equals the lower-cased target;
// F1 is sklearn's f1_score(targets, responses, average="weighted") where a response is the target
// when correct and the raw output otherwise.
package eval

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/finlora/finlora/runtime/data"
)

// Scoring says how a task is scored.
type Scoring int

const (
	// Classification: FinLoRA's earliest-label accuracy and weighted F1.
	Classification Scoring = iota
	// Numeric: FinLoRA scores it as Classification over the set of distinct target numbers
	// (formula); we add numeric_accuracy (see NumericMatch).
	Numeric
	// FreeText: FinLoRA scores it with BERTScore (ProsusAI/finbert), which needs a BERT model we
	// do not run; we report SQuAD-style exact_match and token_f1 instead, and say so.
	FreeText
)

// String returns the scoring's name.
func (s Scoring) String() string {
	switch s {
	case Classification:
		return "classification"
	case Numeric:
		return "numeric"
	case FreeText:
		return "free-text"
	}
	return fmt.Sprintf("Scoring(%d)", int(s))
}

// Task is one FinLoRA evaluation task.
type Task struct {
	Name         string  // as on the command line: fpb, fiqa, ...
	File         string  // file name inside FinLoRA's test directory
	MaxNewTokens int     // FinLoRA's max_new_token_dict value
	Scoring      Scoring // how the outputs are scored
}

// Path returns the task's file inside dataDir (e.g. ../shared/data/finlora/test).
func (t Task) Path(dataDir string) string { return filepath.Join(dataDir, t.File) }

var tasks = []Task{
	{"fpb", "fpb_test.jsonl", 10, Classification},
	{"fiqa", "fiqa_test.jsonl", 10, Classification},
	{"tfns", "tfns_test.jsonl", 10, Classification},
	{"nwgi", "nwgi_test.jsonl", 10, Classification},
	{"ner", "ner_test.jsonl", 10, Classification},
	{"xbrl_term", "xbrl_term_test.jsonl", 50, FreeText},
	{"formula", "formula_test.jsonl", 50, Numeric},
	{"financebench", "financebench_test.jsonl", 50, FreeText},
}

// Tasks lists the eight FinLoRA tasks this package knows, in FinLoRA's order.
func Tasks() []Task { return append([]Task(nil), tasks...) }

// TaskNames lists the task names, e.g. for a usage line.
func TaskNames() []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = t.Name
	}
	return out
}

// LookupTask returns the task of that name (case-insensitive).
func LookupTask(name string) (Task, error) {
	for _, t := range tasks {
		if strings.EqualFold(t.Name, name) {
			return t, nil
		}
	}
	return Task{}, fmt.Errorf("unknown task %q (want one of %s)", name, strings.Join(TaskNames(), ", "))
}

// Labels returns the label set of a task: the distinct targets, lower-cased, sorted.
func Labels(targets []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range targets {
		l := strings.ToLower(t)
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// LoadTask reads the named task's file from dataDir (e.g. ../shared/data/finlora/test) as a
// {context, target} dataset. The caller owns the dataset (Release).
func LoadTask(dataDir, name string, opts data.ReadOptions) (*data.Dataset, Task, error) {
	t, err := LookupTask(name)
	if err != nil {
		return nil, Task{}, err
	}
	ds, err := data.ReadJSONL(t.Path(dataDir), opts)
	if err != nil {
		return nil, Task{}, err
	}
	if ds.Kind() != data.KindPrompt {
		ds.Release()
		return nil, Task{}, fmt.Errorf("task %s: %s has no context/target columns (%v)", name, t.Path(dataDir), ds.ColumnNames())
	}
	return ds, t, nil
}
