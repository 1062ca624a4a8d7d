package experiment

import (
	"context"
	"fmt"
	"time"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/eval"
	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/qmodel"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tokenizer"
	"github.com/finlora/finlora/runtime/train"
)

// Backbone is a loaded pretrained model the experiment runs on: a Gemma 3 GGUF file (Gemma set), or
// a Llama-family model (Llama set: a llama-architecture GGUF file such as SmolLM2, or a Hugging
// Face directory), with its tokenizer. It owns the model (Close frees it).
type Backbone struct {
	Path      string
	Arch      string // "gemma3" or the Llama-family model_type ("llama", "qwen2", ...)
	Gemma     *model.Gemma3
	Llama     *model.Model
	Tokenizer tokenizer.Tokenizer
	Backend   tensor.Backend
	DType     tensor.DType // weight dtype after loading (quantized GGUF weights are dequantized to it)
	Quant     string       // "nf4", "fp4" or "int8": the projections are held quantized (QLoRA); "": dense
	Params    int64        // parameters (tied head once)
	LoadTime  time.Duration
}

// LoadBackbone loads path (a .gguf file or a model directory) on backend b (nil: tensor.Default())
// with dense weights of dtype dt (F32 when Invalid; BF16 halves the memory).
func LoadBackbone(ctx context.Context, path string, b tensor.Backend, dt tensor.DType) (*Backbone, error) {
	return LoadBackboneQuant(ctx, path, b, dt, "")
}

// LoadBackboneQuant is LoadBackbone with the decoder's projections held quantized when quant is
// "nf4", "fp4" or "int8" (QLoRA's frozen base: quantized on load one layer at a time through
// runtime/qmodel, from the dequantized GGML blocks of a GGUF file); "" keeps them dense.
func LoadBackboneQuant(ctx context.Context, path string, b tensor.Backend, dt tensor.DType, quant string) (*Backbone, error) {
	start := time.Now()
	if b == nil {
		var err error
		if b, err = tensor.Default(); err != nil {
			return nil, err
		}
	}
	if dt == tensor.Invalid {
		dt = tensor.F32
	}
	p, err := qmodel.ParsePrecision(quant)
	if err != nil || (p != qmodel.AsStored && !p.Quantized()) {
		return nil, fmt.Errorf("experiment: quant %q: want nf4, fp4, int8 or none", quant)
	}
	bb := &Backbone{Path: path, Backend: b, DType: dt, Quant: quant}
	qo := qmodel.Options{Backend: b, Precision: p, DType: dt}
	if gguf.IsFileName(path) {
		f, err := gguf.Open(path)
		if err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
		arch, err := f.Metadata().Arch()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("experiment: %s: %w", path, err)
		}
		bb.Arch = arch
		if arch == "gemma3" {
			bb.Gemma, err = qmodel.LoadGemma3GGUF(ctx, path, qo)
		} else {
			bb.Llama, err = qmodel.LoadGGUF(ctx, path, qo)
		}
		if err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
		if bb.Tokenizer, err = tokenizer.LoadGGUF(path); err != nil {
			bb.Close()
			return nil, fmt.Errorf("experiment: %s: %w", path, err)
		}
	} else {
		var err error
		if bb.Llama, err = qmodel.Load(ctx, path, qo); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
		bb.Arch = bb.Llama.Config.ModelType
		if bb.Tokenizer, err = tokenizer.LoadDir(path); err != nil {
			bb.Close()
			return nil, fmt.Errorf("experiment: %s: %w", path, err)
		}
	}
	bb.Params = bb.countParams()
	bb.LoadTime = time.Since(start)
	return bb, nil
}

func (bb *Backbone) countParams() int64 {
	if bb.Llama != nil {
		return bb.Llama.Params()
	}
	g := bb.Gemma
	n := int64(g.Embed.Numel() + g.Norm.Numel())
	for _, l := range g.Layers {
		for _, t := range []*tensor.Tensor{l.InputNorm, l.PostAttnNorm, l.PreFFNorm, l.PostFFNorm, l.QNorm, l.KNorm} {
			n += int64(t.Numel())
		}
		for _, p := range l.Linears() {
			n += int64(p.In * p.Out)
		}
	}
	return n
}

// String is a one-line description: architecture, parameters, dtype, device, file.
func (bb *Backbone) String() string {
	w := bb.DType.String()
	if bb.Quant != "" {
		w = bb.Quant + " projections, " + w
	}
	return fmt.Sprintf("%s, %.0f M parameters, %s weights on %s (%s)", bb.Arch, float64(bb.Params)/1e6, w, bb.Backend.Name(), bb.Path)
}

// Close frees the model.
func (bb *Backbone) Close() error {
	var err error
	if bb.Gemma != nil {
		err = bb.Gemma.Free()
		bb.Gemma = nil
	}
	if bb.Llama != nil {
		err = bb.Llama.Free()
		bb.Llama = nil
	}
	return err
}

// NewTrainBase wraps the model for training (the Base borrows the weights; Close it before the
// Backbone). maxPositions bounds the training sequence length.
func (bb *Backbone) NewTrainBase(maxPositions int) (*train.Base, error) {
	if bb.Gemma != nil {
		return train.NewGemma3Base(bb.Gemma, maxPositions)
	}
	return train.NewBase(bb.Llama, maxPositions)
}

// Generator returns an eval.Generator of the model with adapter a attached (nil: the bare base),
// and detach, which removes the adapter again. maxPromptTokens as eval.ModelGenerator's.
func (bb *Backbone) Generator(a *lora.Adapter, maxPromptTokens int) (eval.Generator, func(), error) {
	detach := func() {}
	var err error
	if bb.Gemma != nil {
		if a != nil {
			if detach, err = lora.AttachGemma3(bb.Gemma, a); err != nil {
				return nil, nil, err
			}
		}
		return &Gemma3Generator{Model: bb.Gemma, Tokenizer: bb.Tokenizer, MaxPromptTokens: maxPromptTokens}, detach, nil
	}
	if a != nil {
		if detach, err = lora.Attach(bb.Llama, a); err != nil {
			return nil, nil, err
		}
	}
	return &eval.ModelGenerator{Model: bb.Llama, Tokenizer: bb.Tokenizer, MaxPromptTokens: maxPromptTokens}, detach, nil
}
