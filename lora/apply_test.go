package lora

import (
	"context"
	"math"
	"testing"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

func logits(t *testing.T, m *model.Model, ids []int32) []float32 {
	t.Helper()
	out, err := m.Forward(context.Background(), model.Input{IDs: ids, B: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	v, err := m.Backend.ToFloat32(out)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An attached adapter and the same adapter merged into the weights give the same logits, different
// from the bare model's; detaching and unmerging restore the bare model.
func TestAttachMatchesMerge(t *testing.T) {
	for _, dora := range []bool{false, true} {
		b := cpu.New(0)
		m, err := model.Load(context.Background(), "testdata/tiny-llama", model.LoadOptions{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		a, err := Load("testdata/lora-llama-all/adapter_end")
		if err != nil {
			t.Fatal(err)
		}
		if dora {
			for _, mod := range a.Modules {
				lin, _ := m.Linear(mod.Path)
				w, _ := b.ToFloat32(lin.Weight)
				mod.Magnitude = mod.WeightNorm(w)
				for i := range mod.Magnitude {
					mod.Magnitude[i] *= 1 + 0.2*float32(math.Sin(float64(i)))
				}
			}
		}
		ids := []int32{1, 17, 250, 3, 99, 42, 7, 311, 5, 128}
		bare := logits(t, m, ids)
		detach, err := Attach(m, a)
		if err != nil {
			t.Fatal(err)
		}
		hooked := logits(t, m, ids)
		detach()
		if r := maxRel(logits(t, m, ids), bare); r != 0 {
			t.Errorf("dora=%v: detach did not restore the bare model (rel %g)", dora, r)
		}
		if err := MergeInto(m, a); err != nil {
			t.Fatal(err)
		}
		merged := logits(t, m, ids)
		if err := UnmergeFrom(m, a); err != nil {
			t.Fatal(err)
		}
		unmerged := logits(t, m, ids)
		if r := maxRel(bare, hooked); r < 1e-3 {
			t.Errorf("dora=%v: adapter changed the logits by only %g", dora, r)
		}
		if r := maxRel(merged, hooked); r > 1e-5 {
			t.Errorf("dora=%v: merged vs hooked logits: relative %g", dora, r)
		}
		if r := maxRel(unmerged, bare); r > 1e-5 {
			t.Errorf("dora=%v: unmerged vs bare logits: relative %g", dora, r)
		}
		t.Logf("dora=%v: adapter moves logits by %.3g; merged vs hooked %.2g; unmerged vs bare %.2g", dora, maxRel(bare, hooked), maxRel(merged, hooked), maxRel(unmerged, bare))
		m.Free()
	}
}

func TestSetUse(t *testing.T) {
	b := cpu.New(0)
	m, err := model.Load(context.Background(), "testdata/tiny-llama", model.LoadOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	s := NewSet()
	start, _ := Load("testdata/lora-llama-qkv/adapter_start")
	end, _ := Load("testdata/lora-llama-qkv/adapter_end")
	s.Add("start", start)
	s.Add("end", end)
	ids := []int32{5, 6, 7, 8}
	var got [2][]float32
	for i, n := range []string{"start", "end"} {
		detach, err := s.Use(m, n)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = logits(t, m, ids)
		detach()
	}
	if maxRel(got[0], got[1]) == 0 {
		t.Error("two adapters gave identical logits")
	}
	if _, err := s.Use(m, "nope"); err == nil {
		t.Error("unknown adapter accepted")
	}
}
