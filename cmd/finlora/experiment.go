package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/finlora/finlora/runtime/experiment"
)

func init() {
	register("experiment", "the miniature FinLoRA experiment: base vs LoRA r=4/8 on FPB, FiQA, TFNS, NWGI and NER with a real model", runExperiment)
}

// runExperiment is `finlora experiment`: runtime/experiment.Run with flags, printing progress,
// the split rule, the result table (text and Markdown) and writing results.md into -out.
func runExperiment(args []string) error {
	fs := flag.NewFlagSet("experiment", flag.ContinueOnError)
	var o experiment.Options
	fs.StringVar(&o.Model, "model", "", "model: .gguf file or model directory (default: the installed Gemma 3 270M)")
	fs.StringVar(&o.Device, "device", "", "backend: cpu, cuda, cuda:N (default: $FINLORA_DEVICE, the GPU if any, else the CPU)")
	fs.StringVar(&o.DType, "dtype", "bf16", "dense weight dtype: bf16, f16 or f32")
	fs.StringVar(&o.Quant, "quant", "", "hold the base's projections quantized (QLoRA): nf4, fp4 or int8, quantized on load (default: dense)")
	fs.StringVar(&o.DataDir, "data", "", "FinLoRA test folder (default: $FINLORA_DATA_DIR, else ../shared/data/finlora/test found upwards)")
	tasks := fs.String("tasks", strings.Join(experiment.DefaultTasks, ","), "tasks to evaluate")
	ranks := fs.String("ranks", "4,8", "LoRA ranks, one adapter each")
	fs.IntVar(&o.EvalLimit, "eval-limit", 200, "evaluated rows per task")
	fs.IntVar(&o.TrainSentiment, "train-sentiment", 200, "sentiment training rows (TFNS+NWGI, never evaluated)")
	fs.IntVar(&o.TrainNER, "train-ner", 100, "NER training rows (never evaluated)")
	fs.IntVar(&o.Steps, "steps", 0, "optimizer steps per adapter (0: one epoch)")
	fs.IntVar(&o.BatchSize, "batch-size", 8, "training rows per step")
	fs.IntVar(&o.EvalBatch, "eval-batch", 8, "prompts generated together")
	fs.Float64Var(&o.LR, "lr", 1e-3, "learning rate (linear decay to 0, no warmup)")
	fs.Float64Var(&o.Alpha, "alpha", 16, "lora_alpha")
	targets := fs.String("targets", "q_proj,k_proj,v_proj", "target modules")
	fs.IntVar(&o.MaxLength, "max-length", 256, "training rows truncated to this many tokens")
	fs.Uint64Var(&o.Seed, "seed", 42, "seed of the split, adapter init, shuffling and dropout")
	out := fs.String("out", "", "directory for the adapters and results.md (default: none saved)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	o.Tasks = splitList(*tasks)
	o.Targets = splitList(*targets)
	for _, s := range splitList(*ranks) {
		r, err := strconv.Atoi(s)
		if err != nil || r <= 0 {
			return fmt.Errorf("%w: -ranks: %q is not a positive integer", errUsage, s)
		}
		o.Ranks = append(o.Ranks, r)
	}
	if o.EvalLimit <= 0 || o.TrainSentiment < 0 || o.TrainNER < 0 || o.Steps < 0 || o.BatchSize <= 0 || o.LR <= 0 {
		return fmt.Errorf("%w: -eval-limit, -batch-size and -lr must be positive, -train-*, -steps not negative", errUsage)
	}
	if o.TrainSentiment+o.TrainNER == 0 {
		return fmt.Errorf("%w: no training rows (-train-sentiment and -train-ner are 0)", errUsage)
	}
	for _, n := range []*int{&o.TrainSentiment, &o.TrainNER} {
		if *n == 0 { // experiment.Options reads 0 as "the default"; the flag means none
			*n = -1
		}
	}
	o.OutDir = *out
	o.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	e, err := experiment.Run(ctx, o)
	if e != nil {
		defer e.Close()
		fmt.Println()
		fmt.Print(e.Table().String())
		fmt.Println()
		fmt.Print(e.Table().Markdown())
		fmt.Printf("\nmodel: %s\ncommand: %s\ntotal %s (evaluation %s)\n", e.Backbone, e.Options.Command(),
			time.Since(start).Round(time.Second), e.EvalTime.Round(time.Second))
		if *out != "" {
			note := fmt.Sprintf("# FinLoRA experiment\n\nmodel: %s\n\ncommand: `%s`\n\nsplit: %s\n\n%s\ntotal %s (evaluation %s)\n",
				e.Backbone, e.Options.Command(), e.Splits.Rule, e.Table().Markdown(), time.Since(start).Round(time.Second), e.EvalTime.Round(time.Second))
			if werr := os.MkdirAll(*out, 0o755); werr == nil {
				werr = os.WriteFile(filepath.Join(*out, "results.md"), []byte(note), 0o644)
				if werr != nil && err == nil {
					err = werr
				}
			}
		}
	}
	return err
}
