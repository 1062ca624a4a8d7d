package main

import (
	"errors"
	"testing"

	"github.com/finlora/finlora/runtime"
)

func TestExperimentUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-ranks", "4,x"},
		{"-ranks", "0"},
		{"-eval-limit", "0"},
		{"-train-sentiment", "0", "-train-ner", "0"},
		{"-lr", "-1"},
		{"extra"},
	} {
		if err := runExperiment(args); !errors.Is(err, errUsage) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
}

func TestDemoGemma3Path(t *testing.T) {
	if p := demoGemma3Path(""); p != "" {
		t.Errorf("no --model: %q, want the default model's path (runtime.DefaultModel)", p)
	}
	if p := demoGemma3Path("tiny-random"); p != "" {
		t.Errorf("tiny-random: %q", p)
	}
	if p := runtime.InstalledModelPath("smollm2-135m"); p != "" && demoGemma3Path(p) != "" {
		t.Errorf("the llama-architecture SmolLM2 file was taken for Gemma 3")
	}
	if p := runtime.InstalledModelPath("gemma3-270m"); p != "" && demoGemma3Path(p) != p {
		t.Errorf("the installed Gemma 3 file %s was not recognized", p)
	}
}
