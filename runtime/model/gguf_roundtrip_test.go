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

// TestGGUFRoundTrip writes random tiny llama, qwen2 and qwen3 models as GGUF files the way
// llama.cpp's converter lays them out (GGUF names, reversed dims, Q/K rows permuted for llama only,
// <arch>.* metadata), loads them with LoadGGUF and checks the logits equal the original model's.
func TestGGUFRoundTrip(t *testing.T) {
	be, err := tensor.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			cfg := TinyConfig()
			cfg.ModelType = arch
			cfg.TieWordEmbeddings = arch == "qwen3"
			cfg.AttentionBias = arch == "qwen2"
			cfg.QKNorm = arch == "qwen3"
			ref, err := Random(be, cfg, 11, tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Free()
			path := writeTinyGGUF(t, be, ref, arch)
			ids := []int32{1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100}
			ctx := context.Background()
			for _, dt := range []tensor.DType{tensor.Invalid, tensor.F16} { // stored bytes / Float32 path
				m, err := LoadGGUF(ctx, path, LoadOptions{DType: dt})
				if err != nil {
					t.Fatal(err)
				}
				if m.Config.ModelType != arch || m.Config.TieWordEmbeddings != cfg.TieWordEmbeddings ||
					m.Config.AttentionBias != cfg.AttentionBias || m.Config.QKNorm != cfg.QKNorm {
					t.Errorf("config %s, want %s", m.Config, cfg)
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
		})
	}
}

// writeTinyGGUF writes ref in llama.cpp's GGUF layout for arch and returns the file's path.
func writeTinyGGUF(t *testing.T, be tensor.Backend, ref *Model, arch string) string {
	t.Helper()
	cfg := ref.Config
	b := gguf.NewBuilder()
	set := func(k string, v any) {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("general.architecture", arch)
	set(arch+".embedding_length", uint32(cfg.HiddenSize))
	set(arch+".feed_forward_length", uint32(cfg.IntermediateSize))
	set(arch+".block_count", uint32(cfg.NumLayers))
	set(arch+".attention.head_count", uint32(cfg.NumHeads))
	set(arch+".attention.head_count_kv", uint32(cfg.NumKVHeads))
	set(arch+".attention.key_length", uint32(cfg.HeadDim))
	set(arch+".attention.layer_norm_rms_epsilon", float32(cfg.RMSNormEps))
	set(arch+".rope.freq_base", float32(cfg.Rope.Theta))
	set(arch+".context_length", uint32(cfg.MaxPositionEmbeddings))
	set(arch+".vocab_size", uint32(cfg.VocabSize))
	add := func(name string, tt *tensor.Tensor, permuteHeads int) {
		if tt == nil {
			return
		}
		v, err := be.ToFloat32(tt)
		if err != nil {
			t.Fatal(err)
		}
		shape := tt.Shape()
		dims := make([]uint64, len(shape))
		for i, d := range shape {
			dims[len(shape)-1-i] = uint64(d)
		}
		if permuteHeads > 0 && arch == "llama" {
			v = permuteRowsForGGUF(v, shape[0], shape[1], permuteHeads)
		}
		if err := b.AddTensor(name, gguf.TypeF32, dims, safetensors.Float32Bytes(v)); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", ref.Embed, 0)
	add("output_norm.weight", ref.Norm, 0)
	if !cfg.TieWordEmbeddings {
		add("output.weight", ref.LMHead.Weight, 0)
	}
	for i, l := range ref.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		add(p+"attn_norm.weight", l.InputNorm, 0)
		add(p+"ffn_norm.weight", l.PostAttnNorm, 0)
		add(p+"attn_q.weight", l.Q.Weight, cfg.NumHeads)
		add(p+"attn_k.weight", l.K.Weight, cfg.NumKVHeads)
		add(p+"attn_v.weight", l.V.Weight, 0)
		add(p+"attn_q.bias", l.Q.Bias, 0)
		add(p+"attn_k.bias", l.K.Bias, 0)
		add(p+"attn_v.bias", l.V.Bias, 0)
		add(p+"attn_q_norm.weight", l.QNorm, 0)
		add(p+"attn_k_norm.weight", l.KNorm, 0)
		add(p+"attn_output.weight", l.O.Weight, 0)
		add(p+"ffn_gate.weight", l.Gate.Weight, 0)
		add(p+"ffn_up.weight", l.Up.Weight, 0)
		add(p+"ffn_down.weight", l.Down.Weight, 0)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), arch+".gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
