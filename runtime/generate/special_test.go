package generate

import (
	"slices"
	"testing"

	"github.com/finlora/finlora/runtime/model"
)

type specials struct {
	eos []int
	pad int
}

func (s specials) EOS() []int { return s.eos }
func (s specials) Pad() int   { return s.pad }

func TestSpecialIDs(t *testing.T) {
	cfg := &model.Config{VocabSize: 100, EOSTokenIDs: []int{7, 9}}
	for _, c := range []struct {
		tok     specials
		wantEOS []int
		wantPad int
	}{
		{specials{[]int{2}, 5}, []int{2, 7, 9}, 5},
		{specials{nil, -1}, []int{7, 9}, 0},          // no pad token
		{specials{[]int{7}, 100}, []int{7, 7, 9}, 0}, // pad outside the vocabulary
	} {
		eos, pad := SpecialIDs(cfg, c.tok)
		if !slices.Equal(eos, c.wantEOS) || pad != c.wantPad {
			t.Errorf("SpecialIDs(%v) = %v, %d; want %v, %d", c.tok, eos, pad, c.wantEOS, c.wantPad)
		}
	}
	// The result is a new slice: appending to it leaves the tokenizer's and the config's alone.
	tokEOS := make([]int, 1, 8)
	eos, _ := SpecialIDs(cfg, specials{tokEOS, 0})
	eos[0] = 42
	if tokEOS[0] != 0 || cfg.EOSTokenIDs[0] != 7 {
		t.Error("SpecialIDs shares memory with its inputs")
	}
}
