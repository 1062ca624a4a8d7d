package model

import (
	"context"
	"fmt"

	"github.com/finlora/finlora/runtime/tensor"
	"github.com/finlora/finlora/runtime/tokenizer"
)

// Gemma3Generator decodes greedily from a Gemma3 and its tokenizer; it satisfies runtime/eval's
// Generator interface (GenerateGreedy), so FinLoRA evaluation runs on Gemma 3. Prompts are encoded
// with special tokens (BOS), left padded into one batch with one KV cache, and decoded until every
// sequence produced an EOS id (the tokenizer's and the config's) or maxNewTokens; the text is
// decoded with special tokens skipped and stops before the EOS. It borrows Model and Tokenizer.
type Gemma3Generator struct {
	Model     *Gemma3
	Tokenizer tokenizer.Tokenizer
}

// GenerateGreedy returns one continuation per prompt.
func (g *Gemma3Generator) GenerateGreedy(ctx context.Context, prompts []string, maxNewTokens int) ([]string, error) {
	if g.Model == nil || g.Tokenizer == nil {
		return nil, fmt.Errorf("model.Gemma3Generator: needs a Model and a Tokenizer")
	}
	ids := make([][]int, len(prompts))
	for i, p := range prompts {
		ids[i] = g.Tokenizer.Encode(p, true)
	}
	out, err := g.Model.Greedy(ctx, ids, maxNewTokens, append(g.Tokenizer.EOS(), g.Model.Config.EOSTokenIDs...))
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(out))
	for i, o := range out {
		texts[i] = g.Tokenizer.Decode(o, true)
	}
	return texts, nil
}

// Greedy decodes up to maxNew tokens after each prompt (token ids; B prompts of any lengths, left
// padded into one batch) and returns the new ids of each, without the EOS that ended it.
func (m *Gemma3) Greedy(ctx context.Context, prompts [][]int, maxNew int, eos []int) ([][]int, error) {
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	T := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("greedy: prompt %d is empty", i)
		}
		T = max(T, len(p))
	}
	isEOS := map[int]bool{}
	for _, e := range eos {
		isEOS[e] = true
	}
	pad := max(m.Config.PadTokenID, 0)
	in := Input{IDs: make([]int32, B*T), B: B, Pad: make([]int, B)}
	for b, p := range prompts {
		in.Pad[b] = T - len(p)
		for t := 0; t < T; t++ {
			id := pad
			if t >= in.Pad[b] {
				id = p[t-in.Pad[b]]
			}
			in.IDs[b*T+t] = int32(id)
		}
	}
	out := make([][]int, B)
	if maxNew <= 0 {
		return out, nil
	}
	cache, err := m.NewCache(B, T+maxNew)
	if err != nil {
		return nil, err
	}
	defer cache.Free()
	done := make([]bool, B)
	for step := 0; step < maxNew; step++ {
		lg, err := m.LastLogits(ctx, in, cache)
		if err != nil {
			return nil, err
		}
		next, err := argmaxRows(m.Backend, lg)
		lg.Free()
		if err != nil {
			return nil, err
		}
		in = Input{IDs: make([]int32, B), B: B}
		remaining := 0
		for b := range next {
			if !done[b] {
				if isEOS[next[b]] {
					done[b] = true
				} else {
					out[b] = append(out[b], next[b])
					remaining++
				}
			}
			in.IDs[b] = int32(next[b])
		}
		if remaining == 0 {
			break
		}
	}
	return out, nil
}

// argmaxRows returns the index of the largest value of each row of logits [B, V] (first on ties).
func argmaxRows(b tensor.Backend, logits *tensor.Tensor) ([]int, error) {
	v, err := b.ToFloat32(logits)
	if err != nil {
		return nil, err
	}
	B := logits.Dim(0)
	V := len(v) / B
	out := make([]int, B)
	for r := 0; r < B; r++ {
		row := v[r*V : (r+1)*V]
		best := 0
		for i, x := range row {
			if x > row[best] {
				best = i
			}
		}
		out[r] = best
	}
	return out, nil
}
