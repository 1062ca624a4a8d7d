package quant

import (
	"fmt"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// OnLoadSource presents a float checkpoint as the model bitsandbytes would compute with after
// quantizing it on load: every weight c.ShouldQuantize selects is quantized to c's format and
// dequantized again when read (F32, original shape; exactly the values bitsandbytes'
// dequantization gives for those quantized bytes), every other tensor passes through. It lets
// the float CPU model run "as quantized" (finlora logits --quant nf4) while holding one layer in
// float32 at a time; a GPU loader would instead keep QuantizeSource's quantized items. Safe for
// concurrent use if src is.
type OnLoadSource struct {
	src st.Source
	cfg Config
}

var _ st.Source = (*OnLoadSource)(nil)

// NewOnLoadSource wraps src; c is validated.
func NewOnLoadSource(src st.Source, c Config) (*OnLoadSource, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &OnLoadSource{src: src, cfg: c}, nil
}

// Names returns src's names.
func (o *OnLoadSource) Names() []string { return o.src.Names() }

// Info describes a tensor; a weight to be quantized shows as F32.
func (o *OnLoadSource) Info(name string) (st.TensorInfo, bool) {
	info, ok := o.src.Info(name)
	if ok && o.cfg.ShouldQuantize(info) {
		info.DType, info.Begin, info.End = st.F32, 0, int64(4*info.NumElements())
	}
	return info, ok
}

// Float32 returns tensor name; a selected weight comes back quantized then dequantized (a new
// slice owned by the caller).
func (o *OnLoadSource) Float32(name string) ([]float32, error) {
	info, ok := o.src.Info(name)
	if !ok || !o.cfg.ShouldQuantize(info) {
		return o.src.Float32(name)
	}
	w, err := o.src.Float32(name)
	if err != nil {
		return nil, err
	}
	if o.cfg.Format == FormatInt8 {
		q, err := QuantizeInt8(w, info.Shape[0], info.Shape[1])
		if err != nil {
			return nil, fmt.Errorf("quantize on load %s: %w", name, err)
		}
		return q.Dequantize(w), nil
	}
	q, err := Quantize4(w, info.Shape, Options4{Type: QuantType(o.cfg.Format), BlockSize: o.cfg.BlockSize,
		DoubleQuant: o.cfg.DoubleQuant, DType: torchDType[info.DType]})
	if err != nil {
		return nil, fmt.Errorf("quantize on load %s: %w", name, err)
	}
	return q.Dequantize(w), nil
}

// Bytes returns the raw data; for a selected weight, the float32 bytes of Float32 (a new slice).
func (o *OnLoadSource) Bytes(name string) ([]byte, error) {
	info, ok := o.src.Info(name)
	if !ok || !o.cfg.ShouldQuantize(info) {
		return o.src.Bytes(name)
	}
	v, err := o.Float32(name)
	if err != nil {
		return nil, err
	}
	return st.Float32Bytes(v), nil
}
