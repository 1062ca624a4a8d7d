package qmodel

import (
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	st "github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// Quantize converts the dense linear layers of a loaded model in place to precision p (NF4, FP4
// or Int8), one layer at a time: each selected weight is read back as float32, quantized as
// bitsandbytes would quantize it from its dtype, uploaded as a Linear (Linear.Packed) and its
// dense tensor freed. The layers selected are those transformers quantizes (the decoder layers'
// projections; not the embeddings or LM head). Layers already packed are left alone. On an error
// the model stays usable: every layer is either dense or quantized. The backend must implement
// tensor.Quantized. Useful for models loaded without a checkpoint to quantize from (the tiny
// random model, GGUF files, benchmarks).
func Quantize(m *model.Model, p Precision) error {
	if !p.Quantized() {
		return fmt.Errorf("quantize model %s: precision %q is not nf4, fp4 or int8", m.Source, string(p))
	}
	c, _, err := Options{Precision: p}.config()
	if err != nil {
		return err
	}
	if _, ok := m.Backend.(tensor.Quantized); !ok {
		return fmt.Errorf("quantize model %s: backend %s cannot hold quantized weights: %w", m.Source, m.Backend.Name(), tensor.ErrUnsupported)
	}
	for _, ly := range m.Layers {
		for _, lin := range ly.Linears() {
			if lin.Packed != nil || lin.Weight == nil {
				continue
			}
			dt := st.DType(lin.Weight.DType().String())
			info := st.TensorInfo{Name: lin.Name + ".weight", DType: dt, Shape: []int{lin.Out, lin.In}}
			if !c.ShouldQuantize(info) {
				continue
			}
			w, err := m.Backend.ToFloat32(lin.Weight)
			if err != nil {
				return fmt.Errorf("quantize %s: %w", lin.Name, err)
			}
			src := memSource{info: info, v: w}
			q, err := quantizeOnLoad(m.Backend, src, c, info.Name, lin.In, lin.Out)
			if err != nil {
				return err
			}
			old := lin.Weight
			lin.Packed, lin.Weight = q, nil
			if err := old.Free(); err != nil {
				return fmt.Errorf("quantize %s: free the dense weight: %w", lin.Name, err)
			}
		}
	}
	return nil
}

// memSource serves one float32 tensor (already decoded) under its checkpoint name.
type memSource struct {
	info st.TensorInfo
	v    []float32
}

func (s memSource) Names() []string { return []string{s.info.Name} }
func (s memSource) Info(name string) (st.TensorInfo, bool) {
	return s.info, name == s.info.Name
}
func (s memSource) Float32(name string) ([]float32, error) {
	if name != s.info.Name {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	return s.v, nil
}
func (s memSource) Bytes(name string) ([]byte, error) {
	return nil, fmt.Errorf("memSource: raw bytes of %s not available", name)
}
