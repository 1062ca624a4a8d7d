package qmodel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/finlora/finlora/quant"
	"github.com/finlora/finlora/runtime/model"
	st "github.com/finlora/finlora/runtime/safetensors"
	"github.com/finlora/finlora/runtime/tensor"
)

// Precision names how a model's base weights are held: "f32", "bf16", "f16" (dense), "nf4", "fp4"
// (4-bit, blocksize 64, double quantization, as QLoRA) or "int8" (LLM.int8). "" means as stored:
// a bitsandbytes checkpoint stays in its quantized format, a float one keeps its dtype.
type Precision string

// The precisions.
const (
	AsStored Precision = ""
	F32      Precision = "f32"
	BF16     Precision = "bf16"
	F16      Precision = "f16"
	NF4      Precision = "nf4"
	FP4      Precision = "fp4"
	Int8     Precision = "int8"
)

// ParsePrecision accepts the names above, case-insensitively, and the spellings "4bit" (nf4),
// "8bit" (int8), "float32", "bfloat16", "float16".
func ParsePrecision(s string) (Precision, error) {
	switch k := strings.ToLower(strings.TrimSpace(s)); k {
	case "", "auto", "stored":
		return AsStored, nil
	case "nf4", "4bit", "4-bit":
		return NF4, nil
	case "fp4":
		return FP4, nil
	case "int8", "8bit", "8-bit", "llm.int8":
		return Int8, nil
	default:
		dt, err := tensor.ParseDType(k)
		if err != nil || !dt.IsFloat() {
			return "", fmt.Errorf("precision %q: want nf4, fp4, int8, f32, bf16 or f16", s)
		}
		return map[tensor.DType]Precision{tensor.F32: F32, tensor.BF16: BF16, tensor.F16: F16}[dt], nil
	}
}

// Quantized reports whether p holds the linear layers quantized.
func (p Precision) Quantized() bool { return p == NF4 || p == FP4 || p == Int8 }

// Options choose where and how a model is loaded.
type Options struct {
	// Backend receives the weights; nil means tensor.Default(). A quantized precision needs a
	// backend implementing tensor.Quantized (the CPU backend does).
	Backend tensor.Backend
	// Precision of the base weights (see Precision).
	Precision Precision
	// Quant, when its Format is set, overrides the quantization config that Precision implies
	// (block size, double quantization, modules to skip); its Format must agree with Precision.
	Quant quant.Config
	// DType converts the dense weights (embeddings, norms, LM head) of a quantized model to F32,
	// F16 or BF16; Invalid keeps their stored dtype.
	DType tensor.DType
}

// config returns the quantization to apply on load ("" Format: none) and the dense dtype.
func (o Options) config() (quant.Config, tensor.DType, error) {
	var c quant.Config
	dt := o.DType
	switch o.Precision {
	case AsStored:
	case F32:
		dt = tensor.F32
	case BF16:
		dt = tensor.BF16
	case F16:
		dt = tensor.F16
	case NF4, FP4:
		c = quant.Config{Format: quant.Format(o.Precision), DoubleQuant: true}
	case Int8:
		c = quant.Config{Format: quant.FormatInt8}
	default:
		return c, dt, fmt.Errorf("precision %q: want nf4, fp4, int8, f32, bf16 or f16", string(o.Precision))
	}
	if o.Quant.Format != "" {
		if c.Format != "" && o.Quant.Format != c.Format {
			return c, dt, fmt.Errorf("precision %s with a %s quant config", o.Precision, o.Quant.Format)
		}
		c = o.Quant
	}
	if c.Format != "" {
		if err := c.Check(); err != nil {
			return c, dt, err
		}
	}
	return c, dt, nil
}

// resolve is config plus the backend to load onto: opts.Backend, else tensor.Default().
func (o Options) resolve() (quant.Config, tensor.DType, tensor.Backend, error) {
	c, dt, err := o.config()
	if err != nil {
		return c, dt, nil, err
	}
	b := o.Backend
	if b == nil {
		if b, err = tensor.Default(); err != nil {
			return c, dt, nil, err
		}
	}
	return c, dt, b, nil
}

// Load reads a Hugging Face model directory (config.json + safetensors): a float checkpoint, or a
// transformers/bitsandbytes one (4-bit or int8, detected from config.json's quantization_config
// and the tensors). With a quantized precision, the linear layers of the decoder are quantized on
// load one at a time (read as float32, quantized, uploaded, dropped), so host and device memory
// stay near the quantized size; a bitsandbytes checkpoint in the same format is uploaded as it
// is. A float precision on a bitsandbytes checkpoint dequantizes it. Asking a bitsandbytes
// checkpoint for another quantized format is an error (quantize from the float checkpoint). The
// caller frees the model (model.Model.Free, which frees the quantized layers too).
func Load(ctx context.Context, dir string, opts Options) (*model.Model, error) {
	cfgPath := filepath.Join(dir, "config.json")
	cfg, err := model.LoadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	if _, _, err := quant.ParseQuantizationConfig(raw); err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	set, err := st.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	defer set.Close()
	m, err := FromSource(ctx, cfg, set, opts)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m.Source = dir
	return m, nil
}

// FromSource builds the model of cfg from src (see Load for what src may hold and what opts do).
// Weights are copied to the backend, so src may be closed afterwards.
func FromSource(ctx context.Context, cfg *model.Config, src st.Source, opts Options) (*model.Model, error) {
	qc, dt, b, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	stored := storedFormat(src)
	lo := model.LoadOptions{Backend: b, DType: dt}
	switch {
	case stored != "" && opts.Precision.Quantized() && quant.Format(opts.Precision) != stored:
		return nil, fmt.Errorf("the checkpoint is quantized to %s; load %s from the float checkpoint", stored, opts.Precision)
	case stored != "" && opts.Precision != AsStored && !opts.Precision.Quantized():
		// dequantize to a dense float model
		ds, err := quant.NewDequantizedSource(src)
		if err != nil {
			return nil, err
		}
		return model.FromSource(ctx, cfg, ds, lo)
	case stored != "":
		if _, ok := b.(tensor.Quantized); !ok {
			return nil, fmt.Errorf("backend %s cannot hold quantized weights: %w", b.Name(), tensor.ErrUnsupported)
		}
		lo.Linear = func(name string, in, out int) (model.PackedWeight, error) {
			return uploadStored(b, src, name+".weight", in, out)
		}
	case qc.Format != "":
		if _, ok := b.(tensor.Quantized); !ok {
			return nil, fmt.Errorf("backend %s cannot hold quantized weights: %w", b.Name(), tensor.ErrUnsupported)
		}
		lo.Linear = func(name string, in, out int) (model.PackedWeight, error) {
			return quantizeOnLoad(b, src, qc, name+".weight", in, out)
		}
	}
	return model.FromSource(ctx, cfg, src, lo)
}

// LoadGGUF loads a Llama-family GGUF file (llama, qwen2, qwen3 architectures: model.LoadGGUF's)
// with its projections held as opts.Precision says: quantized on load from the dequantized GGML
// blocks for a quantized precision, dense (opts.DType, or the precision's dtype) otherwise. The
// caller frees the model.
func LoadGGUF(ctx context.Context, path string, opts Options) (*model.Model, error) {
	m, err := model.WithGGUF(path, func(cfg *model.Config, src *model.GGUFSource) (*model.Model, error) {
		return FromSource(ctx, cfg, src, opts)
	})
	if err != nil {
		return nil, err
	}
	m.Source = path
	return m, nil
}

// LoadGemma3GGUF loads a Gemma 3 GGUF file with its projections held as opts.Precision says: a
// quantized precision quantizes each projection on load from its dequantized GGML blocks (one at a
// time, as FromSource does); AsStored or a float precision gives the dense model of
// model.LoadGemma3GGUF (weights of opts.DType or the precision's dtype). Embeddings, norms and the
// tied LM head stay dense. The caller frees the model.
func LoadGemma3GGUF(ctx context.Context, path string, opts Options) (*model.Gemma3, error) {
	qc, dt, b, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	lo := model.LoadOptions{Backend: b, DType: dt}
	if qc.Format == "" {
		return model.LoadGemma3GGUF(ctx, path, lo)
	}
	if _, ok := b.(tensor.Quantized); !ok {
		return nil, fmt.Errorf("backend %s cannot hold quantized weights: %w", b.Name(), tensor.ErrUnsupported)
	}
	m, err := model.WithGemma3GGUF(path, func(cfg *model.Gemma3Config, src *model.GGUFSource) (*model.Gemma3, error) {
		lo.Linear = func(name string, in, out int) (model.PackedWeight, error) {
			return quantizeOnLoad(b, src, qc, name+".weight", in, out)
		}
		return model.Gemma3FromSource(ctx, cfg, src, lo)
	})
	if err != nil {
		return nil, err
	}
	m.Source = path
	return m, nil
}

// storedFormat is the bitsandbytes format of src's first quantized weight ("" for none).
func storedFormat(src st.Source) quant.Format {
	for _, n := range src.Names() {
		if qt, ok := quant.Is4bit(src, n); ok {
			return quant.Format(qt)
		}
		if quant.IsInt8(src, n) {
			return quant.FormatInt8
		}
	}
	return ""
}

// uploadStored uploads the bitsandbytes weight saved under name (nil when it is not quantized).
func uploadStored(b tensor.Backend, src st.Source, name string, in, out int) (model.PackedWeight, error) {
	var h *tensor.QuantHost
	switch {
	case quant.IsInt8(src, name):
		q, err := quant.ReadWeightInt8(src, name)
		if err != nil {
			return nil, err
		}
		if h, err = q.Host(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	default:
		if _, ok := quant.Is4bit(src, name); !ok {
			return nil, nil
		}
		w, err := quant.ReadWeight4(src, name)
		if err != nil {
			return nil, err
		}
		if h, err = w.Host(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if h.Rows != out || h.Cols != in {
		return nil, fmt.Errorf("quantized weight %s is [%d %d], config.json implies [%d %d]", name, h.Rows, h.Cols, out, in)
	}
	return Upload(b, h)
}

// torchDType names a safetensors float dtype as bitsandbytes records it.
var torchDType = map[st.DType]string{st.F32: "float32", st.BF16: "bfloat16", st.F16: "float16"}

// quantizeOnLoad quantizes the float weight name to c's format and uploads it (nil when c does not
// select it, as transformers would not quantize it). Only this layer is ever held in float32.
func quantizeOnLoad(b tensor.Backend, src st.Source, c quant.Config, name string, in, out int) (model.PackedWeight, error) {
	info, ok := src.Info(name)
	if ok && torchDType[info.DType] == "" {
		// GGML blocks of a GGUF file (model.GGUFSource): Float32 dequantizes them, so they quantize
		// as a float32 checkpoint would
		info.DType = st.F32
	}
	if !ok || !c.ShouldQuantize(info) {
		return nil, nil
	}
	if !tensor.SameShape(info.Shape, []int{out, in}) {
		return nil, fmt.Errorf("tensor %s has shape %v, config.json implies [%d %d]", name, info.Shape, out, in)
	}
	w, err := src.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var h *tensor.QuantHost
	if c.Format == quant.FormatInt8 {
		q, err := quant.QuantizeInt8(w, out, in)
		if err != nil {
			return nil, fmt.Errorf("quantize %s: %w", name, err)
		}
		h, err = q.Host()
		if err != nil {
			return nil, err
		}
	} else {
		q, err := quant.Quantize4(w, info.Shape, quant.Options4{Type: quant.QuantType(c.Format), BlockSize: c.BlockSize,
			DoubleQuant: c.DoubleQuant, DType: torchDType[info.DType]})
		if err != nil {
			return nil, fmt.Errorf("quantize %s: %w", name, err)
		}
		if h, err = q.Host(); err != nil {
			return nil, err
		}
	}
	return Upload(b, h)
}

// PrecisionOf reports how m's base weights are held: the format of its quantized linear layers
// when it has any, else its dense dtype ("f32", "bf16", "f16").
func PrecisionOf(m *model.Model) Precision {
	for _, l := range m.Linears() {
		if q, ok := l.Packed.(*Linear); ok {
			return Precision(q.Format().String())
		}
	}
	switch m.DType {
	case tensor.BF16:
		return BF16
	case tensor.F16:
		return F16
	}
	return F32
}
