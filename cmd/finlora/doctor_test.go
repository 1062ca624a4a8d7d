package main

import (
	"strings"
	"testing"
)

// doctor exits 0 everywhere; without a GPU it says so plainly.
func TestDoctor(t *testing.T) {
	out, err := captureStdout(t, func() error { return runDoctor(nil) })
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"CUDA driver:", "NVRTC:", "cuBLASLt:", "kernel cache:"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CUDA driver: not available") && !strings.Contains(out, "no GPU found") {
		t.Errorf("no driver, but doctor does not say there is no GPU:\n%s", out)
	}
}

// bench runs end to end on the tiny preset (on the default backend: the CPU without a GPU).
func TestBenchTiny(t *testing.T) {
	out, err := captureStdout(t, func() error {
		return runBench([]string{"-preset", "tiny", "-batch", "2", "-seq", "16", "-steps", "1", "-warmup", "1", "-gemm", "256"})
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	if !strings.Contains(out, "finlora    bf16   false") || !strings.Contains(out, "finlora    bf16   true") {
		t.Errorf("bench table missing a row:\n%s", out)
	}
	// QLoRA: NF4 and int8 bases (quantized on the host, trained through tensor.Quantized)
	for _, q := range []string{"nf4", "int8"} {
		out, err := captureStdout(t, func() error {
			return runBench([]string{"-preset", "tiny", "-batch", "2", "-seq", "16", "-steps", "1", "-warmup", "1", "-gemm", "256", "-recompute", "on", "-quant", q})
		})
		if err != nil {
			t.Fatalf("bench -quant %s: %v\n%s", q, err, out)
		}
		if !strings.Contains(out, "finlora    "+q+" ") || !strings.Contains(out, "quantized 14 linear layers") {
			t.Errorf("bench -quant %s: no %s row or quantization line:\n%s", q, q, out)
		}
	}
}
