package model

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
)

// ggufLogitsRef is testdata/gguf/<model>-logits.json.gz (see testdata/gguf/README.md): transformers'
// float32 logits of the real models on three prompts, summarized per position.
type ggufLogitsRef struct {
	ProbeIDs []int `json:"probe_ids"`
	Rows     []struct {
		Prompt      string      `json:"prompt"`
		IDs         []int32     `json:"ids"`
		Positions   []int       `json:"positions"`
		LogSumExp   []float64   `json:"logsumexp"`
		TopIDs      [][]int     `json:"top_ids"`
		TopLogits   [][]float64 `json:"top_logits"`
		ProbeLogits [][]float64 `json:"probe_logits"`
	} `json:"rows"`
}

func readLogitsRef(t *testing.T, model string) *ggufLogitsRef {
	t.Helper()
	raw, err := os.ReadFile("testdata/gguf/" + model + "-logits.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var ref ggufLogitsRef
	if err := json.Unmarshal(js, &ref); err != nil {
		t.Fatal(err)
	}
	return &ref
}

type logitModel interface {
	Forward(ctx context.Context, in Input, cache *Cache) (*tensor.Tensor, error)
}

// compareLogits runs m on each reference prompt and compares, at every position, the logits at the
// probe ids and at transformers' top-10 ids (after removing the per-position log-normalizer, i.e.
// as log-probabilities) and the top-1 id. Returns the largest log-probability difference.
func compareLogits(t *testing.T, b tensor.Backend, m logitModel, ref *ggufLogitsRef, tol float64) {
	t.Helper()
	worst := 0.0
	top1Miss, positions := 0, 0
	for _, row := range ref.Rows {
		lg, err := m.Forward(context.Background(), Input{IDs: row.IDs, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := b.ToFloat32(lg)
		lg.Free()
		if err != nil {
			t.Fatal(err)
		}
		V := len(v) / len(row.IDs)
		for p, pos := range row.Positions {
			lr := v[pos*V : (pos+1)*V]
			mx := math.Inf(-1)
			best := 0
			for i, x := range lr {
				if float64(x) > mx {
					mx, best = float64(x), i
				}
			}
			var z float64
			for _, x := range lr {
				z += math.Exp(float64(x) - mx)
			}
			lse := mx + math.Log(z)
			check := func(id int, want float64) {
				d := math.Abs((float64(lr[id]) - lse) - (want - row.LogSumExp[p]))
				worst = math.Max(worst, d)
			}
			for k, id := range ref.ProbeIDs {
				check(id, row.ProbeLogits[p][k])
			}
			for k, id := range row.TopIDs[p] {
				check(id, row.TopLogits[p][k])
			}
			positions++
			if best != row.TopIDs[p][0] && row.TopLogits[p][0]-row.TopLogits[p][1] > 1e-3 {
				top1Miss++
			}
		}
	}
	t.Logf("%d positions: max |log-prob difference| %.3g, top-1 disagreements %d", positions, worst, top1Miss)
	if worst > tol || top1Miss > 0 {
		t.Errorf("logits differ from transformers: max %.3g (tolerance %.3g), top-1 misses %d", worst, tol, top1Miss)
	}
}

// TestGGUFLogitsMatchTransformers compares the logits of both real models with transformers'
// (float32 CPU). Weights are dequantized identically (bit-exact, see runtime/gguf), so differences
// are float32 arithmetic order only.
func TestGGUFLogitsMatchTransformers(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Run("smollm2-135m", func(t *testing.T) {
		path := installedModel(t, "smollm2-135m")
		m, err := LoadGGUF(context.Background(), path, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		compareLogits(t, m.Backend, m, readLogitsRef(t, "smollm2-135m"), 2e-3)
	})
	t.Run("gemma3-270m", func(t *testing.T) {
		path := installedModel(t, "gemma3-270m")
		m, err := LoadGemma3GGUF(context.Background(), path, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		compareLogits(t, m.Backend, m, readLogitsRef(t, "gemma3-270m"), 2e-3)
	})
}
