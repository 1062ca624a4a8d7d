package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/npy"
	"github.com/finlora/finlora/runtime/qmodel"
	"github.com/finlora/finlora/runtime/tensor"
	_ "github.com/finlora/finlora/runtime/tensor/cpu" // registers the "cpu" backend
)

func init() {
	register("logits", "write the logits of one forward pass as .npy (float32 [len(ids), vocab])", runLogits)
}

// runLogits: finlora logits --model DIR --ids 1,17,250 --out FILE.npy [--dtype f32|bf16|f16]
func runLogits(args []string) error {
	fs := flag.NewFlagSet("logits", flag.ContinueOnError)
	dir := fs.String("model", "", "Hugging Face model directory (config.json + safetensors)")
	idsFlag := fs.String("ids", "", "comma-separated token ids, e.g. 1,17,250")
	out := fs.String("out", "", "output .npy file (float32 [len(ids), vocab])")
	dtype := fs.String("dtype", "", "convert weights to f32, bf16 or f16 (default: as stored)")
	quant := quantFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *idsFlag == "" || *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: logits needs --model DIR --ids 1,17,250 --out FILE.npy", errUsage)
	}
	var ids []int32
	for _, s := range strings.Split(*idsFlag, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil {
			return fmt.Errorf("%w: --ids: %q is not an integer", errUsage, s)
		}
		ids = append(ids, int32(v))
	}
	opts, err := loadOptions(*dtype)
	if err != nil {
		return err
	}
	ctx := context.Background()
	m, err := loadModel(ctx, *dir, opts, *quant)
	if err != nil {
		return err
	}
	defer m.Free()
	for _, id := range ids {
		if id < 0 || int(id) >= m.Config.VocabSize {
			return fmt.Errorf("%w: --ids: id %d outside the vocabulary of %d", errUsage, id, m.Config.VocabSize)
		}
	}
	lg, err := m.Forward(ctx, model.Input{IDs: ids, B: 1}, nil)
	if err != nil {
		return err
	}
	defer lg.Free()
	host, err := m.Backend.ToFloat32(lg)
	if err != nil {
		return err
	}
	if err := npy.WriteFile(*out, []int{len(ids), m.Config.VocabSize}, host); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: float32 [%d %d] (%s weights on %s)\n", *out, len(ids), m.Config.VocabSize, qmodel.PrecisionOf(m), m.Backend.Name())
	return nil
}

// loadOptions maps a --dtype flag to model.LoadOptions on the default backend ($FINLORA_DEVICE).
func loadOptions(dtype string) (model.LoadOptions, error) {
	var opts model.LoadOptions
	if dtype != "" {
		dt, err := tensor.ParseDType(dtype)
		if err != nil || !dt.IsFloat() {
			return opts, fmt.Errorf("%w: --dtype %q: want f32, bf16 or f16", errUsage, dtype)
		}
		opts.DType = dt
	}
	b, err := tensor.Default()
	if err != nil {
		return opts, err
	}
	opts.Backend = b
	return opts, nil
}
