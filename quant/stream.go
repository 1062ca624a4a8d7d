package quant

import (
	"context"
	"fmt"
	"strings"

	st "github.com/finlora/finlora/runtime/safetensors"
)

// Item is one source tensor's contribution to a quantized checkpoint.
type Item struct {
	Source  string      // the source tensor name
	Weight4 *Weight4    // set when the tensor was quantized to 4 bits
	Int8    *WeightInt8 // set when the tensor was quantized to int8
	// Tensors are what to save for it: the quantized parts under transformers' names, or the
	// source tensor unchanged (its Data then a view of the source, valid while the source is open).
	Tensors []st.Tensor
}

// torchDType maps a safetensors float dtype to the torch dtype name bitsandbytes records.
var torchDType = map[st.DType]string{st.F32: "float32", st.BF16: "bfloat16", st.F16: "float16"}

// ShouldQuantize reports whether transformers' bitsandbytes integration would quantize the tensor:
// the 2-D float weight of a linear layer inside the decoder layers (a name containing ".layers."
// and ending in ".weight"; so not the embeddings, norms, biases or lm_head), whose module is not
// listed in c.SkipModules (an entry matches the module name or any dotted component of it).
func (c Config) ShouldQuantize(info st.TensorInfo) bool {
	if len(info.Shape) != 2 || torchDType[info.DType] == "" {
		return false
	}
	if !strings.HasSuffix(info.Name, ".weight") || !strings.Contains(info.Name, ".layers.") {
		return false
	}
	mod := moduleOf(info.Name)
	for _, s := range c.SkipModules {
		if mod == s || strings.Contains("."+mod+".", "."+s+".") {
			return false
		}
	}
	return true
}

// QuantizeSource converts the float checkpoint src to c's format one tensor at a time, in name
// order, calling emit once per source tensor. Only one float32 copy of one tensor is alive at a
// time (decoded, quantized, dropped), so a caller that keeps only the quantized items holds about
// the quantized size plus one layer; a model loader can upload each item and drop it. Tensors that
// are not quantized are passed through as views. 4-bit weights are quantized from their values in
// the stored dtype (as transformers loads them with dtype "auto") and record it; int8 weights
// are rounded to float16 first, as bitsandbytes does. ctx is checked between tensors; an error
// from emit stops the walk and is returned.
func QuantizeSource(ctx context.Context, src st.Source, c Config, emit func(Item) error) error {
	if err := c.Check(); err != nil {
		return err
	}
	var buf []float32 // one float32 layer, reused
	for _, name := range src.Names() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("quantize: stopped before %s: %w", name, err)
		}
		info, _ := src.Info(name)
		item := Item{Source: name}
		if !c.ShouldQuantize(info) {
			b, err := src.Bytes(name)
			if err != nil {
				return fmt.Errorf("quantize: read %s: %w", name, err)
			}
			item.Tensors = []st.Tensor{{Name: name, DType: info.DType, Shape: info.Shape, Data: b}}
		} else {
			raw, err := src.Bytes(name)
			if err != nil {
				return fmt.Errorf("quantize: read %s: %w", name, err)
			}
			if buf, err = decodeFloat(info.DType, raw, buf); err != nil {
				return fmt.Errorf("quantize: decode %s: %w", name, err)
			}
			w := buf
			if c.Format == FormatInt8 {
				item.Int8, err = QuantizeInt8(w, info.Shape[0], info.Shape[1])
				if err == nil {
					item.Tensors = item.Int8.Tensors(name)
				}
			} else {
				item.Weight4, err = Quantize4(w, info.Shape, Options4{Type: QuantType(c.Format),
					BlockSize: c.BlockSize, DoubleQuant: c.DoubleQuant, DType: torchDType[info.DType]})
				if err == nil {
					item.Tensors = item.Weight4.Tensors(name)
				}
			}
			if err != nil {
				return fmt.Errorf("quantize %s: %w", name, err)
			}
		}
		if err := emit(item); err != nil {
			return err
		}
	}
	return nil
}

// decodeFloat decodes little-endian F32/BF16/F16 data into buf (grown when short) and returns it.
func decodeFloat(dt st.DType, raw []byte, buf []float32) ([]float32, error) {
	n := len(raw) / dt.Size()
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	buf = buf[:n]
	return buf, st.DecodeFloat32(dt, raw, buf)
}
