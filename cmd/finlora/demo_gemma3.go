package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime"
	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/eval"
	"github.com/finlora/finlora/runtime/experiment"
	"github.com/finlora/finlora/runtime/gguf"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/train"
)

// demoGemma3Path returns modelFlag when it names a Gemma 3 GGUF file (e.g. the installed
// $FINLORA_HOME/models/gemma3-270m/model.gguf), else "". The runtime cell API (runtime.LoadedModel)
// holds Llama-family models only, so a Gemma 3 demo runs the same steps through
// runtime/experiment's Backbone instead (runDemoGemma3). The default model of the demo stays
// runtime.DefaultModel's choice (measured on FPB: SmolLM2-135M learns the task in the demo's 16
// steps, Gemma 3 270M mostly learns the answer format: see docs/results-finlora-gemma3.md).
func demoGemma3Path(modelFlag string) string {
	p := modelFlag
	if p == "" {
		return ""
	}
	if !isGGUF(p) {
		return ""
	}
	f, err := gguf.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	if arch, err := f.Metadata().Arch(); err != nil || arch != "gemma3" {
		return ""
	}
	return p
}

// runDemoGemma3 is runDemo on a Gemma 3 GGUF file (bf16 weights): the FPB sample split in two
// halves with data.SplitIndices(n, 0.5, seed) (the split runtime.Dataset.Split makes), the base
// evaluated on the first d.limit held-out rows, a LoRA adapter trained on the other half, evaluated
// on the same rows, one comparison table, the adapter saved in PEFT format with its loss curve.
func runDemoGemma3(ctx context.Context, path, dir, out string, d demoDefaults, seed uint64, start time.Time) error {
	bb, err := experiment.LoadBackbone(ctx, path, nil, tensor.BF16)
	if err != nil {
		return err
	}
	defer bb.Close()
	fmt.Printf("model: pretrained model %s\n       %s (loaded in %s)\n", path, bb, bb.LoadTime.Round(time.Millisecond))
	rows, err := experiment.ReadRows(filepath.Join(dir, "fpb.jsonl"), "fpb")
	if err != nil {
		return err
	}
	trainIdx, testIdx, err := data.SplitIndices(len(rows), 0.5, seed)
	if err != nil {
		return err
	}
	evalN := min(d.limit, len(testIdx))
	var all, prompts, targets []string
	for _, r := range rows {
		all = append(all, r.Target)
	}
	for _, i := range testIdx[:evalN] {
		prompts, targets = append(prompts, rows[i].Context), append(targets, rows[i].Target)
	}
	fmt.Printf("data: %d FinLoRA FPB rows from %s, split with seed %d into %d training rows and %d held-out rows (the first %d are evaluated)\n",
		len(rows), dir, seed, len(trainIdx), len(testIdx), evalN)
	task, _ := eval.LookupTask("fpb")
	labels := eval.Labels(all)
	evaluate := func(a *lora.Adapter, name string) (eval.Summary, error) {
		gen, detach, err := bb.Generator(a, 0)
		if err != nil {
			return eval.Summary{}, err
		}
		defer detach()
		res, err := eval.EvaluatePrompts(ctx, gen, task, prompts, targets, eval.Options{Model: name, Labels: labels})
		if err != nil {
			return eval.Summary{}, err
		}
		defer res.Release()
		fmt.Println(res.Summary)
		return res.Summary, nil
	}
	baseSum, err := evaluate(nil, "base")
	if err != nil {
		return err
	}
	base, err := bb.NewTrainBase(512)
	if err != nil {
		return err
	}
	defer base.Close()
	cfg := lora.DefaultConfig()
	cfg.R, cfg.LoraAlpha = d.rank, d.alpha
	cfg.TargetModules = lora.Targets{Names: d.targets}
	cfg.BaseModelNameOrPath = path
	lins, err := base.Linears(false)
	if err != nil {
		return err
	}
	a, err := lora.New(cfg, lins, seed)
	if err != nil {
		return err
	}
	fmt.Printf("adapter: LoRA r=%d alpha=%g on %s, %d parameters\n", d.rank, d.alpha, strings.Join(d.targets, ","), a.NumParams())
	tok := bb.Tokenizer
	var ex []train.Example
	for _, i := range trainIdx {
		ids, lab := data.EncodeExample(tok, rows[i].Context, rows[i].Target, true, tok.EOS()[0], 512)
		ex = append(ex, train.Example{InputIDs: ids, Labels: lab})
	}
	var history []train.StepMetrics
	tr, err := train.NewTrainer(base, a, ex, train.Config{AdamW: train.AdamWConfig{LR: d.lr, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8},
		Steps: d.steps, BatchSize: d.batch, Shuffle: true, Seed: seed, MaxGradNorm: 1,
		Progress: func(m train.StepMetrics) {
			history = append(history, m)
			fmt.Printf("step %d loss %.4f (%.1f s)\n", m.Step, m.Loss, m.Duration.Seconds())
		}})
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := tr.Run(ctx); err != nil {
		if len(history) == 0 {
			return err
		}
		fmt.Printf("interrupted (%v): evaluating and saving the adapter as it is after step %d\n", err, len(history))
		ctx = context.Background()
	}
	tunedSum, err := evaluate(a, "lora")
	if err != nil {
		return err
	}
	cmp, err := eval.Compare([]eval.Summary{baseSum, tunedSum}, nil)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s\n", cmp.String())
	count := map[string]int{}
	maj := ""
	for _, t := range targets {
		if count[t]++; count[t] > count[maj] {
			maj = t
		}
	}
	fmt.Printf("majority baseline: always answering %q scores accuracy %.4f on these %d rows.\n", maj, float64(count[maj])/float64(len(targets)), len(targets))
	fmt.Println("This is Gemma 3 270M, a small pretrained base model; its base accuracy is its zero-shot ability (it rarely answers " +
		"with a label: it continues the text). A few training steps mostly teach the answer format and the label distribution; " +
		"compare with the majority-label rate. `finlora experiment` runs the five-task experiment.")
	if err := a.Save(out); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "loss.svg"), []byte(runtime.LossCurveSVG("lora", history)), 0o644); err != nil {
		return fmt.Errorf("write loss curve: %w", err)
	}
	if err := train.WriteMetrics(filepath.Join(out, "metrics.arrow"), history); err != nil {
		return err
	}
	fmt.Printf("\nadapter saved to %s (PEFT adapter_config.json + adapter_model.safetensors, loss.svg, metrics.arrow); demo took %s\n",
		out, time.Since(start).Round(time.Second))
	return nil
}
