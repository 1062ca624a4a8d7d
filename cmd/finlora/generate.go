package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/finlora/finlora/runtime/generate"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tokenizer"
)

func init() {
	register("generate", "continue a prompt with a model (greedy or sampled)", runGenerate)
}

// runGenerate: finlora generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T]
// [--seed S] [--top-k K] [--top-p P] [--dtype D]. --model may also name a .gguf file. The
// continuation goes to stdout, statistics to stderr. Without --model it uses the embedded tiny random model (which outputs noise) and says so.
func runGenerate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	dir := fs.String("model", "", "Hugging Face model directory with config.json, safetensors and tokenizer.json, or a llama-architecture .gguf file (default: the embedded tiny random model)")
	prompt := fs.String("prompt", "", "the text to continue")
	maxNew := fs.Int("max-new-tokens", 64, "tokens to generate at most")
	temp := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
	seed := fs.Uint64("seed", 0, "sampling seed")
	topK := fs.Int("top-k", 0, "sample among the K most likely tokens (0: all)")
	topP := fs.Float64("top-p", 0, "nucleus sampling threshold (0: off)")
	dtype := fs.String("dtype", "", "convert weights to f32, bf16 or f16 (default: as stored)")
	quant := quantFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *prompt == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: generate needs --prompt TEXT", errUsage)
	}
	if *maxNew <= 0 {
		return fmt.Errorf("%w: --max-new-tokens must be positive", errUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts, err := loadOptions(*dtype)
	if err != nil {
		return err
	}
	if err := needModelForQuant(*dir, *quant); err != nil {
		return err
	}
	var m *model.Model
	var tok tokenizer.Tokenizer
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "no --model: using the embedded tiny random model (untrained: its output is noise)")
		if m, err = model.TinyRandom(opts.Backend, 0); err != nil {
			return err
		}
		tok = model.ByteTokenizer{}
	} else {
		if tok, err = modelTokenizer("generate", *dir); err != nil {
			return err
		}
		if m, err = loadModel(ctx, *dir, opts, *quant); err != nil {
			return err
		}
	}
	defer m.Free()
	ids := tok.Encode(*prompt, true)
	if len(ids) == 0 {
		return fmt.Errorf("the prompt encodes to no tokens")
	}
	eos, pad := generate.SpecialIDs(m.Config, tok)
	start := time.Now()
	res, err := generate.Generate(ctx, m, [][]int{ids}, generate.Options{
		MaxNewTokens: *maxNew, Temperature: *temp, TopK: *topK, TopP: *topP, Seed: *seed, EOS: eos, PadID: pad,
	}, tok)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if res != nil && len(res.Text) == 1 {
		fmt.Println(res.Text[0])
		el := time.Since(start)
		fmt.Fprintf(os.Stderr, "%d prompt tokens, %d new tokens (%s) in %.2fs: %.1f tokens/s on %s\n",
			len(ids), len(res.Tokens[0]), res.Finish[0], el.Seconds(), float64(len(res.Tokens[0]))/el.Seconds(), m.Backend.Name())
	}
	return err
}
