package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/finlora/finlora/lora"
	"github.com/finlora/finlora/runtime/data"
	"github.com/finlora/finlora/runtime/eval"
	"github.com/finlora/finlora/runtime/model"
	_ "github.com/finlora/finlora/runtime/tensor/cpu" // registers the CPU backend
	"github.com/finlora/finlora/runtime/tokenizer"
)

func init() {
	register("eval", "evaluate a model (and adapter) on a FinLoRA task with FinLoRA's scoring", runEval)
}

// runEval: finlora eval [--model DIR] [--adapter DIR] --task T --data FILE.jsonl [--limit N]
// [--batch-size B] [--max-new-tokens N] [--max-prompt-tokens N] [--out FILE]. Prints the task's
// scores (accuracy and weighted F1, or exact match and token F1 for the tasks FinLoRA scores with
// BERTScore) to stdout, progress to stderr. Without --model it uses the embedded tiny random model.
func runEval(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	dir := fs.String("model", "", "Hugging Face model directory (config.json, safetensors, tokenizer.json); default: the embedded tiny random model")
	adapterDir := fs.String("adapter", "", "PEFT adapter directory (adapter_config.json + adapter_model.safetensors) to attach")
	taskName := fs.String("task", "", "task: "+strings.Join(eval.TaskNames(), "|"))
	dataPath := fs.String("data", "", "the task's JSONL file of {context, target} rows (or the directory holding <task>_test.jsonl)")
	limit := fs.Int("limit", 0, "evaluate only the first N rows (0: all)")
	batch := fs.Int("batch-size", 8, "prompts generated together")
	maxNew := fs.Int("max-new-tokens", 0, "override the task's max new tokens (FinLoRA: 10 for classification, 50 otherwise)")
	maxPrompt := fs.Int("max-prompt-tokens", -1, "keep only the last N tokens of longer prompts (0: never; default: the model's context minus the new tokens)")
	out := fs.String("out", "", "write the per-question results (Arrow table) to this .parquet or .csv file")
	seed := fs.Uint64("seed", 0, "seed of the embedded tiny random model")
	quant := quantFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *taskName == "" || *dataPath == "" {
		return fmt.Errorf("%w: eval needs --task and --data", errUsage)
	}
	if err := needModelForQuant(*dir, *quant); err != nil {
		return err
	}
	task, err := eval.LookupTask(*taskName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *batch <= 0 || *limit < 0 || *maxNew < 0 {
		return fmt.Errorf("%w: --batch-size must be positive, --limit and --max-new-tokens not negative", errUsage)
	}
	if *out != "" && !strings.HasSuffix(*out, ".parquet") && !strings.HasSuffix(*out, ".csv") {
		return fmt.Errorf("%w: --out must end in .parquet or .csv", errUsage)
	}
	if st, err := os.Stat(*dataPath); err == nil && st.IsDir() {
		*dataPath = task.Path(*dataPath)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	ds, err := data.ReadJSONL(*dataPath, data.ReadOptions{Limit: *limit})
	if err != nil {
		return err
	}
	defer ds.Release()
	if ds.Kind() != data.KindPrompt {
		return fmt.Errorf("%s: want {context, target} rows, have columns %v", *dataPath, ds.ColumnNames())
	}
	// The label set is the task's: the distinct targets of the whole file, not only of the rows
	// kept by --limit.
	labels, err := taskLabels(*dataPath, task, *limit)
	if err != nil {
		return err
	}

	m, tok, name, err := evalModel(ctx, *dir, *seed, *quant)
	if err != nil {
		return err
	}
	defer m.Free()
	if *adapterDir != "" {
		a, err := lora.Load(*adapterDir)
		if err != nil {
			return err
		}
		detach, err := lora.Attach(m, a)
		if err != nil {
			return fmt.Errorf("attach adapter %s: %w", *adapterDir, err)
		}
		defer detach()
		name += " + " + filepath.Base(filepath.Clean(*adapterDir))
	}
	newTokens := task.MaxNewTokens
	if *maxNew > 0 {
		newTokens = *maxNew
	}
	gen := &eval.ModelGenerator{Model: m, Tokenizer: tok, MaxPromptTokens: *maxPrompt}
	if *maxPrompt < 0 {
		gen.MaxPromptTokens = max(m.Config.MaxPositionEmbeddings-newTokens, 1)
	}
	fmt.Fprintf(os.Stderr, "eval %s: %d questions from %s on %s (%s), batch %d, %d new tokens max\n",
		task.Name, ds.NumRows(), *dataPath, name, m.Backend.Name(), *batch, newTokens)
	res, err := eval.Evaluate(ctx, gen, task, ds, eval.Options{
		Model: name, BatchSize: *batch, MaxNewTokens: newTokens, Labels: labels,
		Progress: func(done, total int) { fmt.Fprintf(os.Stderr, "\r%d/%d", done, total) },
	})
	fmt.Fprintln(os.Stderr)
	if res == nil {
		return err
	}
	defer res.Release()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	printSummary(res.Summary, gen.Truncated(), gen.MaxPromptTokens)
	if *out != "" {
		v := res.Dataset()
		defer v.Release()
		if strings.HasSuffix(*out, ".csv") {
			err = errors.Join(err, v.WriteCSV(*out))
		} else {
			err = errors.Join(err, v.WriteParquet(*out))
		}
		fmt.Fprintf(os.Stderr, "per-question results written to %s\n", *out)
	}
	return err
}

// taskLabels returns the label set from all rows of the file (nil when no --limit: Evaluate then
// takes them from the rows it has, which are all of them).
func taskLabels(path string, task eval.Task, limit int) ([]string, error) {
	if limit <= 0 || task.Scoring == eval.FreeText {
		return nil, nil
	}
	all, err := data.ReadJSONL(path, data.ReadOptions{Columns: []string{data.ColTarget}})
	if err != nil {
		return nil, err
	}
	defer all.Release()
	targets, err := all.Strings(data.ColTarget)
	if err != nil {
		return nil, err
	}
	return eval.Labels(targets), nil
}

// evalModel loads the model of dir with its tokenizer, or the embedded tiny random model.
func evalModel(ctx context.Context, dir string, seed uint64, quant string) (*model.Model, tokenizer.Tokenizer, string, error) {
	if dir == "" {
		fmt.Fprintln(os.Stderr, "no --model: using the embedded tiny random model (untrained: its answers are noise, so expect scores near zero)")
		m, err := model.TinyRandom(nil, seed)
		if err != nil {
			return nil, nil, "", err
		}
		return m, model.ByteTokenizer{}, fmt.Sprintf("tiny-random(seed=%d)", seed), nil
	}
	tok, err := modelTokenizer("eval", dir)
	if err != nil {
		return nil, nil, "", err
	}
	m, err := loadModel(ctx, dir, model.LoadOptions{}, quant)
	if err != nil {
		return nil, nil, "", err
	}
	name := filepath.Base(filepath.Clean(dir))
	if quant != "" {
		name += " (" + quant + ")"
	}
	return m, tok, name, nil
}

func printSummary(s eval.Summary, truncated, maxPrompt int) {
	fmt.Printf("task              %s\nmodel             %s\nquestions         %d\n", s.Task, s.Model, s.N)
	for _, m := range s.Metrics {
		fmt.Printf("%-17s %.4f\n", m.Name, m.Value)
	}
	fmt.Printf("time              %.2f s (%.1f ms/question, batch %d, max %d new tokens)\n",
		s.Total.Seconds(), float64(s.PerQuestion.Microseconds())/1000, s.BatchSize, s.MaxNewTokens)
	if s.Note != "" {
		fmt.Printf("note              %s\n", s.Note)
	}
	if truncated > 0 {
		fmt.Printf("note              %d prompts were cut to their last %d tokens (the model's context)\n", truncated, maxPrompt)
	}
}
