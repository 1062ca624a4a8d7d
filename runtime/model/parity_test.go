package model

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/runtime/npy"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// hubForm rewrites a transformers-5 config.json (rope_parameters, dtype) into the hub's older form
// (rope_theta + rope_scaling, torch_dtype), in a temp dir next to a copy of the weights.
func hubForm(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	rp, ok := cfg["rope_parameters"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no rope_parameters object", dir)
	}
	delete(cfg, "rope_parameters")
	cfg["rope_theta"] = rp["rope_theta"]
	delete(rp, "rope_theta")
	if rp["rope_type"] == "default" {
		cfg["rope_scaling"] = nil
	} else {
		cfg["rope_scaling"] = rp
	}
	cfg["torch_dtype"] = cfg["dtype"]
	delete(cfg, "dtype")
	out := t.TempDir()
	js, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "model.safetensors"), w, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func referenceIDs(t *testing.T, dir string) []int32 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "reference_inputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		InputIDs []int32 `json:"input_ids"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	return in.InputIDs
}

// maxRelErr returns max |got − want| / max |want|.
func maxRelErr(got, want []float32) float64 {
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

func TestReferenceLogits(t *testing.T) {
	b := cpu.New(0)
	for _, name := range []string{"tiny-llama", "tiny-qwen3"} {
		dir := filepath.Join("testdata", name)
		ref, err := npy.ReadFile(filepath.Join(dir, "reference_logits.npy"))
		if err != nil {
			t.Fatal(err)
		}
		ids := referenceIDs(t, dir)
		for _, form := range []string{"transformers5", "hub"} {
			for _, dt := range []tensor.DType{tensor.Invalid, tensor.BF16} {
				label := dt.String()
				if dt == tensor.Invalid {
					label = "stored"
				}
				t.Run(name+"/"+form+"/"+label, func(t *testing.T) {
					d := dir
					if form == "hub" {
						d = hubForm(t, dir)
					}
					m, err := Load(context.Background(), d, LoadOptions{Backend: b, DType: dt})
					if err != nil {
						t.Fatal(err)
					}
					defer m.Free()
					lg, err := m.Forward(context.Background(), Input{IDs: ids, B: 1}, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer lg.Free()
					if got := lg.Shape(); len(got) != 3 || got[1] != len(ids) || got[2] != m.Config.VocabSize {
						t.Fatalf("logits shape %v", got)
					}
					got, _ := b.ToFloat32(lg)
					rel := maxRelErr(got, ref.Data)
					tol := 1e-4
					if dt == tensor.BF16 {
						tol = 3e-2 // weights rounded to bf16: a loose sanity bound only
					}
					t.Logf("max |Δlogit| / max |logit| = %.3g (weights %s)", rel, m.DType)
					if rel > tol {
						t.Errorf("logits differ from transformers: relative error %.3g > %g", rel, tol)
					}
				})
			}
		}
	}
}

// The fixture must exercise llama3 frequency scaling: with plain RoPE the logits must be off.
func TestReferenceNeedsLlama3Scaling(t *testing.T) {
	b := cpu.New(0)
	dir := filepath.Join("testdata", "tiny-llama")
	ref, err := npy.ReadFile(filepath.Join(dir, "reference_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rope.Type != "llama3" {
		t.Fatalf("rope type %q, want llama3", cfg.Rope.Type)
	}
	cfg.Rope.Type = "default"
	m, err := Load(context.Background(), dir, LoadOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	m.Config = cfg
	m.ropeRows = 0 // rebuild the tables from the altered config
	lg, err := m.Forward(context.Background(), Input{IDs: referenceIDs(t, dir), B: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Free()
	got, _ := b.ToFloat32(lg)
	if rel := maxRelErr(got, ref.Data); rel < 1e-3 {
		t.Errorf("plain RoPE matches the llama3-scaled reference (relative error %.3g): the test cannot see scaling", rel)
	}
}
