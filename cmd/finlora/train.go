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

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/train"
)

func init() {
	register("train", "finetune a LoRA adapter on a JSONL file ({context,target} or {input_ids,labels} rows)", runTrain)
}

// runTrain is `finlora train`: it loads the model (or the embedded tiny random model), creates an
// adapter from the flags (or starts from --adapter-init, whose config wins), trains it and writes it
// to --out in PEFT's format, with the metrics log (metrics.arrow) beside it. It prints one line per
// optimizer step. An interrupt (Ctrl-C) stops at a step boundary and saves the adapter and a
// checkpoint of the last completed step.
func runTrain(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	dir := fs.String("model", "", "Hugging Face model directory (default: the embedded tiny random model)")
	dataPath := fs.String("data", "", "training rows: JSONL (or Parquet/CSV) of {context, target} or {input_ids, labels}")
	out := fs.String("out", "", "output adapter directory (PEFT adapter_config.json + adapter_model.safetensors)")
	initDir := fs.String("adapter-init", "", "start from this PEFT adapter directory (its config wins over the LoRA flags)")
	rank := fs.Int("rank", 8, "LoRA rank r")
	alpha := fs.Float64("alpha", 16, "LoRA alpha (scale alpha/r, or alpha/sqrt(r) with --rslora)")
	dropout := fs.Float64("dropout", 0, "LoRA dropout probability")
	targets := fs.String("targets", "q_proj,k_proj,v_proj", "comma-separated target modules")
	rslora := fs.Bool("rslora", false, "rank-stabilized LoRA: scale alpha/sqrt(r)")
	dora := fs.Bool("dora", false, "DoRA: weight-decomposed LoRA with a magnitude vector")
	lr := fs.Float64("lr", 1e-4, "peak learning rate")
	wd := fs.Float64("weight-decay", 0, "AdamW decoupled weight decay")
	betas := fs.String("betas", "0.9,0.999", "AdamW betas b1,b2")
	eps := fs.Float64("eps", 1e-8, "AdamW epsilon")
	sched := fs.String("scheduler", "constant", "LR schedule: constant, linear or cosine")
	warmRatio := fs.Float64("warmup-ratio", 0, "warmup as a fraction of the steps (ceil)")
	warmSteps := fs.Int("warmup-steps", 0, "warmup in steps (wins over --warmup-ratio)")
	bs := fs.Int("batch-size", 2, "rows per micro-batch")
	accum := fs.Int("grad-accum", 1, "micro-batches per optimizer step")
	steps := fs.Int("steps", 0, "optimizer steps (exclusive with --epochs)")
	epochs := fs.Int("epochs", 0, "passes over the data (default 1 when --steps is not given)")
	noShuffle := fs.Bool("no-shuffle", false, "keep the file's row order (default: shuffle each epoch)")
	seed := fs.Uint64("seed", 0, "seed of adapter init, shuffling and dropout")
	maxNorm := fs.Float64("max-grad-norm", 0, "clip the global gradient norm (0: no clipping)")
	ckptEvery := fs.Int("checkpoint-every", 0, "write OUT/checkpoints/checkpoint-N every N steps (0: only on interrupt)")
	resume := fs.Bool("resume", false, "resume from the latest checkpoint in OUT/checkpoints")
	recompute := fs.Bool("grad-checkpointing", false, "recompute each layer's activations in the backward (less memory)")
	maxLen := fs.Int("max-length", 0, "truncate tokenized prompt rows to this many tokens (0: no limit)")
	quant := quantFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	case *dataPath == "":
		return fmt.Errorf("%w: --data is required", errUsage)
	case *out == "":
		return fmt.Errorf("%w: --out is required", errUsage)
	case set["steps"] && set["epochs"]:
		return fmt.Errorf("%w: give --steps or --epochs, not both", errUsage)
	case *bs <= 0 || *accum <= 0:
		return fmt.Errorf("%w: --batch-size and --grad-accum must be positive", errUsage)
	}
	b1b2, err := parseBetas(*betas)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	schedule, err := train.ParseSchedule(*sched)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if err := needModelForQuant(*dir, *quant); err != nil {
		return err
	}
	var m *model.Model
	var tok data.Tokenizer
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "no --model: using the embedded tiny random model (untrained; a smoke test, not a finetune)")
		if m, err = model.TinyRandom(nil, 0); err != nil {
			return err
		}
		tok = model.ByteTokenizer{}
	} else {
		if m, err = loadModel(ctx, *dir, model.LoadOptions{}, *quant); err != nil {
			return err
		}
		if _, statErr := os.Stat(filepath.Join(*dir, "tokenizer.json")); statErr == nil || isGGUF(*dir) {
			t, err := modelTokenizer("train", *dir)
			if err != nil {
				m.Free()
				return err
			}
			tok = t
		}
	}
	defer m.Free()
	examples, err := train.ReadExamples(*dataPath, tok, *maxLen)
	if err != nil {
		return err
	}
	maxT := 0
	for _, e := range examples {
		maxT = max(maxT, len(e.InputIDs))
	}
	base, err := train.NewBase(m, max(maxT, 1))
	if err != nil {
		return err
	}
	defer base.Close()

	var ad *lora.Adapter
	if *initDir != "" {
		if ad, err = lora.Load(*initDir); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "adapter from %s: r=%d alpha=%g dropout=%g rslora=%v dora=%v (its config overrides the LoRA flags)\n",
			*initDir, ad.Config.R, ad.Config.LoraAlpha, ad.Config.LoraDropout, ad.Config.UseRSLoRA, ad.Config.UseDoRA)
	} else {
		cfg := lora.DefaultConfig()
		cfg.R, cfg.LoraAlpha, cfg.LoraDropout, cfg.UseRSLoRA, cfg.UseDoRA = *rank, *alpha, *dropout, *rslora, *dora
		cfg.TargetModules = lora.Targets{Names: splitList(*targets)}
		cfg.BaseModelNameOrPath = *dir
		lins, err := base.Linears(*dora)
		if err != nil {
			return err
		}
		if ad, err = lora.New(cfg, lins, *seed); err != nil {
			return err
		}
	}
	tcfg := train.Config{
		AdamW:    train.AdamWConfig{LR: *lr, Betas: b1b2, Eps: *eps, WeightDecay: *wd},
		Schedule: schedule, WarmupSteps: *warmSteps, WarmupRatio: *warmRatio,
		BatchSize: *bs, GradAccum: *accum, Steps: *steps, Epochs: *epochs, MaxGradNorm: *maxNorm,
		Shuffle: !*noShuffle, Seed: *seed, GradientCheckpointing: *recompute,
	}
	ckptDir := filepath.Join(*out, "checkpoints")
	var tr *train.Trainer
	tcfg.Progress = func(s train.StepMetrics) {
		fmt.Printf("step %d/%d loss %.7f lr %.4g grad_norm %.4g tokens/s %.0f\n", s.Step, tr.TotalSteps(), s.Loss, s.LR, s.GradNorm, s.TokensPerSec)
		if *ckptEvery > 0 && s.Step%*ckptEvery == 0 && s.Step < tr.TotalSteps() {
			if _, err := tr.SaveCheckpoint(ckptDir); err != nil {
				fmt.Fprintf(os.Stderr, "checkpoint at step %d failed: %v\n", s.Step, err)
			}
		}
	}
	if tr, err = train.NewTrainer(base, ad, examples, tcfg); err != nil {
		return err
	}
	defer tr.Close()
	if *resume {
		latest, err := train.LatestCheckpoint(ckptDir)
		if err != nil {
			return err
		}
		if latest == "" {
			return fmt.Errorf("--resume: no checkpoint in %s", ckptDir)
		}
		if err := tr.Resume(latest); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "resumed from %s at step %d\n", latest, tr.StepsDone())
	}
	fmt.Fprintf(os.Stderr, "training %d adapter parameters (%d modules) on %d rows: %d steps, batch %d x %d accumulation, on %s\n",
		ad.NumParams(), len(ad.Modules), len(examples), tr.TotalSteps(), *bs, *accum, m.Backend.Name())
	runErr := tr.Run(ctx)
	if err := ad.Save(*out); err != nil {
		return err
	}
	if err := train.WriteMetrics(filepath.Join(*out, "metrics.arrow"), tr.Metrics()); err != nil {
		return err
	}
	if runErr != nil {
		if ctx.Err() != nil {
			ck, err := tr.SaveCheckpoint(ckptDir)
			if err != nil {
				return err
			}
			return fmt.Errorf("interrupted after step %d: adapter saved to %s, checkpoint %s (resume with --resume)", tr.StepsDone(), *out, ck)
		}
		return runErr
	}
	fmt.Fprintf(os.Stderr, "adapter written to %s (metrics: %s)\n", *out, filepath.Join(*out, "metrics.arrow"))
	fmt.Fprint(os.Stderr, tr.Memory()) // by component: quantized/dense linears, adapter, optimizer, activation peak
	return nil
}

func parseBetas(s string) ([2]float64, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return [2]float64{}, fmt.Errorf("--betas %q: want b1,b2", s)
	}
	var out [2]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v >= 1 {
			return [2]float64{}, fmt.Errorf("--betas %q: each beta must be a number in [0, 1)", s)
		}
		out[i] = v
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
