package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/qmodel"
)

// quantFlag registers --quant on fs (logits, train, eval, generate).
func quantFlag(fs *flag.FlagSet) *string {
	return fs.String("quant", "", "hold the decoder's linear layers quantized: nf4 or fp4 (4-bit, blocksize 64, double quant) or int8 (LLM.int8), quantized on load layer by layer; bitsandbytes checkpoints load quantized without it")
}

// loadModel loads the Hugging Face directory dir (float or transformers/bitsandbytes checkpoint)
// or a Llama-family .gguf file through runtime/qmodel: with quant "" as stored (GGUF blocks
// dequantized to opts.DType), else with the linear layers quantized to it on load, one layer at a
// time. opts gives the backend and the dtype of the dense weights.
func loadModel(ctx context.Context, dir string, opts model.LoadOptions, quant string) (*model.Model, error) {
	p, err := qmodel.ParsePrecision(quant)
	if err != nil || (p != qmodel.AsStored && !p.Quantized()) {
		return nil, fmt.Errorf("%w: --quant %q: want nf4, fp4 or int8 (float dtypes go to --dtype)", errUsage, quant)
	}
	qo := qmodel.Options{Backend: opts.Backend, Precision: p, DType: opts.DType}
	if !isGGUF(dir) {
		return qmodel.Load(ctx, dir, qo)
	}
	f, err := gguf.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	arch, _ := f.Metadata().Arch()
	f.Close()
	if arch == "gemma3" {
		return nil, fmt.Errorf("%w: %s is a Gemma 3 model: it runs through `finlora experiment` (with --quant) and `finlora demo --model`, not this command (the Llama family only)", errUsage, dir)
	}
	return qmodel.LoadGGUF(ctx, dir, qo)
}

// isGGUF reports whether path names a .gguf file (else a model directory).
func isGGUF(path string) bool { return gguf.IsFileName(path) }

// needModelForQuant rejects --quant without --model (the embedded tiny model is float only).
func needModelForQuant(dir, quant string) error {
	if quant != "" && dir == "" {
		return fmt.Errorf("%w: --quant needs --model DIR or FILE.gguf", errUsage)
	}
	return nil
}
