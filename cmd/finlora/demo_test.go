package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/lora"
)

// TestDemoTiny runs `finlora demo` on the tiny random model with few steps and rows: it must say
// which model ran and what its accuracy means, print one comparison table, and save a PEFT adapter
// that loads, with its loss curve.
func TestDemoTiny(t *testing.T) {
	out := filepath.Join(t.TempDir(), "adapter")
	got, err := captureStdout(t, func() error {
		return runDemo([]string{"--model", "tiny-random", "--steps", "3", "--limit", "8", "--out", out})
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	for _, want := range []string{
		"model: embedded tiny random model",
		"split with seed 42 into 120 training rows and 120 held-out rows (the first 8 are evaluated)",
		"finetuned \"lora\": 3/3 steps",
		"task  metric    n  base    lora    Δ lora",
		"fpb   accuracy  8",
		"majority baseline: always answering",
		"chance level",
		"adapter saved to " + out,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	a, err := lora.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Modules) != 14 { // 2 layers × 7 linears on the tiny model
		t.Errorf("saved adapter has %d modules, want 14", len(a.Modules))
	}
	for _, f := range []string{"loss.svg", "metrics.arrow"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{{"--steps", "-1"}, {"extra"}, {"--nope"}} {
		if err := runDemo(args); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if err := runDemo([]string{"--model", "tiny-random", "--data", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "fpb.jsonl") {
		t.Errorf("missing data: err = %v", err)
	}
}
