package quant

import (
	"fmt"
	"sort"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// memSource is an in-memory safetensors.Source for tests.
type memSource map[string]st.Tensor

func newMemSource(ts []st.Tensor) memSource {
	m := memSource{}
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func (m memSource) Names() []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (m memSource) Info(name string) (st.TensorInfo, bool) {
	t, ok := m[name]
	return st.TensorInfo{Name: name, DType: t.DType, Shape: t.Shape, End: int64(len(t.Data))}, ok
}

func (m memSource) Bytes(name string) ([]byte, error) {
	t, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	return t.Data, nil
}

func (m memSource) Float32(name string) ([]float32, error) {
	t, ok := m[name]
	if !ok || t.DType != st.F32 {
		return nil, fmt.Errorf("no F32 tensor %s", name)
	}
	return st.BytesFloat32(t.Data), nil
}

// copySource copies every tensor of src into a memSource.
func copySource(src st.Source) memSource {
	m := memSource{}
	for _, n := range src.Names() {
		info, _ := src.Info(n)
		b, _ := src.Bytes(n)
		m[n] = st.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), b...)}
	}
	return m
}
