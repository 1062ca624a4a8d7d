package model

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

// TestDecodeFusionsDevice is TestDecodeFusionsMatchUnfused on the FINLORA_DEVICE backend (stored
// float32 weights): decoding through the KV cache with the device's RopeQKCache and the residual
// adds folded into o_proj and down_proj gives the logits of the unfused path on the same device
// (Rope, Rope, SetSlice, SetSlice, and Forward + Add) and of the CPU backend, up to float32
// rounding order, and of a full recompute on the device.
func TestDecodeFusionsDevice(t *testing.T) {
	b := deviceBackend(t)
	if _, ok := b.(tensor.RopeCacher); !ok {
		t.Fatalf("%s lacks tensor.RopeCacher", b.Name())
	}
	for _, name := range []string{"tiny-llama", "tiny-qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			ids := referenceIDs(t, dir)
			load := func(be tensor.Backend) *Model {
				m, err := Load(context.Background(), dir, LoadOptions{Backend: be})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Free() })
				return m
			}
			fused := load(b)
			got := decodeLogits(t, fused, ids)
			plain := load(hideRopeCacher{b})
			for _, l := range plain.Layers {
				l.O.Adapter, l.Down.Adapter = nopAdapter{}, nopAdapter{}
			}
			for _, ref := range []struct {
				what string
				want []float32
			}{
				{"the unfused path on " + b.Name(), decodeLogits(t, plain, ids)},
				{"the CPU backend", decodeLogits(t, load(cpu.New(0)), ids)},
				{"a full recompute on " + b.Name(), hostLogits(t, fused, Input{IDs: ids, B: 1}, nil)},
			} {
				rel := maxRelErr(got, ref.want)
				t.Logf("fused cached decode vs %s: %.3g relative", ref.what, rel)
				if rel > 1e-4 {
					t.Errorf("fused cached decode differs from %s by %.3g > 1e-4", ref.what, rel)
				}
			}
		})
	}
}
