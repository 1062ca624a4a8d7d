package tokenizer

import (
	"math"
	"os"
	"syscall"
	"testing"
)

// finloraPrompts reads the "context" fields of the FinLoRA FPB test split from ../shared (see
// sharedFinLoRA), or returns nil when it is absent.
func finloraPrompts(b *testing.B) []string {
	path := sharedFinLoRA + "/test/fpb_test.jsonl"
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	var out []string
	eachJSONLRow(b, path, func(_ int, row map[string]any) {
		s, _ := row["context"].(string)
		out = append(out, s)
	})
	return out
}

// BenchmarkEncodeFinLoRA encodes every FPB test prompt once per iteration (with the special tokens)
// and reports the throughput in MB/s of input text. The per-word cache is warm after the first
// iteration, as it is when a data set is tokenized. Skipped without ../shared.
func BenchmarkEncodeFinLoRA(b *testing.B) {
	prompts := finloraPrompts(b)
	if len(prompts) == 0 {
		b.Skip("../shared/data/finlora/test/fpb_test.jsonl not found")
	}
	tk := llama(b)
	n := 0
	for _, p := range prompts {
		n += len(p)
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	cpu0 := cpuSeconds()
	tokens := 0
	for i := 0; i < b.N; i++ {
		for _, p := range prompts {
			tokens += len(tk.Encode(p, true))
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	// On a shared machine wall time includes waiting for a core; MB per CPU second does not.
	b.ReportMetric(float64(n)*float64(b.N)/1e6/(cpuSeconds()-cpu0), "MB/cpu-s")
}

// cpuSeconds is the user+system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkEncodeColdCache measures the same prompts with the per-word cache cleared every
// iteration (every distinct word runs the merges).
func BenchmarkEncodeColdCache(b *testing.B) {
	prompts := finloraPrompts(b)
	if len(prompts) == 0 {
		b.Skip("../shared/data/finlora/test/fpb_test.jsonl not found")
	}
	tk := llama(b)
	n := 0
	for _, p := range prompts {
		n += len(p)
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		tk.model.clearCache()
		for _, p := range prompts {
			tk.Encode(p, true)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/1e6/(cpuSeconds()-cpu0), "MB/cpu-s")
}
