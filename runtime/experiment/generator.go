package experiment

import (
	"context"
	"fmt"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tokenizer"
)

// Gemma3Generator is an eval.Generator over a runtime/model.Gemma3 (with whatever adapter is
// attached to its linears, e.g. by lora.AttachGemma3): prompts are encoded with BOS, left padded,
// prefilled together into a KV cache and decoded greedily (argmax on the backend), each row
// stopping at the tokenizer's or the config's EOS ids; texts are decoded with special tokens
// skipped. It borrows Model and Tokenizer.
type Gemma3Generator struct {
	Model     *model.Gemma3
	Tokenizer tokenizer.Tokenizer
	// MaxPromptTokens, when > 0, keeps the BOS and the last MaxPromptTokens−1 tokens of a longer
	// prompt (the question and "Answer:" are at the end). 0: no truncation (FinLoRA's way).
	MaxPromptTokens int
}

// GenerateGreedy implements eval.Generator.
func (g *Gemma3Generator) GenerateGreedy(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error) {
	if g.Model == nil || g.Tokenizer == nil {
		return nil, fmt.Errorf("gemma3 generator: needs a Model and a Tokenizer")
	}
	if len(prompts) == 0 {
		return nil, nil
	}
	m, tok := g.Model, g.Tokenizer
	B := len(prompts)
	enc := make([][]int, B)
	T := 0
	bos := tok.BOS()
	for i, p := range prompts {
		ids := tok.Encode(p, true)
		if n := g.MaxPromptTokens; n > 1 && len(ids) > n {
			keep := ids[len(ids)-n:]
			if bos >= 0 && ids[0] == bos {
				keep = append([]int{bos}, ids[len(ids)-n+1:]...)
			}
			ids = keep
		}
		enc[i] = ids
		T = max(T, len(ids))
	}
	pad := tok.Pad()
	if pad < 0 || pad >= m.Config.VocabSize {
		pad = 0
	}
	in := model.Input{IDs: make([]int32, B*T), B: B, Pad: make([]int, B)}
	for i, ids := range enc {
		p := T - len(ids)
		in.Pad[i] = p
		for t := 0; t < T; t++ {
			id := pad
			if t >= p {
				id = ids[t-p]
			}
			in.IDs[i*T+t] = int32(id)
		}
	}
	eos := map[int]bool{}
	for _, e := range append(append([]int(nil), tok.EOS()...), m.Config.EOSTokenIDs...) {
		eos[e] = true
	}
	cache, err := m.NewCache(B, T+maxNewTokens)
	if err != nil {
		return nil, err
	}
	defer cache.Free()
	best, err := m.Backend.Alloc(tensor.I32, B)
	if err != nil {
		return nil, err
	}
	defer best.Free()
	out := make([][]int, B)
	done := make([]bool, B)
	for step := 0; step < maxNewTokens; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lg, err := m.LastLogits(ctx, in, cache)
		if err != nil {
			return nil, fmt.Errorf("gemma3 generator: step %d: %w", step, err)
		}
		err = m.Backend.ArgMax(best, lg)
		lg.Free()
		if err != nil {
			return nil, err
		}
		next, err := m.Backend.ToInt32(best)
		if err != nil {
			return nil, err
		}
		all := true
		for i, id := range next {
			if !done[i] {
				if eos[int(id)] {
					done[i] = true
				} else {
					out[i] = append(out[i], int(id))
				}
			}
			all = all && done[i]
		}
		if all {
			break
		}
		in = model.Input{IDs: next, B: B}
	}
	texts := make([]string, B)
	for i, ids := range out {
		texts[i] = tok.Decode(ids, true)
	}
	return texts, nil
}
