package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// reference is the fixture's reference.json (made by PEFT + torch, see testdata/README.md).
type reference struct {
	InputIDs    [][]int32  `json:"input_ids"`
	Labels      [][]int32  `json:"labels"`
	LR          float64    `json:"lr"`
	Betas       [2]float64 `json:"betas"`
	Eps         float64    `json:"eps"`
	WeightDecay float64    `json:"weight_decay"`
	Steps       int        `json:"steps"`
	Losses      []float64  `json:"losses"`
}

func readReference(t *testing.T, dir string) reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r reference) rows() []Example {
	var rows []Example
	for i := range r.InputIDs {
		rows = append(rows, Example{InputIDs: r.InputIDs[i], Labels: r.Labels[i]})
	}
	return rows
}

func loadTiny(t *testing.T) *Base {
	t.Helper()
	b := cpu.New(0)
	m, err := LoadBase(b, "testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// relErr is max|got−want| / max|want| over one tensor, the acceptance measure.
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	return d / m
}

var fixtures = []string{"testdata/lora-llama-qkv", "testdata/lora-llama-all"}

// TestGradientsMatchPEFT compares the step-0 loss (1e-5 relative) and every gradient (1e-4
// relative) with the reference's, with and without recomputation.
func TestGradientsMatchPEFT(t *testing.T) {
	checkGradientsMatchPEFT(t, loadTiny(t))
}

// TestTrainMatchesPEFT runs the reference's 3 AdamW steps from adapter_start and compares the
// losses (1e-5 relative) and adapter_end (1e-4 relative per tensor).
func TestTrainMatchesPEFT(t *testing.T) {
	checkTrainMatchesPEFT(t, loadTiny(t))
}

// checkGradientsMatchPEFT is the body of TestGradientsMatchPEFT on base (any backend): for every
// fixture, with and without recomputation, Gradients from adapter_start gives the step-0 loss within
// 1e-5 and each of grads_step0's gradients (and no others) within 1e-4 relative.
func checkGradientsMatchPEFT(t *testing.T, base *Base) {
	for _, fx := range fixtures {
		for _, recompute := range []bool{false, true} {
			ref := readReference(t, fx)
			a, err := lora.Load(filepath.Join(fx, "adapter_start"))
			if err != nil {
				t.Fatal(err)
			}
			loss, grads, err := Gradients(base, a, ref.rows(), recompute)
			if err != nil {
				t.Fatal(err)
			}
			if r := math.Abs(loss-ref.Losses[0]) / ref.Losses[0]; r > 1e-5 {
				t.Errorf("%s: step-0 loss %.7f, reference %.7f (rel %.2g)", fx, loss, ref.Losses[0], r)
			}
			f, err := safetensors.Open(filepath.Join(fx, "grads_step0.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for _, n := range f.Names() {
				want, _ := f.Float32(n)
				got, ok := grads[n]
				if !ok {
					t.Errorf("%s: no gradient for %s", fx, n)
					continue
				}
				r := relErr(got, want)
				worst = math.Max(worst, r)
				if r > 1e-4 {
					t.Errorf("%s: %s: relative error %.3g", fx, n, r)
				}
			}
			f.Close()
			if len(grads) != len(f.Names()) {
				t.Errorf("%s: %d gradients, reference has %d", fx, len(grads), len(f.Names()))
			}
			t.Logf("%s on %s recompute=%v: loss %.7f (ref %.7f), worst gradient relative error %.3g",
				fx, base.Backend.Name(), recompute, loss, ref.Losses[0], worst)
		}
	}
}

// checkTrainMatchesPEFT is the body of TestTrainMatchesPEFT on base (any backend): for every
// fixture, the reference's AdamW steps from adapter_start give its losses within 1e-5 and
// adapter_end within 1e-4 relative per tensor.
func checkTrainMatchesPEFT(t *testing.T, base *Base) {
	for _, fx := range fixtures {
		ref := readReference(t, fx)
		a, err := lora.Load(filepath.Join(fx, "adapter_start"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := lora.Load(filepath.Join(fx, "adapter_end"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{AdamW: AdamWConfig{LR: ref.LR, Betas: ref.Betas, Eps: ref.Eps, WeightDecay: ref.WeightDecay},
			BatchSize: len(ref.InputIDs), Steps: ref.Steps}
		tr, err := NewTrainer(base, a, ref.rows(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		for i, m := range tr.Metrics() {
			r := math.Abs(m.Loss-ref.Losses[i]) / ref.Losses[i]
			t.Logf("%s step %d: loss %.7f ref %.7f rel %.2g", fx, m.Step, m.Loss, ref.Losses[i], r)
			if r > 1e-5 {
				t.Errorf("%s step %d: loss %.7f, reference %.7f (rel %.2g)", fx, m.Step, m.Loss, ref.Losses[i], r)
			}
		}
		worst := 0.0
		for p, wm := range want.Modules {
			gm := a.Modules[p]
			for _, x := range []struct {
				name      string
				got, want []float32
			}{{lora.KeyA(p), gm.A, wm.A}, {lora.KeyB(p), gm.B, wm.B}} {
				r := relErr(x.got, x.want)
				worst = math.Max(worst, r)
				if r > 1e-4 {
					t.Errorf("%s: %s after %d steps: relative error %.3g", fx, x.name, ref.Steps, r)
				}
			}
		}
		t.Logf("%s on %s: adapter_end worst relative error %.3g", fx, base.Backend.Name(), worst)
	}
}

// The graph must not leak backend tensors.
func TestNoLeak(t *testing.T) {
	b := cpu.New(0)
	base, err := LoadBase(b, "testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	before := b.MemStats().Tensors
	ref := readReference(t, fixtures[1])
	a, _ := lora.Load(filepath.Join(fixtures[1], "adapter_start"))
	a.Config.LoraDropout = 0.1
	for _, rc := range []bool{false, true} {
		if _, _, err := Gradients(base, a, ref.rows(), rc); err != nil {
			t.Fatal(err)
		}
	}
	if after := b.MemStats().Tensors; after != before {
		t.Errorf("%d live tensors after two gradient passes, %d before", after, before)
	}
	base.Close()
	if n := b.MemStats().Tensors; n != 0 {
		t.Errorf("%d tensors alive after Close", n)
	}
	_ = tensor.F32
}
