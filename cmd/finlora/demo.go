package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/finlora/finlora/runtime"
	"github.com/finlora/finlora/runtime/train"
)

func init() {
	register("demo", "the main job: evaluate a model on FinLoRA sentiment rows, finetune a LoRA adapter, evaluate again, compare, save", runDemo)
}

// demoDataRel is where the repository keeps its FinLoRA sample (see data/finlora-sample/README.md).
const demoDataRel = "data/finlora-sample"

// demoDefaults are the hyperparameters of a demo run for one kind of model: the tiny random
// model learns from nothing, so it gets more steps, a larger rate and every linear layer; a
// pretrained model gets FinLoRA-like settings on the attention projections.
type demoDefaults struct {
	steps, limit, batch, rank int
	alpha, lr                 float64
	targets                   []string
}

var (
	demoTiny       = demoDefaults{steps: 60, limit: 60, batch: 4, rank: 8, alpha: 16, lr: 1e-2, targets: train.LinearNames}
	demoPretrained = demoDefaults{steps: 16, limit: 40, batch: 4, rank: 8, alpha: 16, lr: 1e-3, targets: []string{"q_proj", "k_proj", "v_proj", "o_proj"}}
)

// runDemo is `finlora demo`: the README's main job, on the embedded default model (the installed
// pretrained model when there is one, else the tiny random model) unless --model says otherwise.
// It loads FinLoRA's FPB sentiment rows from the repository's sample, splits them (seeded) into
// training rows and held-out evaluation rows that share nothing, evaluates the base model, trains
// a LoRA adapter, evaluates it on the same held-out rows, prints one comparison table and what
// its numbers mean, and saves the adapter (PEFT format) with its loss curve.
func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	modelPath := fs.String("model", "", "model: a Hugging Face directory, a .gguf file or tiny-random (default: $FINLORA_MODEL, else an installed model, else tiny-random)")
	steps := fs.Int("steps", 0, fmt.Sprintf("optimizer steps (default %d on the tiny model, %d on a pretrained one)", demoTiny.steps, demoPretrained.steps))
	limit := fs.Int("limit", 0, fmt.Sprintf("held-out rows to evaluate (default %d on the tiny model, %d on a pretrained one)", demoTiny.limit, demoPretrained.limit))
	out := fs.String("out", "", "directory for the adapter (default $FINLORA_HOME/demo-adapter)")
	dataDir := fs.String("data", "", "folder with fpb.jsonl (default: "+demoDataRel+" of the repository, found from the working directory)")
	lr := fs.Float64("lr", 0, "learning rate (default 1e-2 on the tiny model, 1e-3 on a pretrained one)")
	seed := fs.Uint64("seed", 42, "seed of the split, the adapter init and the shuffling")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *steps < 0 || *limit < 0 || *lr < 0 {
		return fmt.Errorf("%w: --steps, --limit and --lr must not be negative", errUsage)
	}
	dir := *dataDir
	if dir == "" {
		var err error
		if dir, err = findDemoData(); err != nil {
			return err
		}
	}
	if *out == "" {
		*out = filepath.Join(runtime.ModelHome(), "demo-adapter")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()

	// 1. The model. A Gemma 3 GGUF file given with --model runs through runtime/experiment, as the
	// runtime cell API holds Llama-family models only (demo_gemma3.go).
	if p := demoGemma3Path(*modelPath); p != "" {
		d := demoPretrained
		if *steps > 0 {
			d.steps = *steps
		}
		if *limit > 0 {
			d.limit = *limit
		}
		if *lr > 0 {
			d.lr = *lr
		}
		return runDemoGemma3(ctx, p, dir, *out, d, *seed, start)
	}
	var lm *runtime.LoadedModel
	var err error
	if *modelPath == "" {
		var choice runtime.ModelChoice
		lm, choice, err = runtime.DefaultModel(ctx)
		if err != nil {
			return err
		}
		for _, s := range choice.Skipped {
			fmt.Printf("(skipped %s)\n", s)
			if strings.Contains(s, "gemma3") {
				fmt.Println("(Gemma 3 runs with --model PATH.gguf, or in `finlora experiment`)")
			}
		}
	} else if lm, err = runtime.OpenModelFile(ctx, *modelPath, runtime.ModelOptions{}); err != nil {
		return err
	}
	lm.Name = "base"
	if err := runtime.Put(lm.Name, lm); err != nil {
		return err
	}
	defer runtime.Default().FreeAll()
	d := demoPretrained
	which := "pretrained model " + lm.Path
	if runtime.IsRandomModel(lm) {
		d = demoTiny
		which = "embedded tiny random model (untrained; install a real one with scripts/install-model.sh)"
	}
	if *steps > 0 {
		d.steps = *steps
	}
	if *limit > 0 {
		d.limit = *limit
	}
	if *lr > 0 {
		d.lr = *lr
	}
	fmt.Printf("model: %s\n       %s (loaded in %s)\n", which, lm.String(), lm.LoadTime.Round(time.Millisecond))

	// 2. The data: FPB rows, split into training and held-out rows that share nothing.
	ds, err := runtime.LoadDataset(ctx, "fpb", filepath.Join(dir, "fpb.jsonl"), runtime.DatasetOptions{})
	if err != nil {
		return err
	}
	trainDS, testDS, err := ds.Split(0.5, *seed)
	if err != nil {
		return err
	}
	evalN := min(d.limit, testDS.NumRows())
	fmt.Printf("data: %d FinLoRA FPB rows from %s, split with seed %d into %d training rows and %d held-out rows (the first %d are evaluated)\n",
		ds.NumRows(), dir, *seed, trainDS.NumRows(), testDS.NumRows(), evalN)

	// 3. Base model, 4. adapter training, 5. adapter evaluation.
	eo := runtime.EvalOptions{Limit: evalN}
	base, err := runtime.Evaluate(ctx, lm, nil, "fpb", testDS, eo)
	if err != nil {
		return err
	}
	fmt.Println(base)
	ad, err := runtime.NewAdapter(lm, "lora", runtime.AdapterOptions{Rank: d.rank, Alpha: d.alpha, Targets: d.targets, Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Printf("adapter: %s\n", ad)
	res, err := runtime.Finetune(ctx, ad, trainDS, runtime.FinetuneOptions{Steps: d.steps, BatchSize: d.batch, LR: d.lr, Seed: *seed})
	if res != nil {
		fmt.Println(res)
	}
	if err != nil {
		if res == nil || !res.Interrupted || res.StepsDone == 0 {
			return err
		}
		fmt.Println("interrupted: evaluating and saving the adapter as it is after its last completed step")
		ctx = context.Background()
	}
	tuned, err := runtime.Evaluate(ctx, lm, ad, "fpb", testDS, eo)
	if err != nil {
		return err
	}
	fmt.Println(tuned)

	// 6. One table, and what it means.
	cmp, err := runtime.Compare(base, tuned)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s\n", cmp.Table.String())
	fmt.Printf("majority baseline: always answering %q scores accuracy %.4f on these %d rows.\n", tuned.Majority, tuned.MajorityShare, tuned.N())
	fmt.Println(runtime.AboutAccuracy(lm, len(tuned.Labels)))

	// 7. Save.
	if err := ad.Save(*out); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "loss.svg"), []byte(runtime.LossCurveSVG(ad.Name, ad.History)), 0o644); err != nil {
		return fmt.Errorf("write loss curve: %w", err)
	}
	if err := train.WriteMetrics(filepath.Join(*out, "metrics.arrow"), ad.History); err != nil {
		return err
	}
	fmt.Printf("\nadapter saved to %s (PEFT adapter_config.json + adapter_model.safetensors, loss.svg, metrics.arrow); demo took %s\n",
		*out, time.Since(start).Round(time.Second))
	return nil
}

// findDemoData looks for data/finlora-sample/fpb.jsonl in the working directory and its parents
// (so `go run ./cmd/finlora demo` works from anywhere inside the repository), then beside the
// executable.
func findDemoData() (string, error) {
	var tried []string
	try := func(start string) string {
		for d := start; ; d = filepath.Dir(d) {
			p := filepath.Join(d, demoDataRel)
			if _, err := os.Stat(filepath.Join(p, "fpb.jsonl")); err == nil {
				return p
			}
			tried = append(tried, p)
			if filepath.Dir(d) == d {
				return ""
			}
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if p := try(wd); p != "" {
			return p, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if p := try(filepath.Dir(exe)); p != "" {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s/fpb.jsonl found (looked in %s); run from the repository or pass --data", demoDataRel, strings.Join(tried[:min(len(tried), 3)], ", "))
}
