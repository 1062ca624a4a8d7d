package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/finlora/finlora/quant"
)

func init() {
	register("quantize", "quantize a float checkpoint to bitsandbytes NF4/FP4/int8 (transformers layout)", runQuantize)
}

// runQuantize: finlora quantize --model DIR --format nf4|fp4|int8 [--double-quant] [--blocksize 64]
// [--compute-dtype bfloat16] [--skip-modules a,b] --out DIR
func runQuantize(args []string) error {
	fs := flag.NewFlagSet("quantize", flag.ContinueOnError)
	dir := fs.String("model", "", "Hugging Face model directory with float weights (config.json + safetensors)")
	format := fs.String("format", "", "nf4, fp4 or int8")
	dq := fs.Bool("double-quant", false, "4-bit: quantize the absmax too (bnb_4bit_use_double_quant)")
	bs := fs.Int("blocksize", quant.DefaultBlockSize, "4-bit block size: a power of two from 64 to 4096 (transformers loads any; it creates only 64)")
	compute := fs.String("compute-dtype", "", "recorded bnb_4bit_compute_dtype (default bfloat16 for 4-bit, float32 for int8)")
	skip := fs.String("skip-modules", "", "comma-separated module names to leave in float (llm_int8_skip_modules)")
	out := fs.String("out", "", "output directory (created)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *format == "" || *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: quantize needs --model DIR --format nf4|fp4|int8 --out DIR", errUsage)
	}
	c := quant.Config{Format: quant.Format(*format), DoubleQuant: *dq, ComputeDType: *compute}
	if c.Format != quant.FormatInt8 {
		c.BlockSize = *bs
	} else if *bs != quant.DefaultBlockSize {
		return fmt.Errorf("%w: --blocksize applies to nf4 and fp4 only", errUsage)
	}
	if *skip != "" {
		c.SkipModules = strings.Split(*skip, ",")
	}
	if err := c.Check(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if abs1, _ := filepath.Abs(*dir); abs1 != "" {
		if abs2, _ := filepath.Abs(*out); abs1 == abs2 {
			return fmt.Errorf("%w: --out must differ from --model", errUsage)
		}
	}
	start := time.Now()
	if err := quant.QuantizeCheckpoint(context.Background(), *dir, *out, c); err != nil {
		return err
	}
	before, after := dirWeightBytes(*dir), dirWeightBytes(*out)
	fmt.Fprintf(os.Stderr, "wrote %s: %s, weights %.1f MB -> %.1f MB in %.2fs\n", *out, *format,
		float64(before)/1e6, float64(after)/1e6, time.Since(start).Seconds())
	return nil
}

// dirWeightBytes sums the sizes of the .safetensors files in dir.
func dirWeightBytes(dir string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil {
			n += st.Size()
		}
	}
	return n
}
