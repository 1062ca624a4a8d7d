package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// captureStdout runs f with os.Stdout redirected and returns what it printed.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	ferr := f()
	os.Stdout = old
	w.Close()
	return <-done, ferr
}

func TestEvalCommand(t *testing.T) {
	testdata := filepath.Join("..", "..", "runtime", "eval", "testdata")
	cases := []struct {
		task, file string
		want       []string
	}{
		{"fpb", "fpb_12.jsonl", []string{"questions         4", "accuracy", "f1"}},
		{"xbrl_term", "xbrl_term_12.jsonl", []string{"exact_match", "token_f1", "BERTScore"}},
		{"formula", "formula_12.jsonl", []string{"numeric_accuracy"}},
	}
	for _, c := range cases {
		t.Run(c.task, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rows.parquet")
			got, err := captureStdout(t, func() error {
				return runEval([]string{"--task", c.task, "--data", filepath.Join(testdata, c.file), "--limit", "4", "--batch-size", "2",
					"--max-new-tokens", "3", "--out", out})
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if st, err := os.Stat(out); err != nil || st.Size() == 0 {
				t.Errorf("--out file: %v", err)
			}
		})
	}
	for _, args := range [][]string{
		{"--data", "x.jsonl"},
		{"--task", "fpb"},
		{"--task", "nope", "--data", "x.jsonl"},
		{"--task", "fpb", "--data", "x.jsonl", "--batch-size", "0"},
		{"--task", "fpb", "--data", "x.jsonl", "--out", "x.txt"},
	} {
		if err := runEval(args); !errors.Is(err, errUsage) {
			t.Errorf("runEval(%q) = %v, want a usage error", args, err)
		}
	}
	if err := runEval([]string{"--task", "fpb", "--data", "does-not-exist.jsonl"}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("missing file: %v", err)
	}
}
