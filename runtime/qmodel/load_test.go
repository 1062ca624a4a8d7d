package qmodel

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/npy"
	st "github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

func refIDs(t *testing.T, dir string) []int32 {
	t.Helper()
	var ids struct {
		IDs []int32 `json:"input_ids"`
	}
	js, err := os.ReadFile(filepath.Join("testdata", dir, "reference_inputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &ids); err != nil {
		t.Fatal(err)
	}
	return ids.IDs
}

func logitsOf(t *testing.T, m *model.Model, ids []int32) []float32 {
	t.Helper()
	lg, err := m.Forward(context.Background(), model.Input{IDs: ids, B: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Free()
	out, err := m.Backend.ToFloat32(lg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dequantizedModel loads dir through quant.DequantizedSource: the explicitly dequantized float32
// model (the reference our quantized matmuls must equal).
func dequantizedModel(t *testing.T, b tensor.Backend, dir string) *model.Model {
	t.Helper()
	cfg, err := model.LoadConfig(filepath.Join("testdata", dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Open(filepath.Join("testdata", dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := quant.NewDequantizedSource(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.FromSource(context.Background(), cfg, d, model.LoadOptions{Backend: b, DType: tensor.F32})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func maxRelErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var worst, scale float64
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = math.Max(worst, d)
	}
	return worst / scale
}

// TestQuantizedCheckpointLogits loads the bitsandbytes checkpoints as stored (linear layers held
// quantized, dequantized tile by tile in the matmul) and checks: every quantized projection is
// packed; the logits equal those of the explicitly dequantized float32 model (the same values and
// kernels: equal to float32 rounding); they match transformers + bitsandbytes' GPU logits within
// bf16 tolerance (the GPU ran bf16 activations for NF4, int8 activations for LLM.int8), closer
// than the float model does; the weights take less memory than the float model's.
func TestQuantizedCheckpointLogits(t *testing.T) {
	b := cpu.New(0)
	ctx := context.Background()
	float, err := Load(ctx, "testdata/tiny-llama", Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer float.Free()
	for _, c := range []struct {
		dir    string
		format Precision
		tol    float64
	}{{"tiny-llama-bnb-nf4", NF4, 1e-2}, {"tiny-llama-bnb-int8", Int8, 1.5e-2}} {
		t.Run(c.dir, func(t *testing.T) {
			ids := refIDs(t, c.dir)
			m, err := Load(ctx, filepath.Join("testdata", c.dir), Options{Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if p := PrecisionOf(m); p != c.format {
				t.Errorf("precision %q, want %q", p, c.format)
			}
			for _, l := range m.Linears() {
				_, packed := l.Packed.(*Linear)
				if packed != (l.Name != "lm_head") {
					t.Errorf("%s: packed=%v", l.Name, packed)
				}
			}
			got := logitsOf(t, m, ids)
			dm := dequantizedModel(t, b, c.dir)
			defer dm.Free()
			if rel := maxRelErr(got, logitsOf(t, dm, ids)); rel > 1e-6 {
				t.Errorf("vs the dequantized float32 model: relative error %.3g", rel)
			}
			ref, err := npy.ReadFile(filepath.Join("testdata", c.dir, "reference_logits.npy"))
			if err != nil {
				t.Fatal(err)
			}
			rel, relFloat := maxRelErr(got, ref.Data), maxRelErr(logitsOf(t, float, ids), ref.Data)
			t.Logf("max |Δlogit|/max|logit| vs bitsandbytes: %.3g (float model %.3g); weights %d bytes (float %d)", rel, relFloat, m.Bytes(), float.Bytes())
			if rel > c.tol || rel >= relFloat {
				t.Errorf("relative error %.3g (tolerance %g, float model %.3g)", rel, c.tol, relFloat)
			}
			if m.Bytes() >= float.Bytes() {
				t.Errorf("quantized weights %d bytes, float %d", m.Bytes(), float.Bytes())
			}
		})
	}
}

// TestQuantizeOnLoad: quantizing the float checkpoint on load gives the model of the
// bitsandbytes checkpoint (NF4 bit for bit, hence equal logits; int8 up to bitsandbytes'
// __fdividef near-ties, see quant/testdata/README.md), and asking a bnb checkpoint for another
// format is an error.
func TestQuantizeOnLoad(t *testing.T) {
	b := cpu.New(0)
	ctx := context.Background()
	for _, c := range []struct {
		p   Precision
		dir string
		tol float64
	}{{NF4, "tiny-llama-bnb-nf4", 0}, {Int8, "tiny-llama-bnb-int8", 1e-3}} {
		ids := refIDs(t, c.dir)
		on, err := Load(ctx, "testdata/tiny-llama", Options{Backend: b, Precision: c.p})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := Load(ctx, filepath.Join("testdata", c.dir), Options{Backend: b, Precision: c.p})
		if err != nil {
			t.Fatal(err)
		}
		if on.Bytes() != stored.Bytes() {
			t.Errorf("%s: %d bytes on load, %d from the checkpoint", c.p, on.Bytes(), stored.Bytes())
		}
		rel := maxRelErr(logitsOf(t, on, ids), logitsOf(t, stored, ids))
		t.Logf("%s: quantized on load vs bitsandbytes checkpoint: relative logit difference %.3g", c.p, rel)
		if rel > c.tol {
			t.Errorf("%s: relative difference %.3g > %g", c.p, rel, c.tol)
		}
		on.Free()
		stored.Free()
	}
	if _, err := Load(ctx, "testdata/tiny-llama-bnb-nf4", Options{Backend: b, Precision: Int8}); err == nil {
		t.Error("nf4 checkpoint loaded as int8")
	}
	// a float precision dequantizes a bnb checkpoint
	d, err := Load(ctx, "testdata/tiny-llama-bnb-nf4", Options{Backend: b, Precision: F32})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free()
	if p := PrecisionOf(d); p != F32 {
		t.Errorf("dequantized precision %q", p)
	}
}

// TestLoadFreesEverything: loading and freeing quantized models returns every byte, and a
// corrupt checkpoint fails cleanly (nothing leaked).
func TestLoadFreesEverything(t *testing.T) {
	b := cpu.New(1)
	for _, p := range []Precision{NF4, FP4, Int8, BF16} {
		m, err := Load(context.Background(), "testdata/tiny-llama", Options{Backend: b, Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		if got := PrecisionOf(m); got != p {
			t.Errorf("precision %q, want %q", got, p)
		}
		m.Free()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Load(ctx, "testdata/tiny-llama", Options{Backend: b, Precision: NF4}); err == nil {
		t.Error("cancelled load succeeded")
	}
	if s := b.MemStats(); s.Current != 0 || s.Tensors != 0 {
		t.Errorf("leak: %+v", s)
	}
}

func TestParsePrecision(t *testing.T) {
	for in, want := range map[string]Precision{"": AsStored, "NF4": NF4, "4bit": NF4, "fp4": FP4, "8bit": Int8, "int8": Int8, "bfloat16": BF16, "f32": F32, "fp16": F16} {
		if got, err := ParsePrecision(in); err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	if _, err := ParsePrecision("int4"); err == nil {
		t.Error("int4 accepted")
	}
}

// TestQuantizeLoadedModel: quantizing a loaded float model in place gives the model quantized on
// load (same bytes, same logits), frees the dense weights, and works on the tiny random model.
func TestQuantizeLoadedModel(t *testing.T) {
	b := cpu.New(0)
	ctx := context.Background()
	ids := refIDs(t, "tiny-llama")
	for _, p := range []Precision{NF4, Int8} {
		m, err := Load(ctx, "testdata/tiny-llama", Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		if err := Quantize(m, p); err != nil {
			t.Fatal(err)
		}
		on, err := Load(ctx, "testdata/tiny-llama", Options{Backend: b, Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		if PrecisionOf(m) != p || m.Bytes() != on.Bytes() {
			t.Errorf("%s: precision %s, %d bytes; quantized on load %d", p, PrecisionOf(m), m.Bytes(), on.Bytes())
		}
		if rel := maxRelErr(logitsOf(t, m, ids), logitsOf(t, on, ids)); rel != 0 {
			t.Errorf("%s: logits differ from the model quantized on load by %.3g", p, rel)
		}
		m.Free()
		on.Free()
	}
	if s := b.MemStats(); s.Current != 0 {
		t.Errorf("leak: %+v", s)
	}
	tiny, err := model.TinyRandom(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tiny.Free()
	if err := Quantize(tiny, NF4); err != nil {
		t.Fatal(err)
	}
	if PrecisionOf(tiny) != NF4 {
		t.Errorf("tiny model precision %s", PrecisionOf(tiny))
	}
	lg, err := tiny.Forward(ctx, model.Input{IDs: []int32{1, 2, 3}, B: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg.Free()
	if err := Quantize(tiny, BF16); err == nil {
		t.Error("Quantize to bf16 accepted")
	}
}
