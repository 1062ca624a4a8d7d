package generate

import "github.com/finlora/finlora/runtime/model"

// Specials is what generation needs from a tokenizer besides Decode: its end-of-sequence ids and
// its padding id (-1 when it has none). tokenizer.Tokenizer satisfies it.
type Specials interface {
	EOS() []int
	Pad() int
}

// SpecialIDs returns the ids that end a sequence of a model with config cfg and tokenizer tok —
// tok's EOS ids followed by cfg's eos_token_id list, in a new slice (a repeat is harmless) — and
// the padding id for Options.PadID: tok's, or 0 when it has none or it lies outside the
// vocabulary (left padding is masked out, so any valid id works).
func SpecialIDs(cfg *model.Config, tok Specials) (eos []int, pad int) {
	eos = append(append([]int(nil), tok.EOS()...), cfg.EOSTokenIDs...)
	pad = tok.Pad()
	if pad < 0 || pad >= cfg.VocabSize {
		pad = 0
	}
	return eos, pad
}
