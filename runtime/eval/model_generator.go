package eval

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/finlora/finlora/runtime/generate"
	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tokenizer"
)

// ModelGenerator is the Generator of a runtime/model.Model (with whatever LoRA adapter is attached
// to it) and its tokenizer: prompts are encoded with special tokens (BOS), left padded and decoded
// greedily together by runtime/generate, stopping at the tokenizer's and the config's EOS ids;
// the text is decoded with special tokens skipped. It borrows Model and Tokenizer (frees nothing).
type ModelGenerator struct {
	Model     *model.Model
	Tokenizer tokenizer.Tokenizer
	// MaxPromptTokens, when > 0, keeps only the last MaxPromptTokens tokens of a longer prompt (the
	// BOS, if first, is kept in front), so the question and "Answer:" at the end survive. 0 means
	// no truncation, which is FinLoRA's behaviour.
	MaxPromptTokens int
	truncated       atomic.Int64
}

// Truncated is the number of prompts shortened by MaxPromptTokens so far.
func (g *ModelGenerator) Truncated() int { return int(g.truncated.Load()) }

// GenerateGreedy implements Generator.
func (g *ModelGenerator) GenerateGreedy(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error) {
	if g.Model == nil || g.Tokenizer == nil {
		return nil, fmt.Errorf("eval.ModelGenerator: needs a Model and a Tokenizer")
	}
	ids := make([][]int, len(prompts))
	bos := g.Tokenizer.BOS()
	for i, p := range prompts {
		ids[i] = g.Tokenizer.Encode(p, true)
		if n := g.MaxPromptTokens; n > 0 && len(ids[i]) > n {
			keep := ids[i][len(ids[i])-n:]
			if ids[i][0] == bos && bos >= 0 && n > 1 {
				keep = append([]int{bos}, ids[i][len(ids[i])-n+1:]...)
			}
			ids[i] = keep
			g.truncated.Add(1)
		}
	}
	eos, pad := generate.SpecialIDs(g.Model.Config, g.Tokenizer)
	res, err := generate.Generate(ctx, g.Model, ids, generate.Options{MaxNewTokens: maxNewTokens, EOS: eos, PadID: pad}, g.Tokenizer)
	if err != nil {
		return nil, err
	}
	return res.Text, nil
}
