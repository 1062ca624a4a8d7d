package model

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tokenizer"
)

// Expected values: torch.nn.functional.gelu(x, approximate="tanh") in float64.
func TestGeluTanh(t *testing.T) {
	for _, c := range []struct{ x, want float64 }{
		{0, 0}, {1, 0.8411919906082768}, {-1, -0.15880800939172324}, {3, 2.996362607918227}, {-4.5, -5.136737411925996e-06},
	} {
		if got := GeluTanh(c.x); math.Abs(got-c.want) > 1e-12*(1+math.Abs(c.want)) {
			t.Errorf("GeluTanh(%g) = %.12g, want %.12g", c.x, got, c.want)
		}
	}
}

func TestGemma3ConfigLayerPattern(t *testing.T) {
	c := &Gemma3Config{SlidingWindowPattern: 6}
	var global []int
	for i := 0; i < 18; i++ {
		if c.IsGlobal(i) {
			global = append(global, i)
		}
	}
	if len(global) != 3 || global[0] != 5 || global[1] != 11 || global[2] != 17 {
		t.Errorf("global layers %v, want [5 11 17]", global)
	}
}

// TestGemma3GGUF loads the real Gemma 3 270M Q4_K_M file and checks its configuration and that it
// predicts English text like a trained model.
func TestGemma3GGUF(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	path := installedModel(t, "gemma3-270m")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Gemma3ConfigFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("config: %s", cfg)
	if cfg.NumLayers != 18 || cfg.HiddenSize != 640 || cfg.HeadDim != 256 || cfg.NumKVHeads != 1 || cfg.SlidingWindow != 512 {
		t.Errorf("unexpected config %+v", cfg)
	}
	tok, err := tokenizer.LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(financeText, true)
	in := make([]int32, len(ids))
	for i, id := range ids {
		in[i] = int32(id)
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
		m, err := LoadGemma3GGUF(context.Background(), path, LoadOptions{DType: dt})
		if err != nil {
			t.Fatal(err)
		}
		lg, err := m.Forward(context.Background(), Input{IDs: in, B: 1}, nil)
		if err != nil {
			m.Free()
			t.Fatal(err)
		}
		nll := meanNLL(t, m.Backend, lg, in)
		lg.Free()
		if m.Params() != 268098176 { // the sum of the file's tensor elements (finlora gguf)
			t.Errorf("Params = %d, want 268098176", m.Params())
		}
		t.Logf("%s weights: %d bytes", dt, m.Bytes())
		m.Free()
		t.Logf("Gemma 3 270M (%s weights) mean NLL over %d tokens: %.3f nats (chance: %.1f)", dt, len(in), nll, math.Log(float64(cfg.VocabSize)))
		if nll > 4 {
			t.Errorf("%s: mean NLL %.3f: the model does not predict text", dt, nll)
		}
	}
}

// installedGemma3 loads the installed Gemma 3 270M (see installedModel) with opts and its
// tokenizer; the model is freed when the test ends. It skips in -short mode.
func installedGemma3(t *testing.T, opts LoadOptions) (*Gemma3, tokenizer.Tokenizer) {
	t.Helper()
	if testing.Short() {
		t.Skip("short")
	}
	path := installedModel(t, "gemma3-270m")
	tok, err := tokenizer.LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadGemma3GGUF(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Free() })
	return m, tok
}

// TestGemma3CacheMatchesFullPass: prefill with the KV cache in two chunks, then one token, gives
// the logits of a single full pass (real model; skipped when not installed).
func TestGemma3CacheMatchesFullPass(t *testing.T) {
	m, tok := installedGemma3(t, LoadOptions{})
	ids := tok.Encode(financeText, true)
	in := make([]int32, len(ids))
	for i, id := range ids {
		in[i] = int32(id)
	}
	ctx := context.Background()
	full, err := m.LastLogits(ctx, Input{IDs: in, B: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Free()
	cache, err := m.NewCache(1, len(in))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Free()
	n := len(in)
	for _, chunk := range [][]int32{in[:n/2], in[n/2 : n-1]} {
		lg, err := m.LastLogits(ctx, Input{IDs: chunk, B: 1}, cache)
		if err != nil {
			t.Fatal(err)
		}
		lg.Free()
	}
	inc, err := m.LastLogits(ctx, Input{IDs: in[n-1:], B: 1}, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Free()
	a, _ := m.Backend.ToFloat32(full)
	b, _ := m.Backend.ToFloat32(inc)
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	if worst > 1e-3 || cache.Len != n {
		t.Errorf("cached decode differs from the full pass by %.3g (cache.Len %d, want %d)", worst, cache.Len, n)
	}
}

// TestGemma3Greedy decodes greedily with the KV cache (BF16 weights) and compares the tokens with
// transformers' greedy generate (float32 CPU, max_new_tokens=8, do_sample=False), whose ids for
// these prompts were: [506 5279 529 506 2891 529 7001 236761] " the capital of the country of
// France." and [7001 532 563 506 1346 13896 3207 528] " France and is the most visited city in".
func TestGemma3Greedy(t *testing.T) {
	m, tok := installedGemma3(t, LoadOptions{DType: tensor.BF16})
	for _, c := range []struct {
		prompt string
		want   []int
	}{
		{"The capital of France is", []int{506, 5279, 529, 506, 2891, 529, 7001, 236761}},
		{"Paris is the capital of", []int{7001, 532, 563, 506, 1346, 13896, 3207, 528}},
	} {
		ids := tok.Encode(c.prompt, true)
		cache, err := m.NewCache(1, len(ids)+len(c.want))
		if err != nil {
			t.Fatal(err)
		}
		in := make([]int32, len(ids))
		for i, id := range ids {
			in[i] = int32(id)
		}
		var out []int
		for range c.want {
			lg, err := m.LastLogits(context.Background(), Input{IDs: in, B: 1}, cache)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := m.Backend.ToFloat32(lg)
			lg.Free()
			best := 0
			for i := range v {
				if v[i] > v[best] {
					best = i
				}
			}
			out = append(out, best)
			in = []int32{int32(best)}
		}
		cache.Free()
		t.Logf("%q -> %q", c.prompt, tok.Decode(out, true))
		if !reflect.DeepEqual(out, c.want) {
			t.Errorf("%q: greedy ids %v, transformers %v", c.prompt, out, c.want)
		}
	}
}

// TestGemma3BatchedGreedy: three prompts of different lengths decoded in one left-padded batch
// give transformers' unbatched greedy ids (see TestGemma3Greedy; the third:
// [9079 107 14977 236787 2900 563 506 5279] " Paris\nQuestion: What is the capital").
func TestGemma3BatchedGreedy(t *testing.T) {
	m, tok := installedGemma3(t, LoadOptions{DType: tensor.BF16})
	prompts := []string{"The capital of France is", "Question: What is the capital of France?\nAnswer:", "Paris is the capital of"}
	want := [][]int{
		{506, 5279, 529, 506, 2891, 529, 7001, 236761},
		{9079, 107, 14977, 236787, 2900, 563, 506, 5279},
		{7001, 532, 563, 506, 1346, 13896, 3207, 528},
	}
	ids := make([][]int, len(prompts))
	for i, p := range prompts {
		ids[i] = tok.Encode(p, true)
	}
	got, err := m.Greedy(context.Background(), ids, 8, tok.EOS())
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("prompt %d %q: ids %v, transformers %v", i, prompts[i], got[i], want[i])
		}
	}
	gen := &Gemma3Generator{Model: m, Tokenizer: tok}
	texts, err := gen.GenerateGreedy(context.Background(), prompts[1:2], 3)
	if err != nil || len(texts) != 1 || texts[0] != " Paris\nQuestion" {
		t.Errorf("GenerateGreedy = %q, %v; want [\" Paris\\nQuestion\"]", texts, err)
	}
}
