package model

import (
	"fmt"
	"sort"

	"github.com/finlora/finlora/runtime/safetensors"
)

// memTensor is a float32 tensor held in memory.
type memTensor struct {
	shape []int
	data  []float32
}

// memSource serves in-memory float32 tensors through safetensors.Source (for TinyRandom).
type memSource map[string]memTensor

func (s memSource) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s memSource) Info(name string) (safetensors.TensorInfo, bool) {
	t, ok := s[name]
	if !ok {
		return safetensors.TensorInfo{}, false
	}
	return safetensors.TensorInfo{Name: name, DType: safetensors.F32, Shape: t.shape, End: int64(4 * len(t.data))}, true
}

func (s memSource) Bytes(name string) ([]byte, error) {
	t, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	return safetensors.Float32Bytes(t.data), nil
}

func (s memSource) Float32(name string) ([]float32, error) {
	t, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	return append([]float32(nil), t.data...), nil
}
