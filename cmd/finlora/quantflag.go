package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/qmodel"
)

// quantFlag registers --quant on fs (logits, train, eval, generate).
func quantFlag(fs *flag.FlagSet) *string {
	return fs.String("quant", "", "hold the decoder's linear layers quantized: nf4 or fp4 (4-bit, blocksize 64, double quant) or int8 (LLM.int8), quantized on load layer by layer; bitsandbytes checkpoints load quantized without it")
}

// loadModel loads the Hugging Face directory dir (float or transformers/bitsandbytes checkpoint)
// through runtime/qmodel: with quant "" as stored, else with the linear layers quantized to it.
// opts gives the backend and the dtype of the dense weights.
func loadModel(ctx context.Context, dir string, opts model.LoadOptions, quant string) (*model.Model, error) {
	p, err := qmodel.ParsePrecision(quant)
	if err != nil || (p != qmodel.AsStored && !p.Quantized()) {
		return nil, fmt.Errorf("%w: --quant %q: want nf4, fp4 or int8 (float dtypes go to --dtype)", errUsage, quant)
	}
	return qmodel.Load(ctx, dir, qmodel.Options{Backend: opts.Backend, Precision: p, DType: opts.DType})
}

// needModelForQuant rejects --quant without --model (the embedded tiny model is float only).
func needModelForQuant(dir, quant string) error {
	if quant != "" && dir == "" {
		return fmt.Errorf("%w: --quant needs --model DIR", errUsage)
	}
	return nil
}
