package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// mapSource serves F32 tensors from memory (a safetensors.Source for Gemma3FromSource).
type mapSource map[string]struct {
	shape []int
	v     []float32
}

func (s mapSource) Names() []string {
	var n []string
	for k := range s {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
func (s mapSource) Info(name string) (safetensors.TensorInfo, bool) {
	t, ok := s[name]
	return safetensors.TensorInfo{Name: name, DType: safetensors.F32, Shape: t.shape, End: int64(4 * len(t.v))}, ok
}
func (s mapSource) Float32(name string) ([]float32, error) {
	t, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	return append([]float32(nil), t.v...), nil
}
func (s mapSource) Bytes(name string) ([]byte, error) {
	v, err := s.Float32(name)
	return safetensors.Float32Bytes(v), err
}

// tinyGemma3 builds a random Gemma 3 with 3 layers (two sliding-window layers of window 4, then one
// global), 2 query heads and 1 kv head of 16, query_pre_attn_scalar 24 (≠ head dim), vocabulary 50.
// addOne selects HF's norm convention (weights applied as 1+w) or GGUF's (stored 1+w).
func tinyGemma3(t *testing.T, addOne bool) *model.Gemma3 {
	t.Helper()
	return tinyGemma3On(t, cpu.New(0), addOne)
}

// tinyGemma3On is tinyGemma3 on backend b (the same weights on every backend).
func tinyGemma3On(t *testing.T, b tensor.Backend, addOne bool) *model.Gemma3 {
	t.Helper()
	c := &model.Gemma3Config{VocabSize: 50, HiddenSize: 32, IntermediateSize: 48, NumLayers: 3, NumHeads: 2,
		NumKVHeads: 1, HeadDim: 16, RMSNormEps: 1e-6, RopeGlobal: 1e6, RopeLocal: 1e4, RopeGlobalFactor: 1,
		SlidingWindow: 4, SlidingWindowPattern: 3, QueryPreAttnScalar: 24, MaxPositionEmbeddings: 128,
		NormAddOne: addOne, BOSTokenID: 2, EOSTokenIDs: []int{1}}
	r := rand.New(rand.NewPCG(7, 8))
	src := mapSource{}
	put := func(name string, std, mean float64, shape ...int) {
		v := make([]float32, tensor.Numel(shape))
		for i := range v {
			v[i] = float32(mean + std*r.NormFloat64())
		}
		src[name] = struct {
			shape []int
			v     []float32
		}{shape, v}
	}
	normMean := 1.0
	if addOne {
		normMean = 0
	}
	d, hd := c.HiddenSize, c.HeadDim
	put("model.embed_tokens.weight", 0.5, 0, c.VocabSize, d)
	put("model.norm.weight", 0.2, normMean, d)
	for i := 0; i < c.NumLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
			put(p+n+".weight", 0.2, normMean, d)
		}
		put(p+"self_attn.q_norm.weight", 0.2, normMean, hd)
		put(p+"self_attn.k_norm.weight", 0.2, normMean, hd)
		put(p+"self_attn.q_proj.weight", 0.2, 0, c.NumHeads*hd, d)
		put(p+"self_attn.k_proj.weight", 0.2, 0, c.NumKVHeads*hd, d)
		put(p+"self_attn.v_proj.weight", 0.2, 0, c.NumKVHeads*hd, d)
		put(p+"self_attn.o_proj.weight", 0.2, 0, d, c.NumHeads*hd)
		put(p+"mlp.gate_proj.weight", 0.2, 0, c.IntermediateSize, d)
		put(p+"mlp.up_proj.weight", 0.2, 0, c.IntermediateSize, d)
		put(p+"mlp.down_proj.weight", 0.2, 0, d, c.IntermediateSize)
	}
	m, err := model.Gemma3FromSource(context.Background(), c, src, model.LoadOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Free() })
	return m
}

// gemmaRows are three rows longer than the window (10, 9 and 7 tokens), prompts masked.
func gemmaRows() []Example {
	mk := func(ids []int32, prompt int) Example {
		l := append([]int32(nil), ids...)
		for i := 0; i < prompt; i++ {
			l[i] = IgnoreIndex
		}
		return Example{InputIDs: ids, Labels: l}
	}
	return []Example{
		mk([]int32{2, 5, 9, 13, 44, 3, 7, 21, 30, 1}, 3),
		mk([]int32{2, 11, 12, 13, 14, 15, 16, 17, 1}, 2),
		mk([]int32{2, 40, 41, 8, 6, 33, 1}, 4),
	}
}

func gemmaAdapter(t *testing.T, base *Base, r int, dropout float64, seed uint64) *lora.Adapter {
	t.Helper()
	cfg := lora.DefaultConfig()
	cfg.R, cfg.LoraAlpha, cfg.LoraDropout = r, float64(2*r), dropout
	cfg.TargetModules = lora.Targets{Names: LinearNames}
	cfg.InitLoraWeights = lora.InitMode{Value: "false"} // B random too: a non-zero adapter
	lins, err := base.Linears(false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := lora.New(cfg, lins, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range a.Modules {
		for i := range m.B {
			m.B[i] *= 0.05
		}
	}
	return a
}

func TestGeluTanhGradFiniteDifferences(t *testing.T) {
	for _, x := range []float64{-5, -2.5, -1, -0.3, 0, 0.2, 0.7, 1.5, 3, 6} {
		const h = 1e-6
		fd := (GeluTanh(x+h) - GeluTanh(x-h)) / (2 * h)
		if g := GeluTanhGrad(x); math.Abs(g-fd) > 1e-8 {
			t.Errorf("gelu_tanh'(%g) = %.10g, finite difference %.10g", x, g, fd)
		}
	}
	if got, want := GeluTanh(1), model.GeluTanh(1); got != want {
		t.Errorf("GeluTanh(1) = %v, runtime/model's %v", got, want)
	}
}

// GeGLUBackward against float64 finite differences of L = Σ dy⊙gelu_tanh(gate)⊙up.
func TestGeGLUBackwardFiniteDifferences(t *testing.T) {
	b := cpu.New(0)
	r := rand.New(rand.NewPCG(3, 4))
	const n = 40
	gv, uv, dv := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range gv {
		gv[i], uv[i], dv[i] = float32(3*r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	mk := func(v []float32) *tensor.Tensor {
		x, err := b.FromFloat32(tensor.F32, []int{4, 10}, v)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Free() })
		return x
	}
	gate, up, dy, dg, du, out := mk(gv), mk(uv), mk(dv), mk(make([]float32, n)), mk(make([]float32, n)), mk(make([]float32, n))
	if err := GeGLU(b, out, gate, up); err != nil {
		t.Fatal(err)
	}
	if err := GeGLUBackward(b, dg, du, dy, gate, up); err != nil {
		t.Fatal(err)
	}
	ov, _ := b.ToFloat32(out)
	dgv, _ := b.ToFloat32(dg)
	duv, _ := b.ToFloat32(du)
	loss := func(g, u []float64) float64 {
		var s float64
		for i := range g {
			s += float64(dv[i]) * GeluTanh(g[i]) * u[i]
		}
		return s
	}
	g64, u64 := make([]float64, n), make([]float64, n)
	for i := range gv {
		g64[i], u64[i] = float64(gv[i]), float64(uv[i])
		if want := GeluTanh(g64[i]) * u64[i]; math.Abs(float64(ov[i])-want) > 1e-6*(1+math.Abs(want)) {
			t.Errorf("geglu[%d] = %g, want %g", i, ov[i], want)
		}
	}
	const h = 1e-6
	for i := range gv {
		for _, c := range []struct {
			x    []float64
			got  float32
			what string
		}{{g64, dgv[i], "dgate"}, {u64, duv[i], "dup"}} {
			old := c.x[i]
			c.x[i] = old + h
			lp := loss(g64, u64)
			c.x[i] = old - h
			lm := loss(g64, u64)
			c.x[i] = old
			fd := (lp - lm) / (2 * h)
			if math.Abs(float64(c.got)-fd) > 1e-5*(1+math.Abs(fd)) {
				t.Errorf("%s[%d] = %g, finite difference %g", c.what, i, c.got, fd)
			}
		}
	}
}

// The training forward of a Gemma 3 base equals runtime/model.Gemma3's forward (with the adapter
// attached by lora.AttachGemma3), in both norm conventions, on rows longer than the window.
func TestGemma3LossMatchesModelForward(t *testing.T) {
	for _, addOne := range []bool{false, true} {
		m := tinyGemma3(t, addOne)
		base, err := NewGemma3Base(m, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close()
		rows := gemmaRows()
		for _, withAdapter := range []bool{false, true} {
			var a *lora.Adapter
			name := fmt.Sprintf("addOne=%v bare", addOne)
			if withAdapter {
				a = gemmaAdapter(t, base, 4, 0, 11)
				name = fmt.Sprintf("addOne=%v lora", addOne)
			}
			got, err := Loss(base, a, rows)
			if err != nil {
				t.Fatal(err)
			}
			detach := func() {}
			if a != nil {
				if detach, err = lora.AttachGemma3(m, a); err != nil {
					t.Fatal(err)
				}
			}
			want := modelForwardLoss(t, m.Forward, m.Backend, base.Arch.Vocab, rows)
			detach()
			t.Logf("%s: training loss %.7f, model forward %.7f", name, got, want)
			if math.Abs(got-want) > 1e-6*want {
				t.Errorf("%s: training loss %.7f, model forward %.7f", name, got, want)
			}
		}
	}
}

// Whole-model directional finite differences of the Gemma 3 gradients (all seven linears, with and
// without dropout, both norm conventions), and gradient checkpointing gives the same gradients.
func TestGemma3GradientFiniteDifferences(t *testing.T) {
	for _, addOne := range []bool{false, true} {
		m := tinyGemma3(t, addOne)
		base, err := NewGemma3Base(m, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close()
		rows := gemmaRows()
		directional(t, base, gemmaAdapter(t, base, 4, 0, 3), rows, fmt.Sprintf("gemma3 addOne=%v LoRA r=4", addOne))
		directional(t, base, gemmaAdapter(t, base, 2, 0.2, 5), rows, fmt.Sprintf("gemma3 addOne=%v LoRA r=2 dropout 0.2", addOne))
		a := gemmaAdapter(t, base, 4, 0, 9)
		l1, g1, err := Gradients(base, a, rows, false)
		if err != nil {
			t.Fatal(err)
		}
		l2, g2, err := Gradients(base, a, rows, true)
		if err != nil {
			t.Fatal(err)
		}
		if l1 != l2 {
			t.Errorf("recompute changes the loss: %v vs %v", l1, l2)
		}
		for k, v := range g1 {
			if d := relErr(g2[k], v); d > 1e-6 {
				t.Errorf("%s: recomputed gradient differs by %.3g", k, d)
			}
		}
	}
}

// Training a Gemma 3 adapter lowers the loss, and the adapter saves under PEFT's keys.
func TestGemma3TrainLowersLossAndSaves(t *testing.T) {
	m := tinyGemma3(t, false)
	base, err := NewGemma3Base(m, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	cfg := lora.DefaultConfig()
	cfg.R, cfg.LoraAlpha = 4, 8
	cfg.TargetModules = lora.Targets{Names: []string{"q_proj", "v_proj", "gate_proj"}}
	lins, _ := base.Linears(false)
	a, err := lora.New(cfg, lins, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows := gemmaRows()
	before, _ := Loss(base, a, rows)
	tr, err := NewTrainer(base, a, rows, Config{AdamW: AdamWConfig{LR: 1e-2, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}, Steps: 15, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := Loss(base, a, rows)
	t.Logf("loss %.4f -> %.4f; %s", before, after, tr.Memory())
	if !(after < before*0.9) {
		t.Errorf("loss %.4f -> %.4f: training did not lower it", before, after)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := lora.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := lora.KeyA("model.layers.2.self_attn.q_proj")
	if key != "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight" {
		t.Errorf("PEFT key %s", key)
	}
	if _, ok := back.Modules["model.layers.2.mlp.gate_proj"]; !ok {
		t.Errorf("saved adapter lacks model.layers.2.mlp.gate_proj: %v", back.Paths())
	}
}
