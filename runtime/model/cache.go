package model

import (
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
)

// Cache is the KV cache of a batch of B sequences decoded together: per layer K and V F32
// [B, Capacity, Hkv, HD]. All sequences share the slot count Len; shorter prompts are left padded,
// and KeyStart[b] is the first real slot of sequence b (the padding before it is masked out and
// positions count from it). The caller owns the Cache and frees it with Free.
type Cache struct {
	B, Capacity int
	Len         int   // slots filled so far
	KeyStart    []int // per sequence, set by the first Forward (Input.Pad)
	K, V        []*tensor.Tensor
}

// NewCache allocates an empty cache for batch sequences of up to capacity slots (prompt + new tokens).
func (m *Model) NewCache(batch, capacity int) (*Cache, error) {
	c := m.Config
	return newCache(m.Backend, batch, capacity, c.NumLayers, c.NumKVHeads, c.HeadDim)
}

// newCache allocates an empty Cache on be: per layer (of layers) K and V F32
// [batch, capacity, kvHeads, headDim]. On error it frees what it allocated.
func newCache(be tensor.Backend, batch, capacity, layers, kvHeads, headDim int) (*Cache, error) {
	if batch <= 0 || capacity <= 0 {
		return nil, fmt.Errorf("new cache: batch %d, capacity %d: want > 0", batch, capacity)
	}
	kc := &Cache{B: batch, Capacity: capacity, KeyStart: make([]int, batch)}
	for i := 0; i < layers; i++ {
		k, err := be.Alloc(tensor.F32, batch, capacity, kvHeads, headDim)
		if err != nil {
			kc.Free()
			return nil, fmt.Errorf("new cache layer %d: %w", i, err)
		}
		kc.K = append(kc.K, k)
		v, err := be.Alloc(tensor.F32, batch, capacity, kvHeads, headDim)
		if err != nil {
			kc.Free()
			return nil, fmt.Errorf("new cache layer %d: %w", i, err)
		}
		kc.V = append(kc.V, v)
	}
	return kc, nil
}

// Bytes is the storage of the cache.
func (c *Cache) Bytes() int64 {
	var n int64
	for i := range c.K {
		n += c.K[i].Bytes() + c.V[i].Bytes()
	}
	return n
}

// Reset empties the cache for reuse (same batch size and capacity).
func (c *Cache) Reset() {
	c.Len = 0
	clear(c.KeyStart)
}

// Free releases the cache's tensors; idempotent.
func (c *Cache) Free() error {
	if c == nil {
		return nil
	}
	err := tensor.FreeAll(append(append([]*tensor.Tensor(nil), c.K...), c.V...)...)
	c.K, c.V = nil, nil
	return err
}
