// Package generate decodes text from a model.Model: batched prompts (left padded, one KV cache),
// greedy or sampled (temperature, top-k, top-p, seeded), several EOS ids, a token budget and stop
// strings, checking a context.Context between steps.
package generate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor"
)

// Options control decoding. The zero value is greedy decoding of up to DefaultMaxNewTokens tokens
// with no EOS and no stop strings.
type Options struct {
	MaxNewTokens int     // tokens to generate per prompt at most; 0 means DefaultMaxNewTokens
	Temperature  float64 // 0 (or below) is greedy; otherwise logits are divided by it and sampled
	TopK         int     // sample among the K most likely tokens; 0 means no limit
	TopP         float64 // nucleus: the smallest set of most likely tokens with probability ≥ TopP; 0 or ≥ 1 means off
	Seed         uint64  // seeds sampling: equal seeds and inputs give equal outputs
	EOS          []int   // ids that end a sequence (not included in the output)
	// Stop strings end a sequence once its decoded new text contains one; the text is cut before it
	// (the tokens keep the one that completed it). Needs a Decoder.
	Stop  []string
	PadID int // id placed in left padding (masked out, so any valid id works); default 0
}

// DefaultMaxNewTokens is the budget when Options.MaxNewTokens is 0.
const DefaultMaxNewTokens = 64

// Decoder turns ids into text (tokenizer.Tokenizer satisfies it).
type Decoder interface {
	Decode(ids []int, skipSpecial bool) string
}

// Finish reasons of Result.Finish.
const (
	FinishEOS    = "eos"    // an EOS id was generated
	FinishStop   = "stop"   // a stop string appeared
	FinishLength = "length" // MaxNewTokens reached
)

// Result holds, per prompt in input order, the generated ids (EOS excluded), their text (when a
// Decoder was given; special tokens skipped, cut before a stop string) and why it ended.
type Result struct {
	Tokens [][]int
	Text   []string
	Finish []string
}

// Generate continues every prompt (token ids, at least one each) with m. Prompts are left padded
// to the longest and decoded together with one KV cache of len(longest)+MaxNewTokens slots; all
// memory it allocates on the backend is freed before it returns. dec may be nil unless opts.Stop is
// set. ctx is checked before every step; on cancellation the error is ctx.Err() and the result so
// far is returned with it.
func Generate(ctx context.Context, m *model.Model, prompts [][]int, opts Options, dec Decoder) (*Result, error) {
	if len(prompts) == 0 {
		return &Result{}, nil
	}
	if len(opts.Stop) > 0 && dec == nil {
		return nil, fmt.Errorf("generate: stop strings need a decoder (tokenizer)")
	}
	maxNew := opts.MaxNewTokens
	if maxNew <= 0 {
		maxNew = DefaultMaxNewTokens
	}
	V := m.Config.VocabSize
	if opts.PadID < 0 || opts.PadID >= V {
		return nil, fmt.Errorf("generate: pad id %d outside the vocabulary of %d", opts.PadID, V)
	}
	B, T0 := len(prompts), 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty (give at least a BOS token)", i)
		}
		for _, id := range p {
			if id < 0 || id >= V {
				return nil, fmt.Errorf("generate: prompt %d has id %d outside the vocabulary of %d", i, id, V)
			}
		}
		T0 = max(T0, len(p))
	}
	ids := make([]int32, 0, B*T0)
	pad := make([]int, B)
	for i, p := range prompts {
		pad[i] = T0 - len(p)
		for j := 0; j < pad[i]; j++ {
			ids = append(ids, int32(opts.PadID))
		}
		for _, id := range p {
			ids = append(ids, int32(id))
		}
	}
	cache, err := m.NewCache(B, T0+maxNew)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer cache.Free()

	res := &Result{Tokens: make([][]int, B), Finish: make([]string, B)}
	if dec != nil {
		res.Text = make([]string, B)
	}
	eos := map[int]bool{}
	for _, e := range opts.EOS {
		eos[e] = true
	}
	rngs := make([]*rand.Rand, B)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(opts.Seed, uint64(i)))
	}
	s := &sampler{opts: opts}
	live := B
	in := model.Input{IDs: ids, B: B, Pad: pad}
	for step := 0; step < maxNew && live > 0; step++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		next, err := nextTokens(ctx, m, in, cache, opts, s, rngs)
		if err != nil {
			return res, fmt.Errorf("generate step %d: %w", step, err)
		}
		in = model.Input{IDs: make([]int32, B), B: B}
		for i, tok := range next {
			in.IDs[i] = int32(opts.PadID)
			if res.Finish[i] != "" {
				continue
			}
			in.IDs[i] = int32(tok)
			if eos[tok] {
				res.Finish[i] = FinishEOS
				live--
				continue
			}
			res.Tokens[i] = append(res.Tokens[i], tok)
			if len(opts.Stop) > 0 {
				text := dec.Decode(res.Tokens[i], true)
				if cut, ok := findStop(text, opts.Stop); ok {
					res.Text[i] = text[:cut]
					res.Finish[i] = FinishStop
					live--
				}
			}
		}
	}
	for i := range res.Finish {
		if res.Finish[i] == "" {
			res.Finish[i] = FinishLength
		}
		if dec != nil && res.Finish[i] != FinishStop {
			res.Text[i] = dec.Decode(res.Tokens[i], true)
		}
	}
	return res, nil
}

// findStop returns the earliest index at which any stop string starts in text.
func findStop(text string, stops []string) (int, bool) {
	best := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best, best >= 0
}

// nextTokens runs one forward step and picks one token per sequence.
func nextTokens(ctx context.Context, m *model.Model, in model.Input, cache *model.Cache, opts Options, s *sampler, rngs []*rand.Rand) ([]int, error) {
	lg, err := m.LastLogits(ctx, in, cache)
	if err != nil {
		return nil, err
	}
	defer lg.Free()
	b := m.Backend
	out := make([]int, in.B)
	if opts.Temperature <= 0 { // greedy: argmax on the device, only B ids cross to the host
		am, err := b.Alloc(tensor.I32, in.B)
		if err != nil {
			return nil, err
		}
		defer am.Free()
		if err := b.ArgMax(am, lg); err != nil {
			return nil, err
		}
		ids, err := b.ToInt32(am)
		if err != nil {
			return nil, err
		}
		for i, id := range ids {
			out[i] = int(id)
		}
		return out, nil
	}
	host, err := b.ToFloat32(lg)
	if err != nil {
		return nil, err
	}
	V := m.Config.VocabSize
	for i := range out {
		out[i] = s.sample(host[i*V:(i+1)*V], rngs[i])
	}
	return out, nil
}
