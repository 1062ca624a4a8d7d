package model

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/finlora/finlora/runtime/tensor/cpu"
)

func loadFixture(t *testing.T, name string) *Model {
	t.Helper()
	m, err := Load(context.Background(), filepath.Join("testdata", name), LoadOptions{Backend: cpu.New(0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Free() })
	return m
}

func hostLogits(t *testing.T, m *Model, in Input, c *Cache) []float32 {
	t.Helper()
	lg, err := m.Forward(context.Background(), in, c)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Free()
	v, err := m.Backend.ToFloat32(lg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Decoding through the KV cache (a prefill, a chunk, then token by token) gives the logits of one
// full recompute at every position.
func TestCacheMatchesFullRecompute(t *testing.T) {
	for _, name := range []string{"tiny-llama", "tiny-qwen3"} {
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, name)
			ids := referenceIDs(t, filepath.Join("testdata", name))
			full := hostLogits(t, m, Input{IDs: ids, B: 1}, nil)
			c, err := m.NewCache(1, len(ids)+2)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Free()
			got := decodeThrough(t, m, ids, c)
			if c.Len != len(ids) {
				t.Errorf("cache length %d, want %d", c.Len, len(ids))
			}
			if rel := maxRelErr(got, full); rel > 1e-5 {
				t.Errorf("cached decode differs from full recompute: %.3g relative", rel)
			}
			if _, err := m.Forward(context.Background(), Input{IDs: ids[:3], B: 1}, c); err == nil {
				t.Error("forward past the cache capacity succeeded")
			}
		})
	}
}

// A left-padded batch gives each sequence the logits it gets alone, at its real positions.
func TestLeftPaddingMatchesSingle(t *testing.T) {
	m := loadFixture(t, "tiny-llama")
	ids := referenceIDs(t, filepath.Join("testdata", "tiny-llama"))
	V := m.Config.VocabSize
	seqs := [][]int32{ids[:12], ids[5:9], ids[3:12]}
	T := 12
	var batch []int32
	pad := make([]int, len(seqs))
	for i, s := range seqs {
		pad[i] = T - len(s)
		for j := 0; j < pad[i]; j++ {
			batch = append(batch, 0)
		}
		batch = append(batch, s...)
	}
	for _, useCache := range []bool{false, true} {
		var c *Cache
		if useCache {
			var err error
			if c, err = m.NewCache(len(seqs), T+1); err != nil {
				t.Fatal(err)
			}
			defer c.Free()
		}
		got := hostLogits(t, m, Input{IDs: batch, B: len(seqs), Pad: pad}, c)
		for i, s := range seqs {
			alone := hostLogits(t, m, Input{IDs: s, B: 1}, nil)
			row := got[(i*T+pad[i])*V : (i+1)*T*V]
			if rel := maxRelErr(row, alone); rel > 1e-5 {
				t.Errorf("cache=%v sequence %d (pad %d): batched logits differ from alone by %.3g", useCache, i, pad[i], rel)
			}
		}
		if useCache { // one more decode step for everyone: compare with the sequences extended alone
			next := []int32{7, 7, 7}
			step := hostLogits(t, m, Input{IDs: next, B: len(seqs)}, c)
			for i, s := range seqs {
				alone := hostLogits(t, m, Input{IDs: append(append([]int32(nil), s...), 7), B: 1}, nil)
				if rel := maxRelErr(step[i*V:(i+1)*V], alone[len(s)*V:]); rel > 1e-5 {
					t.Errorf("decode step of sequence %d differs from alone by %.3g", i, rel)
				}
			}
		}
	}
}
