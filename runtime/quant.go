// This file holds the precision part of the runtime API: loading a model with its base weights
// held at a chosen precision (QLoRA's 4-bit NF4/FP4, LLM.int8, or a float dtype), its memory by
// component, and copying an adapter onto another precision of the same model, so that finetuning
// and evaluation precisions are chosen independently (the FinLoRA paper's 8/8, 4/4, 8/4 ...).

package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/finlora/finlora/runtime/qmodel"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tokenizer"
	"github.com/finlora/finlora/runtime/train"
)

// Precisions accepted by OpenModelAt and LoadModelAt: "nf4" and "fp4" hold the decoder's linear
// layers in 4 bits (blocksize 64, double quantization: QLoRA's setting), "int8" in LLM.int8;
// "bf16", "f16", "f32" hold every weight dense in that dtype; "" keeps what the checkpoint stores
// (a transformers/bitsandbytes checkpoint stays quantized). Embeddings, norms and the LM head stay
// dense at every precision, as bitsandbytes leaves them.
const (
	PrecisionNF4  = "nf4"
	PrecisionFP4  = "fp4"
	PrecisionInt8 = "int8"
	PrecisionBF16 = "bf16"
	PrecisionF16  = "f16"
	PrecisionF32  = "f32"
)

// OpenModelAt loads the Hugging Face model directory path (float or bitsandbytes checkpoint, and
// tokenizer.json if present) with its base weights at precision (see the Precision constants);
// a float checkpoint is quantized on load one layer at a time, so memory stays near the quantized
// size. opts.Device chooses the device; opts.DType, when set, is the dtype of the dense weights of
// a quantized model. The caller owns the result (Free, or Session.Put).
func OpenModelAt(ctx context.Context, path, precision string, opts ModelOptions) (*LoadedModel, error) {
	start := time.Now()
	p, err := qmodel.ParsePrecision(precision)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	if path == TinyModelPath {
		return nil, fmt.Errorf("load model %s: the embedded tiny model has no checkpoint to quantize; give a model directory", path)
	}
	var b tensor.Backend
	if opts.Device != "" {
		b, err = tensor.Get(opts.Device)
	} else {
		b, err = tensor.Default()
	}
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	var dt tensor.DType
	if opts.DType != "" {
		if dt, err = tensor.ParseDType(opts.DType); err != nil || !dt.IsFloat() {
			return nil, fmt.Errorf("load model %s: dtype %q: want f32, bf16 or f16", path, opts.DType)
		}
	}
	m, err := qmodel.Load(ctx, path, qmodel.Options{Backend: b, Precision: p, DType: dt})
	if err != nil {
		return nil, err
	}
	lm := &LoadedModel{Path: path, Model: m}
	if _, statErr := os.Stat(filepath.Join(path, "tokenizer.json")); statErr == nil {
		tk, err := tokenizer.LoadDir(path)
		if err != nil {
			m.Free()
			return nil, fmt.Errorf("load model %s: %w", path, err)
		}
		lm.Tokenizer = tk
	}
	lm.LoadTime = time.Since(start)
	return lm, nil
}

// LoadModelAt loads path at precision (see OpenModelAt) and stores it in the Session under name,
// freeing what the name held. The Session owns the model.
func (s *Session) LoadModelAt(ctx context.Context, name, path, precision string, opts ModelOptions) (*LoadedModel, error) {
	if name == "" {
		return nil, fmt.Errorf("load model %s: empty name", path)
	}
	lm, err := OpenModelAt(ctx, path, precision, opts)
	if err != nil {
		return nil, err
	}
	lm.Name = name
	return lm, s.Put(name, lm)
}

// LoadModelAt loads path at precision into the Default session under name. In a cell, QLoRA
// finetuning on a 4-bit base and evaluation on an 8-bit one:
//
//	base4, err := runtime.LoadModelAt(runtime.Ctx(), "base4", dir, "nf4", runtime.ModelOptions{})
//	a, err := runtime.NewAdapter(base4, "fin", runtime.AdapterOptions{})
//	res, err := runtime.Finetune(runtime.Ctx(), a, ds, runtime.FinetuneOptions{Steps: 100})
//	base8, err := runtime.LoadModelAt(runtime.Ctx(), "base8", dir, "int8", runtime.ModelOptions{})
//	a8, err := a.CopyTo(base8, "fin@int8")
//	r, err := runtime.Evaluate(runtime.Ctx(), base8, a8, "fpb", test, runtime.EvalOptions{})
func LoadModelAt(ctx context.Context, name, path, precision string, opts ModelOptions) (*LoadedModel, error) {
	return defaultSession.LoadModelAt(ctx, name, path, precision, opts)
}

// Precision reports how the model's base weights are held: "nf4", "fp4", "int8" (quantized
// linear layers) or "f32", "bf16", "f16".
func (lm *LoadedModel) Precision() string {
	if lm == nil || lm.Model == nil {
		return ""
	}
	return string(qmodel.PrecisionOf(lm.Model))
}

// weightsPrecision is the weights' description in String and HTML: the dense dtype ("BF16"), or
// for a quantized model its format with the dense parts' dtype ("nf4 linears, F32 embeddings/norms").
func weightsPrecision(lm *LoadedModel) string {
	p := qmodel.PrecisionOf(lm.Model)
	if p.Quantized() {
		return fmt.Sprintf("%s linears, %s embeddings/norms", p, lm.Model.DType)
	}
	return lm.Model.DType.String()
}

// Memory is the model's memory by component (embeddings, LM head, quantized and dense linear
// layers, norms); it has String and HTML views. Training components (adapter, optimizer,
// activations) are reported by train.Trainer.Memory.
func (lm *LoadedModel) Memory() train.Memory {
	if lm == nil || lm.Model == nil {
		return train.Memory{}
	}
	return train.ModelMemory(lm.Model)
}

// Quantize converts the model's dense linear layers in place to precision ("nf4", "fp4" or
// "int8"), one layer at a time, freeing the dense weights (see qmodel.Quantize): for models that
// have no float checkpoint to quantize from on load (the embedded tiny model, GGUF files).
// Detach adapters first if they use DoRA (its inference hook needs a dense weight).
func (lm *LoadedModel) Quantize(precision string) error {
	if lm == nil || lm.Model == nil {
		return fmt.Errorf("quantize: the model is freed")
	}
	p, err := qmodel.ParsePrecision(precision)
	if err != nil {
		return fmt.Errorf("quantize model %q: %w", lm.Name, err)
	}
	if err := qmodel.Quantize(lm.Model, p); err != nil {
		return fmt.Errorf("quantize model %q: %w", lm.Name, err)
	}
	return nil
}

// CopyTo copies adapter a onto model m (typically the same model at another precision: the
// adapter's weights do not depend on how the base is held) and stores the copy under name in the
// Default session, freeing what the name held. The copy has its own weights (a clone) and starts
// with a's history; a is unchanged. The modules must fit m's linear layers.
func (a *Adapter) CopyTo(m *LoadedModel, name string) (*Adapter, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("copy adapter: %w", err)
	}
	if err := usableModel(m); err != nil {
		return nil, fmt.Errorf("copy adapter %q: %w", a.Name, err)
	}
	if name == "" {
		return nil, fmt.Errorf("copy adapter %q: empty name", a.Name)
	}
	if name == a.Name {
		return nil, fmt.Errorf("copy adapter %q: the copy needs another name (storing it would free the original)", a.Name)
	}
	la := a.LoRA.Clone()
	base, err := train.NewBase(m.Model, 8)
	if err != nil {
		return nil, fmt.Errorf("copy adapter %q onto model %q: %w", a.Name, m.Name, err)
	}
	err = base.CheckAdapter(la)
	base.Close()
	if err != nil {
		return nil, fmt.Errorf("copy adapter %q onto model %q: %w", a.Name, m.Name, err)
	}
	c := &Adapter{Name: name, Model: m, LoRA: la, Path: a.Path, History: append([]train.StepMetrics(nil), a.History...)}
	return c, Put(name, c)
}
