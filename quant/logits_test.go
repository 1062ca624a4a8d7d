package quant

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/npy"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// TestQuantizedLogits loads the bitsandbytes checkpoints through DequantizedSource into the
// float32 CPU model and compares the logits with transformers' (computed on the GPU with
// bitsandbytes' kernels: bf16 activations for NF4, int8 activations with fp16 outliers for
// LLM.int8), so only a loose bound applies. As a control, the float model's logits must be
// farther from each reference than ours are: the dequantized weights are what bitsandbytes used.
// (For int8 this is the only check of Dequantize's codes*SCB/127, the int8 oracle holding raw codes.)
func TestQuantizedLogits(t *testing.T) {
	b := cpu.New(0)
	var ids struct {
		IDs []int32 `json:"input_ids"`
	}
	js, err := os.ReadFile("testdata/tiny-llama-bnb-nf4/reference_inputs.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &ids); err != nil {
		t.Fatal(err)
	}
	logits := func(dir string, dequant bool) []float32 {
		cfg, err := model.LoadConfig(filepath.Join("testdata", dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		f := openFixture(t, dir, "model.safetensors")
		var m *model.Model
		if dequant {
			d, err := NewDequantizedSource(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err = model.FromSource(context.Background(), cfg, d, model.LoadOptions{Backend: b, DType: tensor.F32})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			m, err = model.FromSource(context.Background(), cfg, f, model.LoadOptions{Backend: b, DType: tensor.F32})
			if err != nil {
				t.Fatal(err)
			}
		}
		defer m.Free()
		lg, err := m.Forward(context.Background(), model.Input{IDs: ids.IDs, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer lg.Free()
		out, err := b.ToFloat32(lg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	float := logits("tiny-llama", false)
	for _, c := range []struct {
		dir string
		tol float64
	}{{"tiny-llama-bnb-nf4", 1e-2}, {"tiny-llama-bnb-int8", 1.5e-2}} { // measured: 0.0058 and 0.0071
		ref, err := npy.ReadFile(filepath.Join("testdata", c.dir, "reference_logits.npy"))
		if err != nil {
			t.Fatal(err)
		}
		got := logits(c.dir, true)
		rel, relFloat := maxRelErr(got, ref.Data), maxRelErr(float, ref.Data)
		t.Logf("%s: max |Δlogit| / max |logit| = %.3g (the float model: %.3g)", c.dir, rel, relFloat)
		if rel > c.tol {
			t.Errorf("%s: relative error %.3g > %g", c.dir, rel, c.tol)
		}
		if rel >= relFloat {
			t.Errorf("%s: the float model (%.3g) is as close to the reference as the dequantized one (%.3g)", c.dir, relFloat, rel)
		}
	}
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

// TestOnLoadSourceMatchesCheckpoint: quantizing tiny-llama on load must give the same float
// weights as reading the bitsandbytes checkpoint (NF4 bit for bit; int8 up to the near-tie codes).
func TestOnLoadSourceMatchesCheckpoint(t *testing.T) {
	src := openFixture(t, "tiny-llama", "model.safetensors")
	for _, c := range []struct {
		dir     string
		cfg     Config
		maxDiff int
	}{
		{"tiny-llama-bnb-nf4", Config{Format: FormatNF4, DoubleQuant: true}, 0},
		{"tiny-llama-bnb-int8", Config{Format: FormatInt8}, 4},
	} {
		on, err := NewOnLoadSource(src, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDequantizedSource(openFixture(t, c.dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		diffs := 0
		for _, n := range d.Names() {
			a, err := on.Float32(n)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := d.Float32(n)
			diffs += countDiffF32(a, b)
		}
		if diffs > c.maxDiff {
			t.Errorf("%s: %d values differ", c.dir, diffs)
		}
	}
}
