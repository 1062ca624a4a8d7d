package model

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// permuteRowsForGGUF applies llama.cpp's converter permutation (the inverse of unpermuteRows),
// written from its definition: w.reshape(heads, 2, HD/2, in).swapaxes(1, 2).
func permuteRowsForGGUF(w []float32, rows, in, heads int) []float32 {
	hd := rows / heads
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for s := 0; s < 2; s++ {
			for j := 0; j < hd/2; j++ {
				src := h*hd + s*hd/2 + j
				dst := h*hd + 2*j + s
				copy(out[dst*in:(dst+1)*in], w[src*in:(src+1)*in])
			}
		}
	}
	return out
}

// TestLlamaGGUFRoundTrip writes a random tiny Llama as a GGUF file the way llama.cpp's converter
// lays it out (GGUF names, reversed dims, permuted Q/K rows, llama.* metadata), loads it with
// LoadGGUF and checks the logits equal the original model's.
func TestLlamaGGUFRoundTrip(t *testing.T) {
	be, err := tensor.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := TinyConfig()
	cfg.TieWordEmbeddings = false
	ref, err := Random(be, cfg, 11, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Free()
	b := gguf.NewBuilder()
	set := func(k string, v any) {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("general.architecture", "llama")
	set("llama.embedding_length", uint32(cfg.HiddenSize))
	set("llama.feed_forward_length", uint32(cfg.IntermediateSize))
	set("llama.block_count", uint32(cfg.NumLayers))
	set("llama.attention.head_count", uint32(cfg.NumHeads))
	set("llama.attention.head_count_kv", uint32(cfg.NumKVHeads))
	set("llama.attention.layer_norm_rms_epsilon", float32(cfg.RMSNormEps))
	set("llama.rope.freq_base", float32(cfg.Rope.Theta))
	set("llama.context_length", uint32(cfg.MaxPositionEmbeddings))
	set("llama.vocab_size", uint32(cfg.VocabSize))
	add := func(name string, tt *tensor.Tensor, permuteHeads int) {
		v, err := be.ToFloat32(tt)
		if err != nil {
			t.Fatal(err)
		}
		shape := tt.Shape()
		dims := make([]uint64, len(shape))
		for i, d := range shape {
			dims[len(shape)-1-i] = uint64(d)
		}
		if permuteHeads > 0 {
			v = permuteRowsForGGUF(v, shape[0], shape[1], permuteHeads)
		}
		if err := b.AddTensor(name, gguf.TypeF32, dims, safetensors.Float32Bytes(v)); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", ref.Embed, 0)
	add("output_norm.weight", ref.Norm, 0)
	add("output.weight", ref.LMHead.Weight, 0)
	for i, l := range ref.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		add(p+"attn_norm.weight", l.InputNorm, 0)
		add(p+"ffn_norm.weight", l.PostAttnNorm, 0)
		add(p+"attn_q.weight", l.Q.Weight, cfg.NumHeads)
		add(p+"attn_k.weight", l.K.Weight, cfg.NumKVHeads)
		add(p+"attn_v.weight", l.V.Weight, 0)
		add(p+"attn_output.weight", l.O.Weight, 0)
		add(p+"ffn_gate.weight", l.Gate.Weight, 0)
		add(p+"ffn_up.weight", l.Up.Weight, 0)
		add(p+"ffn_down.weight", l.Down.Weight, 0)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := []int32{1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100}
	ctx := context.Background()
	for _, dt := range []tensor.DType{tensor.Invalid, tensor.F16} { // stored bytes (permuted) / Float32 path
		m, err := LoadGGUF(ctx, path, LoadOptions{DType: dt})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Forward(ctx, Input{IDs: ids, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Forward(ctx, Input{IDs: ids, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := be.ToFloat32(want)
		g, _ := be.ToFloat32(got)
		want.Free()
		got.Free()
		m.Free()
		worst := 0.0
		for i := range a {
			worst = math.Max(worst, math.Abs(float64(a[i]-g[i])))
		}
		tol := 1e-6
		if dt == tensor.F16 {
			tol = 2e-2 // weights rounded to half precision
		}
		t.Logf("dtype %s: max |logit difference| %.3g", dt, worst)
		if worst > tol {
			t.Errorf("dtype %s: logits differ from the original model by %.3g", dt, worst)
		}
	}
}
