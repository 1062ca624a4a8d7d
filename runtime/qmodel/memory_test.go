package qmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	st "github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// writeSynthetic writes a random float32 Llama checkpoint (hidden 512, MLP 1536, 4 layers,
// vocab 1024: 12.6 M linear parameters, 50 MB of linear weights) to a temporary directory.
func writeSynthetic(t *testing.T) (dir string, linearBytes int64) {
	t.Helper()
	dir = t.TempDir()
	raw, err := os.ReadFile("testdata/tiny-llama/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	const d, inter, layers, vocab, heads, kv, hd = 512, 1536, 4, 1024, 8, 2, 64
	cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"] = d, inter, layers, vocab
	cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"] = heads, kv, hd
	js, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	g := rand.New(rand.NewPCG(1, 2))
	var ts []st.Tensor
	add := func(name string, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(g.NormFloat64()) * 0.02
		}
		ts = append(ts, st.Tensor{Name: name, DType: st.F32, Shape: shape, Data: st.Float32Bytes(v)})
	}
	add("model.embed_tokens.weight", vocab, d)
	add("model.norm.weight", d)
	add("lm_head.weight", vocab, d)
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", d)
		add(p+"post_attention_layernorm.weight", d)
		for _, x := range []struct {
			n       string
			out, in int
		}{{"self_attn.q_proj", heads * hd, d}, {"self_attn.k_proj", kv * hd, d}, {"self_attn.v_proj", kv * hd, d},
			{"self_attn.o_proj", d, heads * hd}, {"mlp.gate_proj", inter, d}, {"mlp.up_proj", inter, d}, {"mlp.down_proj", d, inter}} {
			add(p+x.n+".weight", x.out, x.in)
			linearBytes += int64(4 * x.out * x.in)
		}
	}
	if err := st.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	return dir, linearBytes
}

// TestQuantizeOnLoadMemory: quantizing on load never puts a float copy of a linear layer on the
// backend (its peak is the final quantized model) and keeps the host heap below the float model
// (one float32 layer at a time; measured by sampling the Go heap during the load).
func TestQuantizeOnLoadMemory(t *testing.T) {
	dir, linearBytes := writeSynthetic(t)
	// Collect garbage promptly so that the sampled heap is close to what is live: with the default
	// GOGC=100 an uncollected float32 layer or two lands in the peak at random.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	for _, p := range []Precision{NF4, Int8, F32} { // F32: the control, which must exceed the bound
		b := cpu.New(0)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Microsecond):
				}
			}
		}()
		m, err := Load(context.Background(), dir, Options{Backend: b, Precision: p})
		close(stop)
		wg.Wait()
		// The sampler may not have run since the last allocations (2 busy cores): the state right
		// after the load, with the whole model live, belongs to the peak as well.
		var end runtime.MemStats
		runtime.ReadMemStats(&end)
		if end.HeapInuse > peak.Load() {
			peak.Store(end.HeapInuse)
		}
		if err != nil {
			t.Fatal(err)
		}
		var q int64
		for _, l := range m.Linears() {
			if l.Packed != nil {
				q += l.Packed.Bytes()
			}
		}
		s := b.MemStats()
		heap := int64(peak.Load()) - int64(base.HeapInuse)
		t.Logf("%s: linear layers %.1f MB quantized (float32 %.1f MB); backend peak %.1f MB, final %.1f MB; host heap peak growth %.1f MB",
			p, float64(q)/1e6, float64(linearBytes)/1e6, float64(s.Peak)/1e6, float64(s.Current)/1e6, float64(heap)/1e6)
		if s.Peak != s.Current {
			t.Errorf("%s: backend peak %d above the loaded model's %d bytes", p, s.Peak, s.Current)
		}
		// The CPU backend's storage is host heap too: a float model would grow it by linearBytes
		// at least; quantizing on load costs the quantized model, one float32 layer and garbage
		// not yet collected.
		if p == F32 {
			if heap < linearBytes {
				t.Errorf("control: loading float32 grew the heap by %d bytes only, the float linear layers are %d", heap, linearBytes)
			}
		} else if heap > linearBytes*3/4 {
			t.Errorf("%s: host heap grew by %d bytes during the load, the float linear layers are %d", p, heap, linearBytes)
		}
		m.Free()
	}
}
