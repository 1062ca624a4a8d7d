package model

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// writeFixtureWith copies tiny-llama into a temp dir with edits to its config.json.
func writeFixtureWith(t *testing.T, edit func(cfg map[string]any)) string {
	t.Helper()
	src := filepath.Join("testdata", "tiny-llama")
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(raw, &cfg)
	edit(cfg)
	dir := t.TempDir()
	js, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644)
	w, _ := os.ReadFile(filepath.Join(src, "model.safetensors"))
	os.WriteFile(filepath.Join(dir, "model.safetensors"), w, 0o644)
	return dir
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(cfg map[string]any)
		want string
	}{
		{"shape", func(c map[string]any) { c["intermediate_size"] = 128 }, "model.layers.0.mlp.gate_proj.weight has shape [160 64], config.json implies [128 64]"},
		{"layers", func(c map[string]any) { c["num_hidden_layers"] = 3 }, "tensor model.layers.2.input_layernorm.weight missing"},
		{"model type", func(c map[string]any) { c["model_type"] = "gemma" }, "unsupported model_type \"gemma\""},
		{"qkv bias expected", func(c map[string]any) { c["model_type"] = "qwen2" }, "self_attn.q_proj.bias missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := cpu.New(1)
			_, err := Load(context.Background(), writeFixtureWith(t, tc.edit), LoadOptions{Backend: b})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if ms := b.MemStats(); ms.Current != 0 || ms.Tensors != 0 {
				t.Errorf("a failed load left %d bytes in %d tensors on the backend", ms.Current, ms.Tensors)
			}
		})
	}
	if _, err := Load(context.Background(), "testdata/no-such-model", LoadOptions{Backend: cpu.New(1)}); err == nil {
		t.Error("loading a missing directory succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, filepath.Join("testdata", "tiny-llama"), LoadOptions{Backend: cpu.New(1)}); err == nil {
		t.Error("loading with a cancelled context succeeded")
	}
}

// Forward passes, cached decoding and Free leave no tensor behind on the backend.
func TestNoLeaks(t *testing.T) {
	b := cpu.New(0)
	m, err := Load(context.Background(), filepath.Join("testdata", "tiny-qwen3"), LoadOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	loaded := b.MemStats()
	if loaded.Current != m.Bytes()+m.ropeCos.Bytes()+m.ropeSin.Bytes() {
		t.Errorf("backend holds %d bytes after load; weights %d + rope tables", loaded.Current, m.Bytes())
	}
	ctx := context.Background()
	ids := []int32{1, 2, 3, 4, 5, 6}
	lg, err := m.Forward(ctx, Input{IDs: ids, B: 2, Pad: []int{0, 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg.Free()
	c, _ := m.NewCache(2, 8)
	for _, in := range []Input{{IDs: ids, B: 2, Pad: []int{1, 0}}, {IDs: []int32{7, 8}, B: 2}} {
		lg, err := m.LastLogits(ctx, in, c)
		if err != nil {
			t.Fatal(err)
		}
		lg.Free()
	}
	if _, err := m.Forward(ctx, Input{IDs: []int32{1, 2, 3, 4, 5}, B: 2}, nil); err == nil {
		t.Error("5 ids for 2 sequences accepted")
	}
	c.Free()
	if got := b.MemStats(); got.Current != loaded.Current || got.Tensors != loaded.Tensors {
		t.Errorf("after forward passes: %+v, after load: %+v", got, loaded)
	}
	m.Free()
	if got := b.MemStats(); got.Current != 0 || got.Tensors != 0 {
		t.Errorf("after Free: %+v", got)
	}
	if _, err := m.Forward(ctx, Input{IDs: ids, B: 1}, nil); err == nil {
		t.Error("forward on a freed model succeeded")
	}
}
