package quant

import (
	"fmt"
	"sort"
	"strings"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// DequantizedSource presents a bitsandbytes checkpoint (4-bit or int8, as transformers saves it)
// as a plain float checkpoint: each quantized weight appears under its own name as F32 with its
// original shape, decoded on demand (Float32/Bytes allocate a new float32 slice per call: the
// caller owns it); the quantization tensors (absmax, quant maps, quant state, SCB, weight_format)
// are hidden; every other tensor passes through unchanged. A model loader can read a quantized
// checkpoint through it exactly as it reads a float one. It is safe for concurrent use if src is.
type DequantizedSource struct {
	src   st.Source
	names []string
	kind  map[string]Format // quantized weight name -> format
}

var _ st.Source = (*DequantizedSource)(nil)

// NewDequantizedSource indexes src; it fails if a quantized weight's state is missing or corrupt
// (every weight is read and validated once here, so later Float32 calls only fail on I/O).
func NewDequantizedSource(src st.Source) (*DequantizedSource, error) {
	d := &DequantizedSource{src: src, kind: map[string]Format{}}
	hidden := map[string]bool{}
	for _, n := range src.Names() {
		if qt, ok := Is4bit(src, n); ok {
			if _, err := ReadWeight4(src, n); err != nil {
				return nil, err
			}
			d.kind[n] = Format(qt)
			for _, s := range []string{suffixAbsmax, suffixQuantMap, suffixNestedAbsmax, suffixNestedQuantMap, "." + StateTensorSuffix(qt)} {
				hidden[n+s] = true
			}
		} else if IsInt8(src, n) {
			if _, err := ReadWeightInt8(src, n); err != nil {
				return nil, err
			}
			d.kind[n] = FormatInt8
			hidden[SCBName(n)], hidden[WeightFormatName(n)] = true, true
		}
	}
	for _, n := range src.Names() {
		if hidden[n] {
			continue
		}
		if strings.Contains(n, ".quant_state.bitsandbytes__") {
			return nil, fmt.Errorf("dequantize %s: quant state without its weight %s", n, n[:strings.Index(n, ".quant_state.")])
		}
		d.names = append(d.names, n)
	}
	sort.Strings(d.names)
	return d, nil
}

// Names returns the visible tensor names, sorted (a new slice).
func (d *DequantizedSource) Names() []string { return append([]string(nil), d.names...) }

// Quantized returns the format of weight name, or "" when it is not quantized.
func (d *DequantizedSource) Quantized(name string) Format { return d.kind[name] }

// Info describes a tensor; a quantized weight shows as F32 with its original shape.
func (d *DequantizedSource) Info(name string) (st.TensorInfo, bool) {
	f, ok := d.kind[name]
	if !ok {
		return d.src.Info(name)
	}
	var shape []int
	if f == FormatInt8 {
		info, _ := d.src.Info(name)
		shape = info.Shape
	} else {
		s, err := readQuantState(d.src, name, QuantType(f))
		if err != nil {
			return st.TensorInfo{}, false
		}
		shape = s.Shape
	}
	n := numElements(shape)
	return st.TensorInfo{Name: name, DType: st.F32, Shape: shape, Begin: 0, End: int64(4 * n)}, true
}

// Float32 returns tensor name as float32 (dequantized for a quantized weight; see
// Weight4.Dequantize and WeightInt8.Dequantize). A new slice owned by the caller.
func (d *DequantizedSource) Float32(name string) ([]float32, error) {
	switch d.kind[name] {
	case "":
		return d.src.Float32(name)
	case FormatInt8:
		q, err := ReadWeightInt8(d.src, name)
		if err != nil {
			return nil, err
		}
		return q.Dequantize(nil), nil
	default:
		w, err := ReadWeight4(d.src, name)
		if err != nil {
			return nil, err
		}
		return w.Dequantize(nil), nil
	}
}

// Bytes returns the raw data of a tensor; for a quantized weight, the dequantized float32 values
// as little-endian bytes (a new slice).
func (d *DequantizedSource) Bytes(name string) ([]byte, error) {
	if _, ok := d.kind[name]; !ok {
		return d.src.Bytes(name)
	}
	v, err := d.Float32(name)
	if err != nil {
		return nil, err
	}
	return st.Float32Bytes(v), nil
}
