package generate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/finlora/finlora/runtime/model"
	"github.com/finlora/finlora/runtime/tensor/cpu"
)

func tiny(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.TinyRandom(cpu.New(0), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Free() })
	return m
}

var tok = model.ByteTokenizer{}

func prompts() [][]int {
	return [][]int{
		tok.Encode("The quarterly revenue", true),
		tok.Encode("EPS", true),
		tok.Encode("Net income fell by twelve percent", true),
	}
}

func TestGreedyBatchedEqualsOneByOne(t *testing.T) {
	m := tiny(t)
	ps := prompts()
	opts := Options{MaxNewTokens: 12}
	batched, err := Generate(context.Background(), m, ps, opts, tok)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		alone, err := Generate(context.Background(), m, [][]int{p}, opts, tok)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(alone.Tokens[0]) != fmt.Sprint(batched.Tokens[i]) {
			t.Errorf("prompt %d: batched %v, alone %v", i, batched.Tokens[i], alone.Tokens[0])
		}
		if len(batched.Tokens[i]) != 12 || batched.Finish[i] != FinishLength {
			t.Errorf("prompt %d: %d tokens, finish %q", i, len(batched.Tokens[i]), batched.Finish[i])
		}
	}
}

// Greedy decoding with the cache picks at each step the argmax of a full recompute.
func TestGreedyMatchesFullRecompute(t *testing.T) {
	m := tiny(t)
	p := prompts()[0]
	res, err := Generate(context.Background(), m, [][]int{p}, Options{MaxNewTokens: 6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := append([]int(nil), p...)
	for step, want := range res.Tokens[0] {
		ids := make([]int32, len(seq))
		for i, v := range seq {
			ids[i] = int32(v)
		}
		lg, err := m.Forward(context.Background(), model.Input{IDs: ids, B: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := m.Backend.ToFloat32(lg)
		lg.Free()
		V := m.Config.VocabSize
		last := all[len(all)-V:]
		best := 0
		for j, v := range last {
			if v > last[best] {
				best = j
			}
		}
		if best != want {
			t.Fatalf("step %d: generated %d, full recompute argmax %d", step, want, best)
		}
		seq = append(seq, want)
	}
}

func TestSamplingReproducible(t *testing.T) {
	m := tiny(t)
	ps := prompts()
	run := func(seed uint64) string {
		r, err := Generate(context.Background(), m, ps, Options{MaxNewTokens: 16, Temperature: 1.5, TopK: 50, TopP: 0.95, Seed: seed}, tok)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(r.Tokens)
	}
	a, b, c := run(42), run(42), run(43)
	if a != b {
		t.Errorf("same seed, different samples:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("seeds 42 and 43 gave the same samples: %s", a)
	}
	greedy, _ := Generate(context.Background(), m, ps, Options{MaxNewTokens: 16}, tok)
	if fmt.Sprint(greedy.Tokens) == a {
		t.Error("sampling at temperature 1.5 reproduced greedy decoding exactly")
	}
}

func TestTopKOneIsGreedy(t *testing.T) {
	m := tiny(t)
	ps := prompts()
	g, _ := Generate(context.Background(), m, ps, Options{MaxNewTokens: 8}, nil)
	s, err := Generate(context.Background(), m, ps, Options{MaxNewTokens: 8, Temperature: 0.7, TopK: 1, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Tokens) != fmt.Sprint(s.Tokens) {
		t.Errorf("top-k 1 %v differs from greedy %v", s.Tokens, g.Tokens)
	}
}

// EOS ids and stop strings end sequences early; the others run to the budget.
func TestEOSAndStop(t *testing.T) {
	m := tiny(t)
	ps := prompts()
	free, err := Generate(context.Background(), m, ps, Options{MaxNewTokens: 10}, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Make the 4th token of prompt 0 and the 2nd of prompt 2 EOS ids (two different ids).
	eos := []int{free.Tokens[0][3], free.Tokens[2][1]}
	r, err := Generate(context.Background(), m, ps, Options{MaxNewTokens: 10, EOS: eos}, tok)
	if err != nil {
		t.Fatal(err)
	}
	cut := func(toks []int) []int {
		for i, v := range toks {
			if v == eos[0] || v == eos[1] {
				return toks[:i]
			}
		}
		return toks
	}
	for i := range ps {
		want, reason := cut(free.Tokens[i]), FinishEOS
		if len(want) == len(free.Tokens[i]) {
			reason = FinishLength
		}
		if fmt.Sprint(r.Tokens[i]) != fmt.Sprint(want) || r.Finish[i] != reason {
			t.Errorf("prompt %d: %v (%s), want %v (%s)", i, r.Tokens[i], r.Finish[i], want, reason)
		}
	}
	// Stop string: the text of prompt 1's tokens 2..3.
	text := tok.Decode(free.Tokens[1], true)
	stop := tok.Decode(free.Tokens[1][2:4], true)
	r, err = Generate(context.Background(), m, ps[1:2], Options{MaxNewTokens: 10, Stop: []string{"\x00never", stop}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	if r.Finish[0] != FinishStop {
		t.Fatalf("finish %q, want stop (text %q, stop %q)", r.Finish[0], text, stop)
	}
	if want := text[:strings.Index(text, stop)]; r.Text[0] != want {
		t.Errorf("text %q, want %q (cut before the stop string %q)", r.Text[0], want, stop)
	}
	if _, err := Generate(context.Background(), m, ps, Options{Stop: []string{"x"}}, nil); err == nil {
		t.Error("stop strings without a decoder: no error")
	}
}

func TestContextCancelled(t *testing.T) {
	m := tiny(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Generate(ctx, m, prompts(), Options{MaxNewTokens: 5}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestBadPrompts(t *testing.T) {
	m := tiny(t)
	for _, ps := range [][][]int{{{}}, {{1, 9999}}, {{-1}}} {
		if _, err := Generate(context.Background(), m, ps, Options{}, nil); err == nil {
			t.Errorf("prompts %v: no error", ps)
		}
	}
}
